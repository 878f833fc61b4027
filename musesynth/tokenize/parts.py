"""The meter encoding with parts: every note keeps its voice (the named SATB voice, or the MIDI track and program).

A piece reads::

    BOS KEY_D_major TIMESIG_4/4 TEMPO_120 PART_Soprano PROGRAM_0 PART_Alto PROGRAM_0 PART_Tenor PROGRAM_0
    PART_Bass PROGRAM_0
    BAR POS_0 NOTE_50_P3 DUR_12 NOTE_57_P2 DUR_12 NOTE_62_P1 DUR_24 NOTE_66_P0 DUR_12 POS_12 ... EOS

Everything is the meter encoding (``tokenize.meter``: header, bars, positions, tempo, time signatures,
fermatas, repeat marks, composers, keys; read its docstring) with two changes:

- **Part-aware notes**: the NOTE token names the part as well as the pitch (``NOTE_<pitch>_P<part>``, one
  block of 88 pitches per part), so a piece takes exactly as many tokens per note as in the meter encoding
  (no part or hold tokens), plus two header tokens per part. At an onset the notes follow from the first
  part to the last (``top_first``: for a chorale the soprano first, so a model writing the alto, tenor and
  bass has already read the melody note they sound under), in ascending pitch within a part; two parts may
  sound one pitch at once (a unison is two notes, where meter keeps one). Vocabularies saved before
  ``top_first`` existed wrote the last part first (the bass first) and still read that way.
- **Part header**: after the tempo, one ``PART_<role> PROGRAM_<n>`` pair per part in part order, role
  Soprano, Alto, Tenor, Bass or Other. Only the pairs before the first BAR declare parts.
- **Chords** (``chords=True``, off by default: ``musesynth data --chords``): every onset with notes names the
  harmony sounding there, one ``CHORD_<root>_<quality>`` token (``tokenize.chords``: the notes that start there
  and those held into it) after the first-ranked part's notes at the onset, or right after its POS (and tempo)
  where that part starts no note::

      POS_0 NOTE_67_P0 DUR_12 CHORD_C_min NOTE_63_P1 DUR_12 NOTE_60_P2 DUR_12 NOTE_48_P3 DUR_12

  So a model writing a chorale picks the chord after the melody note and before the voices under it (TonicNet's
  chord tokens, moved after the melody). The tokens are read from the notes, so decoding ignores them and the
  round trip stays exact; transposition moves their roots. The 120 tokens come after every other, so the ids
  of a vocabulary without them are unchanged. In the 410 chorales they add 14% to the tokens.

Which tracks are parts (``midi_io.score_parts``):
- A part is a track with pitched notes. **Empty tracks are dropped** (the music21 export's empty duplicate
  Soprano), and so are drum tracks, as in every encoding.
- Parts are **ordered by role**: Soprano, Alto, Tenor, Bass (by the first word of the track name, any case:
  "Soprano 1", "Bass Continuo"), then every other part (instruments, unnamed tracks), in track order within
  a role. So the four voices of a chorale are parts 0-3, top voice first, and its instruments follow.
- A score of exactly four unnamed tracks (the JS Fake Chorales) is Soprano, Alto, Tenor, Bass from the top.
- Parts beyond ``max_parts`` (default 16, the most in the music21 chorales is 15) join the last part; with
  ``drop_extra_parts`` they are dropped instead (and a voice's second track, "Soprano 2", counts as an extra
  part): ``max_parts=4, drop_extra_parts=True`` reads every chorale as its four voices, the shipped parts model's
  vocabulary.

Within a part, the meter encoding's note rules hold: one note per pitch and onset (the longest), and a
re-struck key ends the previous note of that pitch in that part.

Decoding writes one named track per part in part order: "Soprano", "Alto", "Tenor", "Bass", and
"Part <k>" (k: its place among the parts, from 1) for an Other part, each with its program; a part the
header declares but no note uses is an empty track (dropped again on reading), and a part no header
declares is written as "Part <k>" with program 0. Track names other than the four voices are not kept
(the role is). For quantised music the round trip MIDI -> tokens -> MIDI -> tokens is exact, parts
included (scripts/roundtrip_parts.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import symusic

from musesynth.tokenize import chords
from musesynth.tokenize.meter import DEFAULTS as METER_DEFAULTS
from musesynth.tokenize.meter import OPTIONAL_OFF as METER_OPTIONAL_OFF
from musesynth.tokenize.meter import (
    T_BAR,
    T_DUR,
    T_EOS,
    T_FILL,
    T_NOTE,
    T_PHRASE,
    T_POS,
    T_REPEAT,
    T_RUN,
    T_TEMPO,
    MeterEncoding,
)
from musesynth.tokenize.midi_io import (
    OTHER,
    PIANO_HIGH,
    PIANO_LOW,
    VOICES,
    canonical_order,
    cap_silences,
    end_at_restrike,
    fold_pitches,
    score_parts,
)

T_PART, T_PROGRAM, T_CHORD = 17, 18, 19
N_PITCH = PIANO_HIGH - PIANO_LOW + 1
ROLES = (*VOICES, "Other")
DEFAULTS: dict[str, Any] = {**METER_DEFAULTS, "max_parts": 16, "drop_extra_parts": False, "top_first": True,
                            "chords": False}


class PartsEncoding(MeterEncoding):
    name = "parts"
    DEFAULTS = DEFAULTS
    LEGACY_DEFAULTS: dict[str, Any] = {"top_first": False}  # saved before the top voice came first
    OPTIONAL_OFF = {**METER_OPTIONAL_OFF, "drop_extra_parts": False, "top_first": False, "chords": False}

    def __init__(self, **params: Any) -> None:
        self.max_parts = int({**DEFAULTS, **params}["max_parts"])
        self.drop_extra = bool({**DEFAULTS, **params}["drop_extra_parts"])
        self.top_first = bool({**DEFAULTS, **params}["top_first"])
        self.chords = bool({**DEFAULTS, **params}["chords"])
        if not 1 <= self.max_parts <= 64:
            raise ValueError(f"max_parts must be 1..64 (got {self.max_parts})")
        super().__init__(**params)
        ids = np.arange(len(self.vocab))
        rel = ids - self.note0
        self.part_of = np.where(self.is_note, rel // N_PITCH, -1)
        self.pitch_of = np.where(self.is_note, rel % N_PITCH + PIANO_LOW, 0)
        typ = self.token_type
        self.part0 = int(np.flatnonzero(typ == T_PART)[0])
        self.program0 = int(np.flatnonzero(typ == T_PROGRAM)[0])
        self.role_of = np.where(typ == T_PART, ids - self.part0, -1)
        self.program_of = np.where(typ == T_PROGRAM, ids - self.program0, -1)
        chord = np.flatnonzero(typ == T_CHORD)
        self.chord0 = int(chord[0]) if chord.size else -1
        self.chord_of = np.where(typ == T_CHORD, ids - self.chord0, -1)  # label: quality * 12 + root

    def parts(self) -> PartsEncoding:
        return self

    def _note_tokens(self) -> list[str]:
        return [f"NOTE_{q}_P{k}" for k in range(self.max_parts) for q in range(PIANO_LOW, PIANO_HIGH + 1)]

    def _extra_groups(self) -> list[tuple[int, list[str]]]:
        return [(T_PART, [f"PART_{r}" for r in ROLES]), (T_PROGRAM, [f"PROGRAM_{p}" for p in range(128)]),
                (T_CHORD, chords.label_names() if self.chords else [])]

    def part_rank(self, part: np.ndarray | int) -> np.ndarray:
        """Where a part's notes come among an onset's notes (0: first). Its own inverse: the part at a rank."""
        part = np.asarray(part, np.int64)
        return part if self.top_first else self.max_parts - 1 - part

    def note_order(self, onset: np.ndarray, part: np.ndarray, pitch: np.ndarray) -> np.ndarray:
        """The order in which the encoding writes these notes: by onset, part rank, then ascending pitch."""
        return np.lexsort((pitch, self.part_rank(part), onset))

    def note_token_id(self, pitch: np.ndarray | int, part: np.ndarray | int) -> np.ndarray:
        """Ids of ``NOTE_<pitch>_P<part>`` (pitches in the piano range, parts below ``max_parts``)."""
        return self.note0 + np.asarray(part, np.int64) * N_PITCH + np.asarray(pitch, np.int64) - PIANO_LOW

    # ------------------------------------------------------------------ encode
    def quantize(self, score: symusic.Score) -> dict[str, np.ndarray]:
        """The meter encoding's ``quantize`` with ``part`` per note and the parts' ``role`` and ``program``."""
        n, parts = score_parts(score, self.max_parts, self.drop_extra)
        n = cap_silences(n)
        scale = self.resolution / n.tpq
        onset = np.rint(n.onset * scale).astype(np.int64)
        end = np.rint((n.onset + n.duration) * scale).astype(np.int64)
        dur = np.maximum(end - onset, 1)
        code = n.part * 128 + fold_pitches(n.pitch)  # one key per (part, pitch): the note rules hold per part
        keep = canonical_order(onset, code, dur)
        onset, code, dur = onset[keep], code[keep], dur[keep]
        dur = np.minimum(end_at_restrike(onset, code, dur), self.max_dur)
        part, pitch = code // 128, code % 128
        q = self._placed(n, scale, onset, pitch, dur)
        order = self.note_order(q["onset"], part, q["pitch"])
        return q | {"onset": q["onset"][order], "pitch": q["pitch"][order], "duration": q["duration"][order],
                    "part": part[order], "role": parts.role, "program": parts.program}

    def encode_quantized(self, q: dict[str, np.ndarray]) -> np.ndarray:
        # The meter encoder orders an onset's notes by its "pitch" and writes NOTE ids as note0 + pitch - 21:
        # it gets a code that puts the first-ranked part first, and the ids are mapped back to their part's block.
        rank = self.part_rank(q["part"])
        ids = super().encode_quantized({**q, "pitch": q["pitch"] + N_PITCH * rank})
        notes = self.is_note[ids]
        rel = ids[notes] - self.note0
        ids[notes] = self.note_token_id(rel % N_PITCH + PIANO_LOW, self.part_rank(rel // N_PITCH))
        used = int(q["part"].max()) + 1 if q["part"].size else 0  # a q without roles (edited): Other parts
        role, program = q.get("role", np.full(used, OTHER)), q.get("program", np.zeros(used, np.int64))
        head = np.stack([self.part0 + np.minimum(role, OTHER), self.program0 + program % 128], 1).ravel()
        if self.chords:  # the repeat marks are made again: a bar repeats only with its CHORDs the same
            marks = np.isin(self.token_type[ids], (T_REPEAT, T_RUN))
            ids = self.mark_repeats(self._with_chords(ids[~marks], q))
        return np.insert(ids, 4, head)  # after BOS KEY TIMESIG TEMPO

    def _with_chords(self, ids: np.ndarray, q: dict[str, np.ndarray]) -> np.ndarray:
        """``ids`` with one CHORD token per onset that has notes: after the first-ranked part's notes there, or
        before the onset's first note where that part has none (``tokenize.chords``)."""
        times, labels = chords.onset_labels(q["onset"], q["pitch"], q["duration"], self.max_dur)
        at = np.flatnonzero(self.is_note[ids])
        if not at.size:
            return ids
        group = np.cumsum(np.isin(self.token_type[ids], (T_POS, T_BAR)))[at]  # each onset opens with a POS
        first = np.r_[True, group[1:] != group[:-1]]
        if int(first.sum()) != times.size:  # cannot happen for a q this class quantised; never guess
            raise ValueError("chord labels: the notes' onsets do not match the encoded onsets")
        top = self.part_rank(self.part_of[ids[at]]) == 0
        n = np.cumsum(first) - 1  # onset index of each note
        last_top = np.full(times.size, -1, np.int64)
        np.maximum.at(last_top, n[top], at[top])  # the last top-part note of each onset
        where = np.where(last_top >= 0, last_top + 2, at[first])  # after its DUR, else before the first note
        return np.insert(ids, where, self.chord0 + labels)

    def without_chords(self, ids: np.ndarray | list[int]) -> np.ndarray:
        """``ids`` with the CHORD tokens left out (they are read from the notes, and decoding ignores them)."""
        ids = np.asarray(ids, np.int64)
        if self.chord0 < 0:
            return ids
        inside = (ids >= 0) & (ids < len(self.vocab))
        return ids[~(inside & (self.token_type[np.where(inside, ids, 0)] == T_CHORD))]

    # ------------------------------------------------------------------ decode
    def parts_of(self, ids: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Role and program of each part the header declares (the PART PROGRAM pairs before the first BAR; at
        most ``max_parts``, a PART without its PROGRAM plays program 0)."""
        ids = np.asarray(ids, np.int64)
        ids = self.natural_order(ids[(ids >= 0) & (ids < len(self.vocab))])
        bar = np.flatnonzero(self.token_type[ids] == T_BAR)
        ids = ids[: bar[0]] if bar.size else ids
        at = np.flatnonzero(self.token_type[ids] == T_PART)[: self.max_parts]
        nxt = ids[np.minimum(at + 1, max(ids.size - 1, 0))]
        program = np.where(self.token_type[nxt] == T_PROGRAM, self.program_of[nxt], 0)
        return self.role_of[ids[at]], program

    def decode_quantized(self, ids: np.ndarray | list[int]) -> dict[str, Any]:
        """The meter encoding's ``decode_quantized`` with ``part`` per note, and ``role``/``program`` per part."""
        q = super().decode_quantized(ids)
        tl = self._timeline(ids)
        tids, typ, time, valid = tl["ids"], tl["type"], tl["time"], tl["valid"]
        pos = np.flatnonzero((typ[:-1] == T_NOTE) & (typ[1:] == T_DUR))
        pos = pos[valid[pos]]
        onset, dur = time[pos], self.dur_of[tids[pos + 1]]
        code = self.part_of[tids[pos]] * 128 + self.pitch_of[tids[pos]]
        keep = canonical_order(onset, code, dur)
        onset, code, dur = onset[keep], code[keep], dur[keep]
        dur = end_at_restrike(onset, code, dur)
        part, pitch = code // 128, code % 128
        order = self.note_order(onset, part, pitch)
        role, program = self.parts_of(ids)
        return {**q, "onset": onset[order], "pitch": pitch[order], "duration": dur[order], "part": part[order],
                "role": role, "program": program}

    def score_of(self, q: dict[str, Any]) -> symusic.Score:
        """One named track per part (see the module docstring); tempo, meter, key and fermatas as in meter."""
        score = super().score_of(q)
        role, program = np.asarray(q.get("role", [])), np.asarray(q.get("program", []))
        part = np.asarray(q.get("part", np.zeros(q["onset"].size, np.int64)))
        n_parts = max(role.size, int(part.max()) + 1 if part.size else 0)
        k, off = self.ticks_per_step, q["offset"]
        tracks = []
        for i in range(n_parts):
            if i >= role.size and not (part == i).any():
                continue  # a part neither declared nor used
            r = int(role[i]) if i < role.size else OTHER
            name = VOICES[r] if r < OTHER else f"Part {i + 1}"
            track = symusic.Track(name=name, program=int(program[i]) if i < program.size else 0, is_drum=False)
            sel = part == i
            track.notes = symusic.Note.from_numpy(
                time=((q["onset"][sel] - off) * k).astype(np.int32), duration=(q["duration"][sel] * k).astype(np.int32),
                pitch=q["pitch"][sel].astype(np.int8), velocity=np.full(int(sel.sum()), self.velocity, np.int8))
            tracks.append(track)
        score.tracks = tracks
        return score

    def header_info(self, ids: np.ndarray | list[int]) -> dict[str, Any]:
        info = super().header_info(ids)
        role, _ = self.parts_of(ids)
        if role.size:
            info["parts"] = [ROLES[int(r)] for r in role]
        return info

    # ------------------------------------------------------------------ grammar / augmentation
    def grammar(self) -> np.ndarray:
        """The meter grammar, plus the part header: TEMPO -> PART -> PROGRAM -> PART | BAR | EOS."""
        g = super().grammar()
        typ = self.token_type

        def allow(prev: tuple[int, ...], nxt: tuple[int, ...]) -> None:
            g[np.ix_(np.isin(typ, prev), np.isin(typ, nxt))] = True

        allow((T_TEMPO,), (T_PART,))
        allow((T_PART,), (T_PROGRAM,))
        allow((T_PROGRAM,), (T_PART, T_BAR, T_EOS))
        allow((T_FILL,), (T_PART, T_PROGRAM))
        if self.chords:  # a CHORD after an onset's POS (or its tempo) or after a note; notes or the onset's end next
            allow((T_POS, T_TEMPO, T_DUR, T_FILL), (T_CHORD,))
            allow((T_CHORD,), (T_NOTE, T_PHRASE, T_POS, T_BAR, T_EOS))
        return g

    def transpose_table(self, semitones: int) -> np.ndarray:
        """As meter's, each note staying in its part."""
        table = super().transpose_table(semitones)  # moves notes into part 0's block
        moved = self.is_note & (table >= 0)
        table[moved] += N_PITCH * self.part_of[moved]
        if self.chords:
            c = self.chord_of[self.chord_of >= 0]
            table[self.chord0 + c] = self._moved_chord(c, semitones)
        return table

    def _moved_chord(self, label: np.ndarray, semitones: int | np.ndarray) -> np.ndarray:
        """The CHORD ids of ``label`` (quality * 12 + root) with the root moved ``semitones``."""
        return self.chord0 + label // 12 * 12 + (label % 12 + semitones) % 12

    def transpose_ids(self, ids: np.ndarray | list[int], semitones: int | np.ndarray, keys: bool = True) -> np.ndarray:
        ids = np.array(ids, np.int64)
        inside = (ids >= 0) & (ids < len(self.vocab))
        part = np.where(inside, self.part_of[np.where(inside, ids, 0)], -1)
        out = super().transpose_ids(ids, semitones, keys)  # notes land in part 0's block
        out[part >= 0] += N_PITCH * part[part >= 0]
        if self.chords:
            c = np.where(inside, self.chord_of[np.where(inside, ids, 0)], -1)
            at = c >= 0
            shift = np.broadcast_to(np.asarray(semitones, np.int64), ids.shape)[at]
            out[at] = self._moved_chord(c[at], shift)
        return out
