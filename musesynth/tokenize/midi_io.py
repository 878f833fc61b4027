"""Reading MIDI into plain note arrays, with the documented rules for odd input.

Rules (shared by every encoding, tested in tests/test_chord_encoding.py):
- **Drums** (General MIDI channel 10 tracks) are dropped: they carry no pitch.
- **Many instruments** are merged into one piano part (all pitched tracks, program ignored).
- **Out-of-range pitches** (outside A0..C8, 21..108) are folded by octaves into range, so the
  pitch class survives.
- **Same pitch twice at one onset**: the longest note is kept.
- **A re-struck key ends the previous note** of that pitch (no self-overlap), because overlapping
  notes of one pitch are ambiguous in MIDI and would not survive a write/read cycle.

Besides notes and tempo, ``score_notes`` also reads the time signatures, key signatures (as symusic
gives them: ``key`` = sharps, negative for flats; ``tonality`` 0 major, 1 minor) and the times of
marker events whose text contains "fermata" (any case); encodings that do not use them ignore them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import symusic

from musesynth.errors import MidiReadError

PIANO_LOW, PIANO_HIGH = 21, 108


@dataclass
class Notes:
    """Notes and tempo changes of one piece; times in the unit named by ``unit`` (ticks or steps)."""

    onset: np.ndarray
    duration: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    tempo_time: np.ndarray
    tempo_bpm: np.ndarray
    tpq: int
    ts_time: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ts_numerator: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ts_denominator: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    key_time: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    key_sharps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # < 0: flats
    key_tonality: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # 0 major, 1 minor
    fermata_time: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.onset.size)


def load_score(path: str | Path) -> symusic.Score:
    """Parse a MIDI file, turning every failure into a one-line ``MidiReadError`` reason."""
    path = Path(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise MidiReadError(f"unreadable: {exc.strerror}") from None
    if size == 0:
        raise MidiReadError("empty file (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head != b"MThd":
        raise MidiReadError("not a MIDI file (no MThd header)")
    try:
        score = symusic.Score(str(path))
    except Exception as exc:  # symusic raises RuntimeError/ValueError with a C++ message
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MidiReadError(f"corrupt MIDI: {msg}") from None
    return score


def fold_pitches(pitch: np.ndarray) -> np.ndarray:
    """Move pitches outside the piano range into it by whole octaves."""
    p = pitch.astype(np.int64)
    low = p < PIANO_LOW
    p[low] += 12 * np.ceil((PIANO_LOW - p[low]) / 12).astype(np.int64)
    high = p > PIANO_HIGH
    p[high] -= 12 * np.ceil((p[high] - PIANO_HIGH) / 12).astype(np.int64)
    return p


def score_notes(score: symusic.Score) -> Notes:
    """All pitched notes of a tick-timed score merged into one part; drums dropped."""
    if "tick" not in str(score.ttype).lower():
        score = score.to("tick")
    parts = [t.notes.numpy() for t in score.tracks if not t.is_drum and len(t.notes)]
    if parts:
        onset = np.concatenate([p["time"] for p in parts]).astype(np.int64)
        duration = np.concatenate([p["duration"] for p in parts]).astype(np.int64)
        pitch = np.concatenate([p["pitch"] for p in parts]).astype(np.int64)
        velocity = np.concatenate([p["velocity"] for p in parts]).astype(np.int64)
    else:
        onset = duration = pitch = velocity = np.zeros(0, np.int64)
    tempos = score.tempos.numpy()
    tempo_time = tempos["time"].astype(np.int64)
    tempo_bpm = 60_000_000.0 / np.maximum(tempos["mspq"].astype(np.float64), 1.0)
    ts = score.time_signatures.numpy()
    ks = score.key_signatures.numpy()
    fermata = [m.time for m in score.markers if "fermata" in m.text.lower()]
    return Notes(
        onset, duration, pitch, velocity, tempo_time, tempo_bpm, int(score.ticks_per_quarter),
        ts_time=ts["time"].astype(np.int64), ts_numerator=ts["numerator"].astype(np.int64),
        ts_denominator=ts["denominator"].astype(np.int64), key_time=ks["time"].astype(np.int64),
        key_sharps=ks["key"].astype(np.int64), key_tonality=ks["tonality"].astype(np.int64),
        fermata_time=np.asarray(fermata, np.int64),
    )


def canonical_order(onset: np.ndarray, pitch: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """Indices that drop duplicate (onset, pitch) notes (keeping the longest), sorted by onset, pitch."""
    order = np.lexsort((-duration, onset, pitch))  # by pitch, then onset, longest first
    p, o = pitch[order], onset[order]
    first = np.ones(order.size, bool)
    first[1:] = (p[1:] != p[:-1]) | (o[1:] != o[:-1])
    keep = order[first]
    return keep[np.lexsort((pitch[keep], onset[keep]))]


def end_at_restrike(onset: np.ndarray, pitch: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """Durations shortened so that no note overlaps the next note of the same pitch."""
    order = np.lexsort((onset, pitch))
    p, o, d = pitch[order], onset[order], duration[order].copy()
    same_next = np.zeros(order.size, bool)
    same_next[:-1] = p[1:] == p[:-1]
    gap = np.full(order.size, np.iinfo(np.int64).max)
    gap[:-1] = o[1:] - o[:-1]
    d = np.where(same_next, np.minimum(d, gap), d)
    out = np.empty_like(duration)
    out[order] = d
    return out
