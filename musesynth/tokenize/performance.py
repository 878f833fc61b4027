"""The expressive encoding: performance events (note-on, note-off, time-shift, velocity, tempo) as in
Magenta's Performance RNN / Music Transformer, through MidiTok's MIDILike tokenizer.

The same midi_io rules apply first (drums dropped, parts merged into one piano part, pitches folded
into A0..C8), so every encoding sees the same music. Velocities (32 bins) and timing finer than the
chord grid survive; the price is roughly 2x longer sequences.
"""

from __future__ import annotations

from typing import Any

import miditok
import numpy as np
import symusic

from musesynth.errors import MidiReadError
from musesynth.tokenize.base import Encoding, check_token_budget, transition_matrix
from musesynth.tokenize.midi_io import Notes, cap_silences, fold_pitches, score_notes
from musesynth.tokenize.vocab import Vocabulary

DEFAULTS: dict[str, Any] = {
    "pitch_range": [21, 109],
    "beat_res": {"0_4": 8, "4_12": 4},
    "num_velocities": 32,
    "num_tempos": 32,
    "tempo_range": [40, 250],
}
TYPES = ["PAD", "BOS", "EOS", "MASK", "NoteOn", "NoteOff", "Velocity", "TimeShift", "Tempo"]


def _config(p: dict[str, Any]) -> miditok.TokenizerConfig:
    beat_res = {tuple(int(x) for x in k.split("_")): int(v) for k, v in p["beat_res"].items()}
    return miditok.TokenizerConfig(
        pitch_range=tuple(p["pitch_range"]),
        beat_res=beat_res,
        num_velocities=int(p["num_velocities"]),
        special_tokens=["PAD", "BOS", "EOS", "MASK"],
        use_tempos=True,
        num_tempos=int(p["num_tempos"]),
        tempo_range=tuple(p["tempo_range"]),
        use_time_signatures=False,
        use_programs=False,
        use_pitchdrum_tokens=False,
        remove_duplicated_notes=True,
        delete_equal_successive_tempo_changes=True,
    )


class PerformanceEncoding(Encoding):
    name = "performance"
    special = {"PAD": "PAD_None", "BOS": "BOS_None", "EOS": "EOS_None"}

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown performance-encoding parameters: {sorted(unknown)}")
        p = {**DEFAULTS, **params}
        self.tokenizer = miditok.MIDILike(_config(p))
        inv = {i: t for t, i in self.tokenizer.vocab.items()}
        tokens = tuple(inv[i] for i in range(len(inv)))
        self.vocab = Vocabulary(self.name, p, tokens)
        self.token_type = np.array([TYPES.index(t.split("_")[0]) for t in tokens])
        self.pitch_of = np.array(
            [int(t.split("_")[1]) if t.startswith(("NoteOn_", "NoteOff_")) else 0 for t in tokens]
        )

    def _merged(self, n: Notes) -> symusic.Score:
        out = symusic.Score(n.tpq)
        track = symusic.Track(name="Piano", program=0, is_drum=False)
        track.notes = symusic.Note.from_numpy(
            time=n.onset.astype(np.int32),
            duration=np.maximum(n.duration, 1).astype(np.int32),
            pitch=fold_pitches(n.pitch).astype(np.int8),
            velocity=np.clip(n.velocity, 1, 127).astype(np.int8),
        )
        out.tracks.append(track)
        out.tempos = symusic.Tempo.from_numpy(time=n.tempo_time.astype(np.int32),
                                              mspq=np.maximum(n.tempo_mspq, 1).astype(np.int32))
        return out

    def encode(self, score: symusic.Score) -> np.ndarray:
        n = cap_silences(score_notes(score))
        if n.onset.size == 0:
            raise MidiReadError("no pitched notes")
        seq = self.tokenizer.encode(self._merged(n))
        seq = seq[0] if isinstance(seq, list) else seq
        check_token_budget(len(seq.ids) + 2, len(n))
        return np.r_[self.bos_id, np.asarray(seq.ids, np.int64), self.eos_id]

    def decode(self, ids: np.ndarray | list[int]) -> symusic.Score:
        ids = np.asarray(ids, np.int64)
        ids = ids[(ids >= 0) & (ids < len(self.vocab))]
        eos = np.flatnonzero(ids == self.eos_id)
        if eos.size:
            ids = ids[: eos[0]]
        ids = ids[self.token_type[ids] >= TYPES.index("NoteOn")]
        if ids.size == 0:
            score = symusic.Score(self.tokenizer.time_division)
            score.tracks.append(symusic.Track(name="Piano", program=0, is_drum=False))
            return score
        score = self.tokenizer.decode([ids.tolist()])
        for track in score.tracks:
            track.name, track.program, track.is_drum = "Piano", 0, False
        return score

    def grammar(self) -> np.ndarray:
        t = {name: i for i, name in enumerate(TYPES)}
        events = [t["NoteOn"], t["NoteOff"], t["TimeShift"], t["Tempo"], t["EOS"]]
        allowed = {
            t["PAD"]: [t["BOS"]],
            t["BOS"]: events,
            t["MASK"]: [],
            t["NoteOn"]: [t["Velocity"]],
            t["Velocity"]: events,
            t["NoteOff"]: events,
            t["TimeShift"]: events,
            t["Tempo"]: events,
            t["EOS"]: [t["BOS"]],
        }
        return transition_matrix(self.token_type, allowed, len(TYPES))

    def transpose_table(self, semitones: int) -> np.ndarray:
        table = np.arange(len(self.vocab))
        index = self.vocab._index
        for i, tok in enumerate(self.vocab.tokens):
            if tok.startswith(("NoteOn_", "NoteOff_")):
                kind, pitch = tok.split("_")
                table[i] = index.get(f"{kind}_{int(pitch) + semitones}", -1)
        return table

    def tempo_table(self, steps: int) -> np.ndarray:
        table = np.arange(len(self.vocab))
        tempo_ids = np.flatnonzero(self.token_type == TYPES.index("Tempo"))
        pos = np.clip(np.arange(tempo_ids.size) + steps, 0, tempo_ids.size - 1)
        table[tempo_ids] = tempo_ids[pos]
        return table
