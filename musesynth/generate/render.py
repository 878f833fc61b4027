"""Outputs a person can use: WAV through FluidSynth + a General MIDI soundfont, and a piano-roll PNG."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import symusic

from musesynth.atomic import atomic_write
from musesynth.plotting import pyplot, save_png

SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
)


def find_soundfont(explicit: str | None = None) -> Path | None:
    for cand in (explicit, os.environ.get("MUSESYNTH_SOUNDFONT"), *SOUNDFONT_CANDIDATES):
        if cand and Path(cand).is_file():
            return Path(cand)
    return None


def render_wav(midi_path: Path, wav_path: Path, soundfont: str | None = None, rate: int = 44100) -> str | None:
    """Render with FluidSynth; returns None on success, else the reason no WAV was written."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        return "fluidsynth not found (apt-get install fluidsynth, or `make setup`); MIDI and PNG written"
    sf = find_soundfont(soundfont)
    if sf is None:
        return ("no General MIDI soundfont found (apt-get install fluid-soundfont-gm or timgm6mb-soundfont, "
                "or set MUSESYNTH_SOUNDFONT)")

    def run(tmp: str) -> None:
        r = subprocess.run([exe, "-ni", "-q", "-g", "0.6", "-T", "wav", "-F", tmp, "-r", str(rate), str(sf),
                            str(midi_path)], capture_output=True, text=True, timeout=600)
        if r.returncode != 0 or not Path(tmp).stat().st_size:
            raise RuntimeError((r.stderr or r.stdout).strip().splitlines()[-1] if (r.stderr or r.stdout) else "")

    try:
        atomic_write(wav_path, run)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return f"fluidsynth failed: {exc}"
    return None


