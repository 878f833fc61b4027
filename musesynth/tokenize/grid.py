"""What the grid encodings (chord, meter) share: ``resolution`` steps per beat, NOTE/DUR pairs and the same
semitone-sized tempo bins, so their NOTE, DUR and TEMPO tokens mean the same thing in both."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from musesynth.tokenize.base import Encoding
from musesynth.tokenize.midi_io import PIANO_HIGH, PIANO_LOW

MAX_RESOLUTION = 480  # grid steps per beat: a step of at least one tick at 480 ticks per beat
PARAM_RANGES: dict[str, tuple[int, int]] = {
    "resolution": (1, MAX_RESOLUTION), "max_duration_beats": (1, 64), "max_bar_beats": (1, 64),
    "tempo_low": (-48, 48), "tempo_high": (-48, 48), "velocity": (1, 127), "max_repeat_bars": (0, 1024),
}


def whole_in_range(name: str, value: Any, lo: int, hi: int) -> None:
    """A grid parameter must be a whole number in [lo, hi] (not a bool, a string or 12.5)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a whole number from {lo} to {hi} (got {value!r})")


class GridEncoding(Encoding):
    """Subclasses call ``_grid_params`` first, build their tokens (setting ``token_type``, ``note0``,
    ``dur0`` and ``tempo0``), then ``_value_tables`` with their NOTE/DUR/TEMPO type numbers."""

    DEFAULTS: dict[str, Any]

    def _grid_params(self, params: dict[str, Any]) -> dict[str, Any]:
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise ValueError(f"unknown {self.name}-encoding parameters: {sorted(unknown)}")
        p = {**self.DEFAULTS, **params}
        for name, (lo, hi) in PARAM_RANGES.items():  # a saved vocabulary is read from a file: hostile until checked
            if name in p:
                whole_in_range(name, p[name], lo, hi)
        self.resolution = int(p["resolution"])
        self.max_dur = int(p["max_duration_beats"]) * self.resolution
        if int(p["tempo_low"]) > int(p["tempo_high"]):
            raise ValueError(f"tempo_low must not exceed tempo_high (got {p['tempo_low']} > {p['tempo_high']})")
        # Semitone-sized tempo steps around 120 BPM: 120 * 2**(k/12), k = tempo_low..tempo_high.
        self.tempos = (120.0 * 2.0 ** (np.arange(int(p["tempo_low"]), int(p["tempo_high"]) + 1) / 12)).round(2)
        self.velocity = int(p["velocity"])
        self.ticks_per_step = math.ceil(480 / self.resolution)
        return p

    def _value_tables(self, note: int, dur: int, tempo: int) -> np.ndarray:
        """Per-token pitch, duration and tempo bin (0 where not applicable) for the vectorised coders;
        returns ``arange(V)`` for the subclass's own tables."""
        ids = np.arange(len(self.vocab))
        self.is_note, self.is_tempo = self.token_type == note, self.token_type == tempo
        self.pitch_of = np.where(self.is_note, ids - self.note0 + PIANO_LOW, 0)
        self.dur_of = np.where(self.token_type == dur, ids - self.dur0 + 1, 0)
        self.tempo_bin_of = np.where(self.is_tempo, ids - self.tempo0, 0)
        return ids

    def _tempo_map(self, time: np.ndarray, bpm: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """Tempo changes as (grid step, tempo bin): in time order, the last of several at one step, and a
        tempo at step 0 (120 BPM where the file sets none there)."""
        t_step = np.rint(time * scale).astype(np.int64)
        t_bin = np.abs(np.log(bpm)[:, None] - np.log(self.tempos)[None, :]).argmin(1)
        order = np.argsort(t_step, kind="stable")
        t_step, t_bin = t_step[order], t_bin[order]
        last_at_step = np.ones(t_step.size, bool)
        last_at_step[:-1] = t_step[1:] != t_step[:-1]
        t_step, t_bin = t_step[last_at_step], t_bin[last_at_step]
        if t_step.size == 0 or t_step[0] > 0:
            default = int(np.abs(np.log(self.tempos) - np.log(120.0)).argmin())
            t_step, t_bin = np.r_[0, t_step], np.r_[default, t_bin]
        return t_step, t_bin

    def transpose_table(self, semitones: int) -> np.ndarray:
        """Moves every NOTE token; -1 where a note would leave the piano range."""
        table = np.arange(len(self.vocab))
        moved = self.pitch_of[self.is_note] + semitones
        ok = (moved >= PIANO_LOW) & (moved <= PIANO_HIGH)
        table[self.is_note] = np.where(ok, self.note0 + moved - PIANO_LOW, -1)
        return table

    def tempo_table(self, steps: int) -> np.ndarray:
        table = np.arange(len(self.vocab))
        table[self.is_tempo] = self.tempo0 + np.clip(self.tempo_bin_of[self.is_tempo] + steps, 0,
                                                     self.tempos.size - 1)
        return table
