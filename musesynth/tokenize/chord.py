"""The reference encoding: notes of each onset grouped as a chord, with explicit durations,
time shifts and tempo changes, on a grid of ``resolution`` steps per beat.

A piece reads ``BOS TEMPO_120 NOTE_48 DUR_12 NOTE_60 DUR_12 NOTE_64 DUR_6 SHIFT_6 NOTE_62 DUR_6 ... EOS``:
at each onset, an optional TEMPO token, then the sounding notes in ascending pitch each followed by
its duration; SHIFT tokens move time forward (gaps longer than the largest shift use several).

The default grid (12 steps per beat: 16ths and triplets exact), durations and shifts up to 8 beats
and 29 tempo bins (42..214 BPM in steps of 2**(1/12), 120 exact) give the reference design's 312 tokens:
3 special + 88 notes (A0..C8) + 96 durations + 96 shifts + 29 tempos.

Quantisation rules (on top of midi_io's): onsets and note ends snap to the nearest grid step; a note
is at least one step long; notes longer than ``max_duration_beats`` are clipped to it; tempo changes
snap to the nearest of the geometric tempo bins, the last one at a step wins, repeats are dropped, and
a piece with no tempo at its start plays at 120 BPM. Velocity is not encoded (decoded at 80).
For quantised music the round trip MIDI -> tokens -> MIDI -> tokens is exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import symusic

from musesynth.errors import MidiReadError
from musesynth.tokenize.base import check_token_budget, transition_matrix
from musesynth.tokenize.grid import GridEncoding
from musesynth.tokenize.midi_io import (
    PIANO_HIGH,
    PIANO_LOW,
    canonical_order,
    cap_silences,
    end_at_restrike,
    fold_pitches,
    score_notes,
)
from musesynth.tokenize.vocab import Vocabulary

T_PAD, T_BOS, T_EOS, T_NOTE, T_DUR, T_SHIFT, T_TEMPO = range(7)
DEFAULTS: dict[str, Any] = {
    "resolution": 12,
    "max_duration_beats": 8,
    "max_shift_beats": 8,
    "tempo_low": -18,
    "tempo_high": 10,
    "velocity": 80,
}


class ChordEncoding(GridEncoding):
    name = "chord"
    special = {"PAD": "PAD", "BOS": "BOS", "EOS": "EOS"}
    DEFAULTS = DEFAULTS

    def __init__(self, **params: Any) -> None:
        p = self._grid_params(params)
        self.max_shift = int(p["max_shift_beats"]) * self.resolution

        tokens = ["PAD", "BOS", "EOS"]
        tokens += [f"NOTE_{q}" for q in range(PIANO_LOW, PIANO_HIGH + 1)]
        tokens += [f"DUR_{d}" for d in range(1, self.max_dur + 1)]
        tokens += [f"SHIFT_{s}" for s in range(1, self.max_shift + 1)]
        tokens += [f"TEMPO_{t:g}" for t in self.tempos]
        self.vocab = Vocabulary(self.name, p, tuple(tokens))

        self.note0 = 3
        self.dur0 = self.note0 + (PIANO_HIGH - PIANO_LOW + 1)
        self.shift0 = self.dur0 + self.max_dur
        self.tempo0 = self.shift0 + self.max_shift
        ids = np.arange(len(tokens))
        self.token_type = np.select(
            [ids == 0, ids == 1, ids == 2, ids < self.dur0, ids < self.shift0, ids < self.tempo0],
            [T_PAD, T_BOS, T_EOS, T_NOTE, T_DUR, T_SHIFT],
            T_TEMPO,
        )
        self._value_tables(T_NOTE, T_DUR, T_TEMPO)
        self.shift_of = np.where(self.token_type == T_SHIFT, ids - self.shift0 + 1, 0)

    # ------------------------------------------------------------------ encode
    def quantize(self, score: symusic.Score) -> dict[str, np.ndarray]:
        """Canonical quantised notes and tempo bins of a score (grid steps), as the tokens carry them."""
        n = cap_silences(score_notes(score))
        scale = self.resolution / n.tpq
        onset = np.rint(n.onset * scale).astype(np.int64)
        end = np.rint((n.onset + n.duration) * scale).astype(np.int64)
        dur = np.maximum(end - onset, 1)
        pitch = fold_pitches(n.pitch)
        keep = canonical_order(onset, pitch, dur)
        onset, pitch, dur = onset[keep], pitch[keep], dur[keep]
        dur = np.minimum(end_at_restrike(onset, pitch, dur), self.max_dur)

        t_step, t_bin = self._tempo_map(n.tempo_time, n.tempo_bpm, scale)
        last_onset = onset.max() if onset.size else 0
        inside = t_step <= last_onset
        t_step, t_bin = t_step[inside], t_bin[inside]
        changed = np.ones(t_bin.size, bool)
        changed[1:] = t_bin[1:] != t_bin[:-1]
        return {"onset": onset, "pitch": pitch, "duration": dur,
                "tempo_step": t_step[changed], "tempo_bin": t_bin[changed]}

    def encode(self, score: symusic.Score) -> np.ndarray:
        q = self.quantize(score)
        if q["onset"].size == 0:
            raise MidiReadError("no pitched notes")
        return self.encode_quantized(q)

    def encode_quantized(self, q: dict[str, np.ndarray]) -> np.ndarray:
        n_t, n_n = q["tempo_step"].size, q["onset"].size
        ev_time = np.r_[q["tempo_step"], q["onset"]]
        ev_kind = np.r_[np.zeros(n_t, np.int64), np.ones(n_n, np.int64)]
        ev_pitch = np.r_[np.zeros(n_t, np.int64), q["pitch"]]
        ev_a = np.r_[self.tempo0 + q["tempo_bin"], self.note0 + q["pitch"] - PIANO_LOW]
        ev_b = np.r_[np.zeros(n_t, np.int64), self.dur0 + q["duration"] - 1]
        order = np.lexsort((ev_pitch, ev_kind, ev_time))
        ev_time, ev_kind, ev_a, ev_b = ev_time[order], ev_kind[order], ev_a[order], ev_b[order]

        gap = np.diff(ev_time, prepend=0)
        n_shift = -(-gap // self.max_shift)  # ceil
        count = n_shift + 1 + ev_kind
        check_token_budget(int(count.sum()) + 2, n_n)  # before allocating them
        start = np.cumsum(count) - count
        out = np.full(int(count.sum()), self.shift0 + self.max_shift - 1, np.int64)
        has = n_shift > 0
        rem = gap - self.max_shift * (n_shift - 1)
        out[(start + n_shift - 1)[has]] = self.shift0 + rem[has] - 1
        slot = start + n_shift
        out[slot] = ev_a
        notes = ev_kind == 1
        out[slot[notes] + 1] = ev_b[notes]
        return np.r_[self.bos_id, out, self.eos_id]

    # ------------------------------------------------------------------ decode
    def decode_quantized(self, ids: np.ndarray | list[int]) -> dict[str, np.ndarray]:
        ids = np.asarray(ids, np.int64)
        ids = ids[(ids >= 0) & (ids < len(self.vocab))]
        start = 1 if ids.size and ids[0] == self.bos_id else 0
        eos = np.flatnonzero(ids[start:] == self.eos_id)
        ids = ids[start : start + eos[0]] if eos.size else ids[start:]
        typ = self.token_type[ids]
        time = np.cumsum(self.shift_of[ids])
        pos = np.flatnonzero((typ[:-1] == T_NOTE) & (typ[1:] == T_DUR))
        onset, pitch, dur = time[pos], self.pitch_of[ids[pos]], self.dur_of[ids[pos + 1]]
        keep = canonical_order(onset, pitch, dur)
        onset, pitch, dur = onset[keep], pitch[keep], dur[keep]
        dur = end_at_restrike(onset, pitch, dur)
        tpos = np.flatnonzero(typ == T_TEMPO)
        return {"onset": onset, "pitch": pitch, "duration": dur,
                "tempo_step": time[tpos], "tempo_bin": self.tempo_bin_of[ids[tpos]]}

    def decode(self, ids: np.ndarray | list[int]) -> symusic.Score:
        q = self.decode_quantized(ids)
        k = self.ticks_per_step
        score = symusic.Score(self.resolution * k)
        track = symusic.Track(name="Piano", program=0, is_drum=False)
        track.notes = symusic.Note.from_numpy(
            time=(q["onset"] * k).astype(np.int32),
            duration=(q["duration"] * k).astype(np.int32),
            pitch=q["pitch"].astype(np.int8),
            velocity=np.full(q["onset"].size, self.velocity, np.int8),
        )
        score.tracks.append(track)
        t_step, t_bin = q["tempo_step"], q["tempo_bin"]
        if t_step.size == 0 or t_step[0] > 0:
            t_step, t_bin = np.r_[0, t_step], np.r_[np.abs(self.tempos - 120).argmin(), t_bin]
        mspq = np.rint(60_000_000 / self.tempos[t_bin]).astype(np.int32)
        score.tempos = symusic.Tempo.from_numpy(time=(t_step * k).astype(np.int32), mspq=mspq)
        score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
        return score

    def end_beats(self, ids: np.ndarray | list[int]) -> float:
        ids = np.asarray(ids, np.int64)
        ids = ids[(ids >= 0) & (ids < len(self.vocab))]
        return float(self.shift_of[ids].sum()) / self.resolution

    # ------------------------------------------------------------------ grammar / augmentation
    def grammar(self) -> np.ndarray:
        allowed = {
            T_PAD: [T_BOS],
            T_BOS: [T_TEMPO, T_SHIFT, T_NOTE, T_EOS],
            T_NOTE: [T_DUR],
            T_DUR: [T_NOTE, T_SHIFT, T_EOS],
            T_SHIFT: [T_SHIFT, T_NOTE, T_TEMPO, T_EOS],
            T_TEMPO: [T_SHIFT, T_NOTE, T_EOS],
            T_EOS: [T_BOS],
        }
        return transition_matrix(self.token_type, allowed, 7)