def wav_stats(path: Path) -> dict[str, float]:
    """Duration and RMS of a 16-bit PCM WAV (a listen-check without ears)."""
    import wave

    with wave.open(str(path)) as w:
        n, ch, rate = w.getnframes(), w.getnchannels(), w.getframerate()
        data = np.frombuffer(w.readframes(n), dtype=np.int16).astype(np.float64) / 32768
    data = data.reshape(-1, ch) if ch > 1 else data[:, None]
    rms = float(np.sqrt((data**2).mean())) if data.size else 0.0
    frame = max(1, rate // 10)
    blocks = data[: len(data) // frame * frame].reshape(-1, frame, data.shape[1])
    loud = float((np.sqrt((blocks**2).mean(axis=(1, 2))) > 1e-3).mean()) if blocks.size else 0.0
    return {"seconds": n / rate, "rms": rms, "peak": float(np.abs(data).max()) if data.size else 0.0,
            "non_silent_fraction": loud}


def piano_roll(score: symusic.Score, png_path: Path, boundary_beats: float | tuple[float, float] | None,
               title: str) -> Path:
    """Notes as bars over beats; the primer in blue, the generated continuation in orange. A
    ``(start, end)`` boundary is an infilled span: shaded, its notes orange, the input's blue. A score of
    several tracks with notes (the parts encoding's voices) gets one colour per voice instead."""
    if sum(1 for t in score.tracks if len(t.notes)) > 1:
        return _voice_roll(score, png_path, boundary_beats, title)
    if isinstance(boundary_beats, tuple):
        return _span_roll(score, png_path, boundary_beats, title)
    plt = pyplot()
    tpq = score.ticks_per_quarter
    parts = [t.notes.numpy() for t in score.tracks if len(t.notes)]
    fig, ax = plt.subplots(figsize=(14, 5), dpi=110)
    if parts:
        on = np.concatenate([p["time"] for p in parts]) / tpq
        dur = np.concatenate([p["duration"] for p in parts]) / tpq
        pitch = np.concatenate([p["pitch"] for p in parts]).astype(float)
        primer = on < boundary_beats if boundary_beats is not None else np.zeros(on.size, bool)
        for mask, colour, label in ((primer, "#1f77b4", "primer"), (~primer, "#ff7f0e", "generated")):
            if mask.any():
                ax.barh(pitch[mask], dur[mask], left=on[mask], height=0.8, color=colour, label=label,
                        edgecolor="black", linewidth=0.2)
        ax.set_ylim(pitch.min() - 2, pitch.max() + 2)
        ax.set_xlim(0, float((on + dur).max()) + 0.5)
    if boundary_beats is not None:
        ax.axvline(boundary_beats, color="red", linestyle="--", linewidth=1.2, label="primer ends")
    return _finish(fig, ax, title, png_path)


def _finish(fig: Any, ax: Any, title: str, png_path: Path) -> Path:
    """The axes, title, grid and legend both piano rolls share; the figure saved."""
    ax.set_xlabel("time (beats)")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # an empty roll has nothing to name
        ax.legend(loc="upper right")
    fig.tight_layout()
    save_png(fig, png_path)
    return png_path


VOICE_COLOURS = ("#d62728", "#2ca02c", "#1f77b4", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _voice_roll(score: symusic.Score, png_path: Path, boundary: float | tuple[float, float] | None,
                title: str) -> Path:
    """One colour per track (Soprano red, Alto green, Tenor blue, Bass purple in part order); the primer or the
    input outside an infilled span is drawn faded, so what the model wrote stands out in its voice's colour."""
    plt = pyplot()
    tpq = score.ticks_per_quarter
    fig, ax = plt.subplots(figsize=(14, 5), dpi=110)
    if isinstance(boundary, tuple):
        ax.axvspan(boundary[0], boundary[1], color="#ffdd99", alpha=0.4, label="rewritten bars")
    low, high, end = 127.0, 0.0, 0.0
    for i, track in enumerate(t for t in score.tracks if len(t.notes)):
        n = track.notes.numpy()
        on, dur, pitch = n["time"] / tpq, n["duration"] / tpq, n["pitch"].astype(float)
        given = (on < boundary if not isinstance(boundary, tuple) else (on < boundary[0]) | (on >= boundary[1])) \
            if boundary is not None else np.zeros(on.size, bool)
        colour = VOICE_COLOURS[i % len(VOICE_COLOURS)]
        for mask, alpha, label in ((~given, 1.0, track.name or f"track {i + 1}"), (given, 0.35, None)):
            if mask.any():
                ax.barh(pitch[mask], dur[mask], left=on[mask], height=0.8, color=colour, alpha=alpha, label=label,
                        edgecolor="black", linewidth=0.2)
        low, high, end = min(low, pitch.min()), max(high, pitch.max()), max(end, float((on + dur).max()))
    if high >= low:
        ax.set_ylim(low - 2, high + 2)
        ax.set_xlim(0, end + 0.5)
    if boundary is not None and not isinstance(boundary, tuple):
        ax.axvline(boundary, color="red", linestyle="--", linewidth=1.2, label="primer ends")
    for x in boundary if isinstance(boundary, tuple) else ():
        ax.axvline(x, color="red", linestyle="--", linewidth=1.2)
    return _finish(fig, ax, title, png_path)


def _span_roll(score: symusic.Score, png_path: Path, span: tuple[float, float], title: str) -> Path:
    plt = pyplot()
    tpq = score.ticks_per_quarter
    parts = [t.notes.numpy() for t in score.tracks if len(t.notes)]
    fig, ax = plt.subplots(figsize=(14, 5), dpi=110)
    ax.axvspan(span[0], span[1], color="#ffdd99", alpha=0.4, label="infilled span")
    if parts:
        on = np.concatenate([p["time"] for p in parts]) / tpq
        dur = np.concatenate([p["duration"] for p in parts]) / tpq
        pitch = np.concatenate([p["pitch"] for p in parts]).astype(float)
        new = (on >= span[0]) & (on < span[1])
        for mask, colour, label in ((~new, "#1f77b4", "input"), (new, "#ff7f0e", "infilled")):
            if mask.any():
                ax.barh(pitch[mask], dur[mask], left=on[mask], height=0.8, color=colour, label=label,
                        edgecolor="black", linewidth=0.2)
        ax.set_ylim(pitch.min() - 2, pitch.max() + 2)
        ax.set_xlim(0, float((on + dur).max()) + 0.5)
    for x in span:
        ax.axvline(x, color="red", linestyle="--", linewidth=1.2)
    return _finish(fig, ax, title, png_path)
