"""A meter-, phrase- and key-aware variant of the chord encoding (REMI-style bars and positions).

A piece reads::

    BOS KEY_D_major TIMESIG_3/4 TEMPO_120
    BAR POS_24 NOTE_50 DUR_12 NOTE_62 DUR_12
    BAR POS_0 NOTE_45 DUR_24 NOTE_61 DUR_24 PHRASE POS_24 TEMPO_95.24 NOTE_50 DUR_12 ...
    BAR TIMESIG_4/4 POS_0 ... EOS

- **Header**: the key (``KEY_<tonic>_<mode>``, tonic spelled with sharps: C C# D D# E F F# G G# A A# B),
  the first time signature and the initial tempo.
- **Bars**: ``BAR`` opens every bar (empty bars are consecutive BARs); its length, in grid steps, is that
  of the active time signature. A change of time signature is a ``TIMESIG`` token right after the BAR
  of the bar where it takes effect.
- **Onsets**: ``POS_k`` (k = grid steps from the bar start) opens each onset; a tempo change there is a
  ``TEMPO`` token after the POS (a tempo change where no note starts is a POS and a TEMPO alone);
  then the notes as NOTE DUR pairs in ascending pitch, exactly as in the chord encoding (same grid,
  same NOTE/DUR/TEMPO tokens); ``PHRASE`` after the notes marks an onset with a fermata.
  No SHIFT tokens: BAR and POS carry time.

- **Repeats**: ``REPEAT_k RUN_n`` after a bar's BAR (and TIMESIG) says this bar and the n-1 after it are
  identical to the n bars that start k bars earlier (bar by bar: same meter; same onsets, notes, tempo
  and phrase marks); the bars' tokens follow in full, so the marks add two tokens and remove nothing.
  For each bar, of several candidate k the one the previous bar used is kept, else the one whose repeat
  runs longest; a run of bars with one k is one passage (cut every ``MAX_RUN`` = 16 bars). This is the
  form made explicit: in the 410 chorales 11% of bars repeat an earlier one, mostly the repeated
  opening phrases (k = 4 bars back, 3 bars long). A model decides once per passage whether and what to
  repeat; the sampler then copies the passage exactly (``generate.repeats``).

Vocabulary (defaults: 12 steps per beat, durations up to 8 beats, bars up to 16 beats, repeats up to 64
bars back): 3 special + 88 notes + 96 durations + 29 tempos + BAR + PHRASE + 192 positions + 56 time
signatures (n/2 for n <= 8, n/4, n/8 and n/16 for n <= 16; bars of at most ``max_bar_beats``) + 24 keys
+ 64 REPEAT + 16 RUN = 570 tokens. A vocabulary saved before repeats existed (no ``max_repeat_bars``) is
the same without the REPEAT and RUN tokens (``LEGACY_DEFAULTS``), so older datasets and models keep
working.

Reading rules (on top of midi_io's and the chord encoding's note and tempo quantisation):
- **Time signatures**: a MIDI file without one is in 4/4. One outside the vocabulary (denominator
  other than 2, 4, 8, 16, numerator above 16, or a bar longer than ``max_bar_beats``: such a long
  bar could not be addressed by the POS tokens) is read as 4/4. A change that does not fall on a
  bar line of the previous meter takes effect at the next bar line; of several at one bar line the
  last wins; repeats and changes after the last onset are dropped.
- **Pickup bar** (anacrusis): a first time signature that lasts exactly one bar and is shorter than
  the next one (the corpus export writes a one-beat upbeat in 4/4 as 1/4 then 4/4) is read as the
  end of a full bar of the next signature: the header carries 4/4 and the upbeat sits at POS_36.
  Decoding writes any first bar whose first event is not at POS_0 (and whose next bar keeps the
  meter) back as a pickup time signature (its length rounded up to a whole number of 16ths), so the
  decoded MIDI starts with the first note rather than with silence. The tokens round-trip either
  way; only a rest that opens a full first bar (5 of the 410 chorales) is dropped from the MIDI.
- **Fermatas**: marker events whose text contains "fermata" become a PHRASE after the notes of the
  onset at the marker (or of the latest onset before it; the first onset if before all notes).
- **Key** (one per piece; key changes are not encoded): the key that best explains the piece's
  duration-weighted pitch classes (Krumhansl-Schmuckler), its final bass and its first key signature,
  by the rule of ``tokenize.key_finding`` (the one ``musesynth evaluate`` measures generated pieces by):
  a G minor chorale notated with one flat is G minor, not D minor; a piece ending on D with no
  signature and D minor's notes is D minor. The histogram and final bass use the quantised notes, and
  decoding writes the key's own signature, so a decoded piece re-reads the same key.

Decoding rules for token sequences a model may write: tokens before the first BAR belong to the
first bar; a POS that goes backwards within a bar is ignored (the notes join the current onset);
notes (and tempo/phrase marks) at a POS at or beyond the bar length are dropped; a TIMESIG that does
not directly follow a BAR takes effect at the next bar; the first KEY token is the key (none: no
key signature is written); REPEAT and RUN tokens are ignored; velocity is not encoded (decoded at 80).
Decoding writes the time signatures, the key signature, the tempo changes and a "fermata" marker per
PHRASE, into one track named "Piano" (program 0). For quantised music the round trip
MIDI -> tokens -> MIDI -> tokens is exact.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import symusic

from musesynth.errors import MidiReadError, MusesynthError
from musesynth.theory import (  # noqa: F401 (PITCH_NAMES, parse_key, tonic_offset: re-exported)
    MAJOR_NAMES,
    MINOR_NAMES,
    MODES,
    PITCH_NAMES,
    key_name,
    key_signature_sharps,
    mode_index,
    parse_key,
    tonic_offset,
)
from musesynth.tokenize.base import KeySpec, RepeatSpec, check_token_budget, transition_matrix
from musesynth.tokenize.grid import GridEncoding
from musesynth.tokenize.key_finding import find_key
from musesynth.tokenize.midi_io import (
    PIANO_HIGH,
    PIANO_LOW,
    Notes,
    canonical_order,
    cap_silences,
    end_at_restrike,
    fold_pitches,
    score_notes,
)
from musesynth.tokenize.vocab import Vocabulary

(T_PAD, T_BOS, T_EOS, T_NOTE, T_DUR, T_TEMPO, T_BAR, T_PHRASE, T_POS, T_TIMESIG, T_KEY, T_REPEAT, T_RUN,
 T_COMPOSER, T_HOLE, T_FILL, T_FILL_END) = range(17)
N_TYPES = 17
MAX_RUN = 16  # bars one repeat mark covers (a longer repeated passage takes several marks)
DEFAULTS: dict[str, Any] = {
    "resolution": 12,
    "max_duration_beats": 8,
    "max_bar_beats": 16,
    "tempo_low": -18,
    "tempo_high": 10,
    "velocity": 80,
    "max_repeat_bars": 64,
    "infill": False,
    "composers": (),
}
# Parameters whose "off" value is left out of the saved vocabulary, so vocabularies without them keep
# their exact parameters and fingerprints (and a saved vocabulary without them means "off").
OPTIONAL_OFF: dict[str, Any] = {"infill": False, "composers": ()}
_COMPOSER_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# Vocabularies saved before REPEAT tokens existed carry no max_repeat_bars: they had none.
LEGACY_DEFAULTS: dict[str, Any] = {"max_repeat_bars": 0}
TS_DENOMINATORS = (2, 4, 8, 16)
TS_MAX_NUMERATOR = 16
# the keys' theory lives in musesynth.theory; its names stay importable from here
_mode_index = mode_index
_MAJOR_NAMES, _MINOR_NAMES = MAJOR_NAMES, MINOR_NAMES


# ---------------------------------------------------------------------- encoding
class MeterEncoding(GridEncoding):
    name = "meter"
    special = {"PAD": "PAD", "BOS": "BOS", "EOS": "EOS"}
    DEFAULTS = DEFAULTS
    LEGACY_DEFAULTS = LEGACY_DEFAULTS
    OPTIONAL_OFF = OPTIONAL_OFF

    def __init__(self, **params: Any) -> None:
        p = self._grid_params(params)
        self.max_bar = int(p["max_bar_beats"]) * self.resolution
        self.max_repeat = int(p["max_repeat_bars"])  # in range: _grid_params checked it
        self.infill = bool(p["infill"])
        self.composers = tuple(str(c) for c in p["composers"])
        bad = [c for c in self.composers if not _COMPOSER_RE.match(c)]
        if bad or len(set(self.composers)) != len(self.composers):
            raise ValueError(f"composers must be distinct lower-case names of a-z, 0-9, _ and - (got {bad})")
        p = {k: v for k, v in p.items() if k not in self.OPTIONAL_OFF or v}  # off: not saved (OPTIONAL_OFF)
        if self.infill:
            p["infill"] = True
        if self.composers:
            p["composers"] = list(self.composers)

        sigs = [(n, d) for d in TS_DENOMINATORS for n in range(1, TS_MAX_NUMERATOR + 1)
                if (n * 4 * self.resolution) % d == 0 and n * 4 * self.resolution // d <= self.max_bar]
        self.ts_sig = np.array(sigs, np.int64).reshape(-1, 2)
        self.ts_len = self.ts_sig[:, 0] * 4 * self.resolution // self.ts_sig[:, 1]
        self.ts_index = {s: i for i, s in enumerate(sigs)}
        self.default_ts = self.ts_index[(4, 4)]

        groups: list[tuple[int, list[str]]] = [
            (T_PAD, ["PAD"]), (T_BOS, ["BOS"]), (T_EOS, ["EOS"]),
            (T_NOTE, self._note_tokens()),
            (T_DUR, [f"DUR_{d}" for d in range(1, self.max_dur + 1)]),
            (T_TEMPO, [f"TEMPO_{t:g}" for t in self.tempos]),
            (T_BAR, ["BAR"]), (T_PHRASE, ["PHRASE"]),
            (T_POS, [f"POS_{k}" for k in range(self.max_bar)]),
            (T_TIMESIG, [f"TIMESIG_{n}/{d}" for n, d in sigs]),
            (T_KEY, [f"KEY_{PITCH_NAMES[t]}_{m}" for m in MODES for t in range(12)]),
            (T_REPEAT, [f"REPEAT_{k}" for k in range(1, self.max_repeat + 1)]),
            (T_RUN, [f"RUN_{n}" for n in range(1, MAX_RUN + 1)] if self.max_repeat else []),
            # control and infilling tokens come last, so older token ids keep their meaning
            (T_COMPOSER, [f"COMPOSER_{c}" for c in self.composers]),
            (T_HOLE, ["HOLE"] if self.infill else []), (T_FILL, ["FILL"] if self.infill else []),
            (T_FILL_END, ["FILL_END"] if self.infill else []),
            *self._extra_groups(),  # a subclass's own token groups (tokenize.parts), after all of these
        ]
        tokens = [t for _, g in groups for t in g]
        self.vocab = Vocabulary(self.name, p, tuple(tokens))
        self.token_type = np.concatenate([np.full(len(g), k, np.int64) for k, g in groups])
        first = np.r_[0, np.cumsum([len(g) for _, g in groups])[:-1]]
        (_, _, _, self.note0, self.dur0, self.tempo0, self.bar_id, self.phrase_id,
         self.pos0, self.ts0, self.key0, self.repeat0, self.run0, self.composer0, hole, fill,
         fill_end) = (int(x) for x in first[:N_TYPES])
        self.hole_id, self.fill_id, self.fill_end_id = (hole, fill, fill_end) if self.infill else (-1, -1, -1)

        ids = self._value_tables(T_NOTE, T_DUR, T_TEMPO)
        typ = self.token_type
        self.pos_of = np.where(typ == T_POS, ids - self.pos0, 0)
        self.ts_of = np.where(typ == T_TIMESIG, ids - self.ts0, 0)
        self.key_index_of = np.where(typ == T_KEY, ids - self.key0, 0)  # mode * 12 + tonic
        self.repeat_of = np.where(typ == T_REPEAT, ids - self.repeat0 + 1, 0)  # bars back
        self.run_of = np.where(typ == T_RUN, ids - self.run0 + 1, 0)  # bars copied

    def _note_tokens(self) -> list[str]:
        """The NOTE group's token names (tokenize.parts gives one block of them per part)."""
        return [f"NOTE_{q}" for q in range(PIANO_LOW, PIANO_HIGH + 1)]

    def _extra_groups(self) -> list[tuple[int, list[str]]]:
        """(type, tokens) groups a subclass adds at the end of the vocabulary; none here."""
        return []

    # ------------------------------------------------------------------ keys
    writes_meter = True

    def keyed(self) -> MeterEncoding:
        return self

    def header_controls(self) -> MeterEncoding:
        return self

    def bar_infill(self) -> MeterEncoding | None:
        return self if self.infill else None

    def key_token_id(self, tonic_pc: int, mode: str | int) -> int:
        """Id of ``KEY_<tonic>_<mode>`` (mode "major"/"minor" or 0/1)."""
        return self.key0 + 12 * _mode_index(mode) + int(tonic_pc) % 12

    def key_of(self, ids: np.ndarray | list[int]) -> tuple[int, str] | None:
        """``(tonic pitch class, "major" | "minor")`` of the first KEY token, None if there is none."""
        ids = np.asarray(ids, np.int64)
        ids = ids[(ids >= 0) & (ids < len(self.vocab))]
        at = np.flatnonzero(self.token_type[ids] == T_KEY)
        if at.size == 0:
            return None
        k = int(self.key_index_of[ids[at[0]]])
        return k % 12, MODES[k // 12]

    def transpose_ids(self, ids: np.ndarray | list[int], semitones: int | np.ndarray, keys: bool = True) -> np.ndarray:
        """``ids`` moved by ``semitones`` (one number, or one per token): notes (folded back into the piano
        range by octaves where they would leave it) and, with ``keys``, KEY tokens' tonics; nothing else."""
        ids = np.array(ids, np.int64)
        shift = np.broadcast_to(np.asarray(semitones, np.int64), ids.shape)
        inside = (ids >= 0) & (ids < len(self.vocab))
        typ = np.where(inside, self.token_type[np.where(inside, ids, 0)], -1)
        notes = typ == T_NOTE
        ids[notes] = self.note0 + fold_pitches(self.pitch_of[ids[notes]] + shift[notes]) - PIANO_LOW
        if keys:
            at = typ == T_KEY
            k = self.key_index_of[ids[at]]
            ids[at] = self.key0 + (k // 12) * 12 + (k % 12 + shift[at]) % 12
        return ids

    def set_key(self, ids: np.ndarray | list[int], tonic: int, mode: str | int,
                transpose: bool = False) -> np.ndarray:
        """``ids`` with the header key replaced by the given key (inserted after BOS if there is none).

        With ``transpose=True`` the notes also move from the old tonic to the new one by the smaller
        interval (-5..+6 semitones; notes that would leave the piano range fold back by an octave)."""
        ids = np.array(ids, np.int64)
        new = self.key_token_id(tonic, mode)
        old = self.key_of(ids)
        if transpose and old is not None:
            ids = self.transpose_ids(ids, tonic_offset(int(tonic) - old[0]))
        inside = (ids >= 0) & (ids < len(self.vocab))
        at = np.flatnonzero(inside & (self.token_type[np.where(inside, ids, 0)] == T_KEY))
        if at.size:
            ids[at[0]] = new
            return ids
        pos = 1 if ids.size and ids[0] == self.bos_id else 0
        return np.r_[ids[:pos], new, ids[pos:]]

    # ------------------------------------------------------------------ composers
    def composer_token_id(self, name: str) -> int:
        """Id of ``COMPOSER_<name>``; an unknown name is a one-line error listing the known ones."""
        key = str(name).strip().lower()
        if key not in self.composers:
            known = ", ".join(self.composers) if self.composers else "none: this vocabulary has no composer tokens"
            raise MusesynthError(f"unknown composer '{name}' (known: {known})")
        return self.composer0 + self.composers.index(key)

    def composer_of(self, ids: np.ndarray | list[int]) -> str | None:
        """The composer named by the first COMPOSER token, None if there is none."""
        ids = np.asarray(ids, np.int64)
        ids = ids[(ids >= 0) & (ids < len(self.vocab))]
        at = np.flatnonzero(self.token_type[ids] == T_COMPOSER)
        return self.composers[int(ids[at[0]]) - self.composer0] if at.size else None

    def set_composer(self, ids: np.ndarray | list[int], name: str) -> np.ndarray:
        """``ids`` with the header's composer replaced (inserted right after BOS if there is none)."""
        ids = np.array(ids, np.int64)
        new = self.composer_token_id(name)
        inside = (ids >= 0) & (ids < len(self.vocab))
        at = np.flatnonzero(inside & (self.token_type[np.where(inside, ids, 0)] == T_COMPOSER))
        if at.size:
            ids[at[0]] = new
            return ids
        pos = 1 if ids.size and ids[0] == self.bos_id else 0
        return np.r_[ids[:pos], new, ids[pos:]]

    # ------------------------------------------------------------------ header (controls)
    def tempo_token_id(self, bpm: float) -> int:
        """The TEMPO token nearest ``bpm`` (bins a semitone apart); outside the bins' range: a one-line error."""
        bpm = float(bpm)
        lo, hi = float(self.tempos[0]), float(self.tempos[-1])
        if not (math.isfinite(bpm) and lo / 1.03 <= bpm <= hi * 1.03):
            raise MusesynthError(f"unknown tempo {bpm:g} BPM (known: {lo:g} to {hi:g} BPM, in bins a semitone apart)")
        return self.tempo0 + int(np.abs(np.log(self.tempos / bpm)).argmin())

    def header_info(self, ids: np.ndarray | list[int]) -> dict[str, Any]:
        ids = np.asarray(ids, np.int64)[:6]
        ids = ids[(ids >= 0) & (ids < len(self.vocab))]
        typ = self.token_type[ids]
        info: dict[str, Any] = {}
        composer, key = self.composer_of(ids), self.key_of(ids)
        if composer is not None:
            info["composer"] = composer
        if key is not None:
            info["key"] = key_name(*key)
        ts, tempo = np.flatnonzero(typ == T_TIMESIG), np.flatnonzero(typ == T_TEMPO)
        if ts.size:
            n, d = self.ts_sig[self.ts_of[ids[ts[0]]]]
            info["time_signature"] = f"{n}/{d}"
        if tempo.size:
            info["tempo"] = float(self.tempos[self.tempo_bin_of[ids[tempo[0]]]])
        return info

    def set_tempo(self, ids: np.ndarray | list[int], bpm: float) -> np.ndarray:
        """``ids`` with the header's tempo (the first TEMPO within the header) set to the bin nearest ``bpm``."""
        ids = np.array(ids, np.int64)
        new = self.tempo_token_id(bpm)
        at = np.flatnonzero(self.token_type[np.clip(ids[:6], 0, len(self.vocab) - 1)] == T_TEMPO)
        if at.size:
            ids[at[0]] = new
        return ids

    # ------------------------------------------------------------------ infilling
    def natural_order(self, ids: np.ndarray | list[int]) -> np.ndarray:
        """A fill-in-the-middle sequence ``HOLE suffix FILL prefix middle FILL_END ...`` (``data.fim``) back in
        time order (``prefix middle suffix ...``); other sequences unchanged. Stray infill tokens are dropped."""
        ids = np.asarray(ids, np.int64)
        if not self.infill:
            return ids
        hole = np.flatnonzero(ids == self.hole_id)
        fill = np.flatnonzero(ids == self.fill_id)
        if hole.size and fill.size and fill[-1] > hole[0]:
            h = int(hole[0])
            f = int(fill[fill > h][0])
            end = np.flatnonzero(ids[f:] == self.fill_end_id)
            e = f + int(end[0]) if end.size else ids.size
            ids = np.r_[ids[:h], ids[f + 1 : e], ids[h + 1 : f], ids[e + 1 :]]  # prefix + middle, suffix, rest
        return ids[~np.isin(ids, [self.hole_id, self.fill_id, self.fill_end_id])]

    # ------------------------------------------------------------------ encode
    def _time_signatures(self, n: Notes, scale: float) -> tuple[np.ndarray, np.ndarray, int]:
        """Raw MIDI time signatures -> (token-time steps, vocabulary indices, pickup shift)."""
        step = np.rint(n.ts_time * scale).astype(np.int64)
        order = np.argsort(step, kind="stable")
        step, num, den = step[order], n.ts_numerator[order], n.ts_denominator[order]
        last = np.ones(step.size, bool)
        last[:-1] = step[1:] != step[:-1]
        step, num, den = step[last], num[last], den[last]
        if step.size == 0 or step[0] > 0:
            step, num, den = np.r_[0, step], np.r_[4, num], np.r_[4, den]
        idx = np.array([self.ts_index.get((int(a), int(b)), self.default_ts) for a, b in zip(num, den)], np.int64)
        raw_len = num[0] * 4 * self.resolution / max(int(den[0]), 1)
        if step.size >= 2 and raw_len == int(raw_len) >= 1:
            # A pickup: the first signature lasts exactly one bar, shorter than the next one's.
            p_step, p_idx = self._normalise(int(raw_len), step, np.r_[-1, idx[1:]])  # -1: the raw first bar
            if p_step.size >= 2 and p_step[1] == raw_len < self.ts_len[p_idx[1]]:
                shift = int(self.ts_len[p_idx[1]] - raw_len)
                return np.r_[0, p_step[2:] + shift], p_idx[1:], shift
        ts_step, ts_idx = self._normalise(int(self.ts_len[idx[0]]), step, idx)
        return ts_step, ts_idx, 0

    def _normalise(self, first_len: int, step: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Time-signature changes moved to the first bar line at or after them (the first bar lasting
        ``first_len`` steps); at one bar line the last wins; repeats dropped."""
        out_step, out_idx, out_len = [0], [int(idx[0])], [first_len]
        for t, i in zip(step[1:].tolist(), idx[1:].tolist()):
            s, bar = out_step[-1], out_len[-1]
            at = s + -(-(t - s) // bar) * bar if t > s else s
            if at == s:
                out_idx[-1], out_len[-1] = i, int(self.ts_len[i])
            else:
                out_step.append(at)
                out_idx.append(i)
                out_len.append(int(self.ts_len[i]))
        ts_step, ts_idx = np.array(out_step, np.int64), np.array(out_idx, np.int64)
        changed = np.ones(ts_idx.size, bool)
        changed[1:] = ts_idx[1:] != ts_idx[:-1]
        return ts_step[changed], ts_idx[changed]

    def quantize(self, score: symusic.Score) -> dict[str, np.ndarray]:
        """Canonical quantised content of a score as the tokens carry it (times in grid steps from the
        start of the first full bar, i.e. after the pickup shift): notes, tempo changes (the first at 0
        is the header tempo), time signatures (the first at 0), phrase ends, and ``key`` = [tonic, mode]."""
        n = cap_silences(score_notes(score))
        scale = self.resolution / n.tpq
        onset = np.rint(n.onset * scale).astype(np.int64)
        end = np.rint((n.onset + n.duration) * scale).astype(np.int64)
        dur = np.maximum(end - onset, 1)
        pitch = fold_pitches(n.pitch)
        keep = canonical_order(onset, pitch, dur)
        onset, pitch, dur = onset[keep], pitch[keep], dur[keep]
        dur = np.minimum(end_at_restrike(onset, pitch, dur), self.max_dur)
        return self._placed(n, scale, onset, pitch, dur)

    def _placed(self, n: Notes, scale: float, onset: np.ndarray, pitch: np.ndarray, dur: np.ndarray
                ) -> dict[str, np.ndarray]:
        """Quantised notes placed on the bar grid (after the pickup shift), with the tempo map, time signatures,
        phrase ends and key found for them: what ``quantize`` gives, shared by the encodings built on this one."""
        ts_step, ts_idx, shift = self._time_signatures(n, scale)
        onset = onset + shift
        last_onset = int(onset.max()) if onset.size else 0
        inside = ts_step <= last_onset
        inside[0] = True
        ts_step, ts_idx = ts_step[inside], ts_idx[inside]

        t_step, t_bin = self._tempo_map(n.tempo_time, n.tempo_bpm, scale)
        t_step = np.where(t_step > 0, t_step + shift, 0)  # the tempo at the very start is the header's
        inside = t_step <= last_onset
        t_step, t_bin = t_step[inside], t_bin[inside]
        changed = np.ones(t_bin.size, bool)
        changed[1:] = t_bin[1:] != t_bin[:-1]
        t_step, t_bin = t_step[changed], t_bin[changed]

        starts = np.unique(onset)
        phrase = np.zeros(0, np.int64)
        if starts.size and n.fermata_time.size:
            f = np.rint(n.fermata_time * scale).astype(np.int64) + shift
            phrase = np.unique(starts[np.clip(np.searchsorted(starts, f, side="right") - 1, 0, None)])

        ks = np.argsort(n.key_time, kind="stable")
        tonic, mode = find_key(pitch, dur, onset, int(n.key_sharps[ks[0]]) if ks.size else None)
        return {"onset": onset, "pitch": pitch, "duration": dur, "tempo_step": t_step, "tempo_bin": t_bin,
                "ts_step": ts_step, "ts_index": ts_idx, "phrase_step": phrase,
                "key": np.array([tonic, mode], np.int64)}

    def encode(self, score: symusic.Score) -> np.ndarray:
        q = self.quantize(score)
        if q["onset"].size == 0:
            raise MidiReadError("no pitched notes")
        ids = self.encode_quantized(q)
        check_token_budget(ids.size, q["onset"].size)
        return ids

    def _bar_starts(self, ts_step: np.ndarray, ts_idx: np.ndarray, last: int) -> tuple[np.ndarray, np.ndarray]:
        """Start of every bar up to the one holding time ``last``, and for each bar its time-signature
        index if one starts there (else -1)."""
        length = self.ts_len[ts_idx]
        end = np.r_[ts_step[1:], last + 1]
        count = np.maximum(-(-(end - ts_step) // length), 1)
        first = np.cumsum(count) - count
        bar = np.arange(int(count.sum()))
        seg = np.repeat(np.arange(ts_step.size), count)
        starts = ts_step[seg] + (bar - first[seg]) * length[seg]
        change = np.full(bar.size, -1, np.int64)
        change[first] = ts_idx
        return starts, change

    def encode_quantized(self, q: dict[str, np.ndarray]) -> np.ndarray:
        onset, pitch, dur = q["onset"], q["pitch"], q["duration"]
        t_step, t_bin = q["tempo_step"], q["tempo_bin"]
        ts_step, ts_idx = q["ts_step"], q["ts_index"]
        last = int(max(onset.max() if onset.size else 0, t_step.max() if t_step.size else 0))
        bar_start, bar_ts = self._bar_starts(ts_step, ts_idx, last)
        bar_ts[0] = -1  # the first signature is in the header

        change_step, change_bin = t_step[1:], t_bin[1:]
        pos_time = np.union1d(onset, change_step)
        pos_bar = np.searchsorted(bar_start, pos_time, side="right") - 1
        tempo_at = np.full(pos_time.size, -1, np.int64)
        tempo_at[np.searchsorted(pos_time, change_step)] = self.tempo0 + change_bin

        nb, npos, nn, nph = bar_start.size, pos_time.size, onset.size, q["phrase_step"].size
        ev_time = np.r_[bar_start, pos_time, onset, q["phrase_step"]]
        ev_kind = np.r_[np.zeros(nb, np.int64), np.ones(npos, np.int64), np.full(nn, 2), np.full(nph, 3)]
        ev_sub = np.r_[np.zeros(nb + npos, np.int64), pitch, np.zeros(nph, np.int64)]
        ev_a = np.r_[np.full(nb, self.bar_id), self.pos0 + pos_time - bar_start[pos_bar],
                     self.note0 + pitch - PIANO_LOW, np.full(nph, self.phrase_id)]
        ev_b = np.r_[np.where(bar_ts >= 0, self.ts0 + bar_ts, -1), tempo_at,
                     self.dur0 + dur - 1, np.full(nph, -1)]
        order = np.lexsort((ev_sub, ev_kind, ev_time))
        ev_a, ev_b = ev_a[order], ev_b[order]
        count = 1 + (ev_b >= 0)
        start = np.cumsum(count) - count
        out = np.empty(int(count.sum()), np.int64)
        out[start] = ev_a
        out[(start + 1)[ev_b >= 0]] = ev_b[ev_b >= 0]
        tonic, mode = (int(x) for x in q["key"])
        head = [self.bos_id, self.key_token_id(tonic, mode), self.ts0 + int(ts_idx[0]), self.tempo0 + int(t_bin[0])]
        return self.mark_repeats(np.r_[head, out, self.eos_id])

    # ------------------------------------------------------------------ repeats
    def _bar_contents(self, ids: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]], np.ndarray]:
        """BAR positions, each bar's content span (after its BAR, TIMESIG and REPEAT; up to the next BAR
        or EOS) and each bar's meter index."""
        typ = self.token_type[ids]
        bars = np.flatnonzero(typ == T_BAR)
        ends = np.r_[bars[1:], np.flatnonzero(typ == T_EOS)[-1:] if (typ == T_EOS).any() else ids.size]
        ends = ends[: bars.size]
        spans, meter = [], np.empty(bars.size, np.int64)
        ts = np.flatnonzero(typ == T_TIMESIG)
        for i, (b, e) in enumerate(zip(bars.tolist(), ends.tolist())):
            s = b + 1
            while s < e and typ[s] in (T_TIMESIG, T_REPEAT, T_RUN):
                s += 1
            spans.append((s, e))
            last_ts = ts[ts < s]
            meter[i] = self.ts_of[ids[last_ts[-1]]] if last_ts.size else self.default_ts
        return bars, spans, meter

    def repeat_plan(self, ids: np.ndarray) -> np.ndarray:
        """For every bar, how many bars back the bar it repeats lies (0: not a repeat).

        A bar repeats bar i-k when its content (onsets, notes, tempo and phrase marks) is identical and
        the meter is the same. Of several such k, the one the previous bar used is kept (a repeated
        passage stays one passage), else the one whose repeat runs longest forward, else the nearest."""
        bars, spans, meter = self._bar_contents(ids)
        n, kmax = bars.size, self.max_repeat
        plan = np.zeros(n, np.int64)
        if n < 2 or kmax == 0:
            return plan
        codes: dict[bytes, int] = {}
        h = np.array([codes.setdefault(ids[s:e].tobytes(), len(codes)) if e > s else -1 - i
                      for i, (s, e) in enumerate(spans)], np.int64)
        k = np.arange(1, kmax + 1)
        src = np.arange(n)[:, None] - k[None, :]
        ok = src >= 0
        srcc = np.maximum(src, 0)
        match = ok & (h[srcc] == h[:, None]) & (meter[srcc] == meter[:, None]) & (h[:, None] >= 0)
        run = np.zeros((n + 1, kmax), np.int64)
        for i in range(n - 1, -1, -1):  # one pass over bars (not tokens): run length of each k forward
            run[i] = np.where(match[i], run[i + 1] + 1, 0)
        for i in range(n):
            if not match[i].any():
                continue
            prev = plan[i - 1] if i else 0
            plan[i] = prev if prev and match[i, prev - 1] else int(k[np.argmax(run[i])])
        return plan

    def mark_repeats(self, ids: np.ndarray) -> np.ndarray:
        """``ids`` (without REPEAT tokens) with ``REPEAT_k`` after the BAR (and TIMESIG) of every bar that
        repeats the bar k bars back: the form is written in the tokens, and a model that writes
        ``REPEAT_k`` gets the bar copied exactly (see ``generate.repeats``). Decoding ignores them."""
        ids = np.asarray(ids, np.int64)
        if self.max_repeat == 0:
            return ids
        plan = self.repeat_plan(ids)
        if not plan.any():
            return ids
        _, spans, _ = self._bar_contents(ids)
        # runs: consecutive bars with one k (the plan keeps a passage's k), cut every MAX_RUN bars
        new = np.r_[True, (plan[1:] != plan[:-1]) | (plan[:-1] == 0)] & (plan > 0)
        run_id = np.cumsum(new) - 1
        pos_in_run = np.arange(plan.size) - np.flatnonzero(new)[np.maximum(run_id, 0)]
        starts = np.flatnonzero((plan > 0) & (pos_in_run % MAX_RUN == 0))
        ends = np.r_[starts[1:], plan.size]
        length = np.array([min(int(np.argmin(np.r_[plan[s:e] == plan[s], False])), MAX_RUN)
                           for s, e in zip(starts.tolist(), ends.tolist())], np.int64)
        at = np.repeat([spans[i][0] for i in starts], 2)
        marks = np.stack([self.repeat0 + plan[starts] - 1, self.run0 + length - 1], 1).ravel()
        return np.insert(ids, at, marks)

    def repeat_spec(self) -> RepeatSpec | None:
        if self.max_repeat == 0:
            return None
        return RepeatSpec(bars_back=self.repeat_of.copy(), run_bars=self.run_of.copy(),
                          is_bar=self.token_type == T_BAR, is_mark=np.isin(self.token_type, (T_REPEAT, T_RUN)),
                          skip=np.isin(self.token_type, (T_TIMESIG, T_REPEAT, T_RUN)),
                          after_copy=np.isin(self.token_type, (T_BAR, T_EOS)))

    def key_spec(self) -> KeySpec:
        return KeySpec(key_of=np.where(self.token_type == T_KEY, self.key_index_of, -1),
                       pitch_class=np.where(self.is_note, self.pitch_of % 12, -1), onset=self.token_type == T_POS,
                       pitch=np.where(self.is_note, self.pitch_of, -1))

    # ------------------------------------------------------------------ decode
    def _timeline(self, ids: np.ndarray | list[int]) -> dict[str, Any]:
        """Per-token times (grid steps from the first bar's start) of a token sequence, by the decoding
        rules of the module docstring, and the bar structure."""
        ids = np.asarray(ids, np.int64)
        ids = self.natural_order(ids[(ids >= 0) & (ids < len(self.vocab))])
        start = 1 if ids.size and ids[0] == self.bos_id else 0
        eos = np.flatnonzero(ids[start:] == self.eos_id)
        ids = ids[start : start + eos[0]] if eos.size else ids[start:]
        typ = self.token_type[ids]
        n = ids.size

        is_ts = typ == T_TIMESIG
        idx = np.maximum.accumulate(np.where(is_ts, np.arange(n), -1)) if n else np.zeros(0, np.int64)
        meter = np.where(idx >= 0, self.ts_of[ids[np.maximum(idx, 0)]], self.default_ts)
        bar_at = np.flatnonzero(typ == T_BAR)
        if bar_at.size:
            nxt = np.minimum(bar_at + 1, n - 1)
            bar_meter = np.where(is_ts[nxt], self.ts_of[ids[nxt]], meter[bar_at])
        else:
            bar_meter = np.array([meter[-1] if n else self.default_ts])
        bar_len = self.ts_len[bar_meter]
        bar_start = np.cumsum(bar_len) - bar_len

        bar = np.maximum(np.cumsum(typ == T_BAR) - 1, 0)
        big = self.max_bar + 1
        key = np.where(typ == T_POS, bar * big + self.pos_of[ids], np.where(typ == T_BAR, bar * big, -1))
        key = np.maximum.accumulate(key) if n else key
        pos = np.maximum(key - bar * big, 0)
        valid = pos < bar_len[bar]
        time = bar_start[bar] + pos
        return {"ids": ids, "type": typ, "time": time, "valid": valid, "bar": bar,
                "bar_start": bar_start, "bar_len": bar_len, "bar_meter": bar_meter}

    def bar_times(self, ids: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Start and length (grid steps, times as in ``decode_quantized``) of every bar of a sequence."""
        tl = self._timeline(ids)
        return tl["bar_start"], tl["bar_len"]

    def _pickup(self, tl: dict[str, Any]) -> tuple[int, tuple[int, int] | None]:
        """Where the decoded MIDI starts within the first bar (steps) and the pickup time signature."""
        typ, time = tl["type"], tl["time"]
        first_bar = tl["valid"] & (tl["bar"] == 0)
        event = ((typ == T_NOTE) | (typ == T_PHRASE)) & first_bar
        # a tempo change must stay after the start, or it would merge into the header tempo
        change = (typ == T_TEMPO) & (time > 0) & first_bar
        meters = tl["bar_meter"]
        if not (event.any() or change.any()) or (meters.size > 1 and meters[1] != meters[0]):
            return 0, None
        first = min(np.r_[time[event], time[change] - 1])
        bar0 = int(tl["bar_len"][0])
        two = 1
        while two < 8 and self.resolution % (two * 2) == 0:
            two *= 2
        unit = self.resolution // two  # the finest note value that divides the grid (down to 32nds)
        length = -(-(bar0 - int(first)) // unit) * unit
        if not 1 <= length < bar0:
            return 0, None
        num, den = length // unit, 4 * two
        g = math.gcd(num, den // 4 if den > 4 else 1)
        return bar0 - length, (num // g, den // g)

    def decode_quantized(self, ids: np.ndarray | list[int]) -> dict[str, Any]:
        """The content of a token sequence in the form ``quantize`` gives (times from the first bar's
        start), plus ``offset`` (steps of the first bar before the decoded MIDI starts: a pickup) and
        ``pickup`` (its time signature, or None)."""
        tl = self._timeline(ids)
        ids, typ, time, valid = tl["ids"], tl["type"], tl["time"], tl["valid"]
        pos = np.flatnonzero((typ[:-1] == T_NOTE) & (typ[1:] == T_DUR))
        pos = pos[valid[pos]]
        onset, pitch, dur = time[pos], self.pitch_of[ids[pos]], self.dur_of[ids[pos + 1]]
        keep = canonical_order(onset, pitch, dur)
        onset, pitch, dur = onset[keep], pitch[keep], dur[keep]
        dur = end_at_restrike(onset, pitch, dur)
        tpos = np.flatnonzero((typ == T_TEMPO) & valid)
        phrase = np.unique(time[(typ == T_PHRASE) & valid])
        meters = tl["bar_meter"]
        change = np.ones(meters.size, bool)
        change[1:] = meters[1:] != meters[:-1]
        key_at = np.flatnonzero(typ == T_KEY)
        key = self.key_index_of[ids[key_at[0]]] if key_at.size else -1
        offset, pickup = self._pickup(tl)
        return {"onset": onset, "pitch": pitch, "duration": dur,
                "tempo_step": time[tpos], "tempo_bin": self.tempo_bin_of[ids[tpos]],
                "ts_step": tl["bar_start"][change], "ts_index": meters[change], "phrase_step": phrase,
                "key": np.array([key % 12, key // 12] if key >= 0 else [-1, -1], np.int64),
                "offset": offset, "pickup": pickup}

    def decode(self, ids: np.ndarray | list[int]) -> symusic.Score:
        return self.score_of(self.decode_quantized(ids))

    def score_of(self, q: dict[str, Any]) -> symusic.Score:
        """The score of a ``decode_quantized`` result (infilling edits one before writing it)."""
        k, off = self.ticks_per_step, q["offset"]
        score = symusic.Score(self.resolution * k)
        track = symusic.Track(name="Piano", program=0, is_drum=False)
        track.notes = symusic.Note.from_numpy(
            time=((q["onset"] - off) * k).astype(np.int32),
            duration=(q["duration"] * k).astype(np.int32),
            pitch=q["pitch"].astype(np.int8),
            velocity=np.full(q["onset"].size, self.velocity, np.int8),
        )
        score.tracks.append(track)

        t_step, t_bin = np.maximum(q["tempo_step"] - off, 0), q["tempo_bin"]
        if t_step.size == 0 or t_step[0] > 0:
            t_step, t_bin = np.r_[0, t_step], np.r_[np.abs(self.tempos - 120).argmin(), t_bin]
        mspq = np.rint(60_000_000 / self.tempos[t_bin]).astype(np.int32)
        score.tempos = symusic.Tempo.from_numpy(time=(t_step * k).astype(np.int32), mspq=mspq)

        ts_step, ts_idx = q["ts_step"].copy(), q["ts_index"]
        sigs = []
        if q["pickup"] is not None:
            ts_step[0] = self.ts_len[ts_idx[0]]  # the first full bar
            sigs.append(symusic.TimeSignature(0, *q["pickup"]))
        for t, i in zip(((ts_step - off) * k).tolist(), ts_idx.tolist()):
            sigs.append(symusic.TimeSignature(int(t), int(self.ts_sig[i, 0]), int(self.ts_sig[i, 1])))
        score.time_signatures = sigs
        tonic, mode = (int(x) for x in q["key"])
        if tonic >= 0:
            score.key_signatures = [symusic.KeySignature(0, key_signature_sharps(tonic, mode), mode)]
        score.markers = [symusic.TextMeta(int(t), "fermata") for t in ((q["phrase_step"] - off) * k).tolist()]
        return score

    def end_beats(self, ids: np.ndarray | list[int]) -> float:
        tl = self._timeline(ids)
        if tl["time"].size == 0:
            return 0.0
        offset, _ = self._pickup(tl)
        return float(max(int(tl["time"].max()) - offset, 0)) / self.resolution

    # ------------------------------------------------------------------ grammar / augmentation
    def grammar(self) -> np.ndarray:
        allowed = {
            T_PAD: [T_BOS],
            T_BOS: [T_KEY, T_COMPOSER],
            T_COMPOSER: [T_KEY],
            T_KEY: [T_TIMESIG],
            T_TIMESIG: [T_TEMPO, T_BAR, T_POS, T_EOS, T_REPEAT],
            T_TEMPO: [T_BAR, T_POS, T_NOTE, T_EOS],
            T_BAR: [T_BAR, T_TIMESIG, T_POS, T_EOS, T_REPEAT],
            T_REPEAT: [T_RUN],
            T_RUN: [T_POS],
            T_POS: [T_TEMPO, T_NOTE],
            T_NOTE: [T_DUR],
            T_DUR: [T_NOTE, T_PHRASE, T_POS, T_BAR, T_EOS],
            T_PHRASE: [T_POS, T_BAR, T_EOS],
            T_EOS: [T_BOS],
            # infilling, ``HOLE suffix FILL prefix middle FILL_END`` (data.fim): the suffix opens at a bar line
            # or the piece's end; the prefix after FILL may open anywhere (cut to fit); generate.infill opens
            # the middle with a bar line and lets FILL_END end it. Nothing in a continuation leads here.
            T_HOLE: [T_BAR, T_EOS],
            T_FILL: [T_BOS, T_COMPOSER, T_KEY, T_TIMESIG, T_TEMPO, T_BAR, T_REPEAT, T_RUN, T_POS, T_NOTE, T_DUR,
                     T_PHRASE],
            T_FILL_END: [T_BOS],
        }
        return transition_matrix(self.token_type, allowed, max(N_TYPES, int(self.token_type.max()) + 1))

    def transpose_table(self, semitones: int) -> np.ndarray:
        """Moves notes (-1 where one leaves the piano range) and the key's tonic (mod 12)."""
        table = super().transpose_table(semitones)
        keys = self.token_type == T_KEY
        k = self.key_index_of[keys]
        table[keys] = self.key0 + (k // 12) * 12 + (k % 12 + semitones) % 12
        return table
