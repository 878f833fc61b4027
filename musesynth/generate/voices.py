"""Decoding with some voices fixed: the per-step mask of `musesynth harmonize` and `musesynth infill --parts`.

A parts-encoding model writes bars token by token; ``VoiceConstraint`` makes it

- write every **fixed note** (a note of a part that is kept: the melody, or the parts not being rewritten) with
  its pitch and duration at its onset: the position of a fixed onset cannot be passed before its notes are
  written, and after a fixed NOTE its DUR is forced;
- let only the **free parts** write other notes, each one note at a time (a part starts a note only when its last
  one has ended, and no note lasts past ``end``), so a free part is one voice;
- keep the piece's bars (and, where the stream carries them, its time signatures);
- never let a written voice move in parallel fifths or octaves with another voice (a fixed note's pitch at an
  onset is known before it is written, so the voices under a melody avoid parallels with it too);
- let no free voice (a part the header names Soprano, Alto, Tenor or Bass) rest ``MAX_REST_BEATS`` or more: it sings
  again at the next onset where it may, as ``OneNotePerVoice`` rules free generation (under a madrigal's or a
  folk tune's melody the shipped model let the alto and tenor fall silent for 30 beats and more);
- close (EOS, or FILL_END for a fill) only after the last fixed note, and after ``min_bars`` bar lines;
- where fermatas are given (a melody's), mark exactly those onsets with PHRASE; else PHRASE is the model's;
- with a chords vocabulary, let the model name an onset's harmony (one CHORD) where the encoding puts it: after
  the first-ranked part's notes at the onset and before any other part's.

At an onset the parts encoding writes its notes in part order (``part_rank``: the soprano first, or for a
vocabulary saved before that, the bass first), so a free part may sound before a fixed note of a later-ranked part
and not after it. The mask wins over the grammar where they disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from musesynth.models.state import RowState
from musesynth.theory import SATB_RANGES
from musesynth.tokenize.base import Parts
from musesynth.tokenize.meter import T_BAR, T_DUR, T_EOS, T_FILL_END, T_NOTE, T_PHRASE, T_POS, T_TIMESIG
from musesynth.tokenize.midi_io import OTHER, PIANO_HIGH, PIANO_LOW
from musesynth.tokenize.parts import T_CHORD, T_PART, T_PROGRAM

PITCHES = np.arange(PIANO_LOW, PIANO_HIGH + 1)  # the piano's pitches, as the parts encoding's NOTE blocks hold them
PERFECT = (0, 7)  # unisons/octaves and fifths, compound ones too


@dataclass
class Fixed:
    """Notes that must come out as given (times in grid steps as ``decode_quantized`` gives them), in the
    encoding's order: by onset, then by part rank, ascending pitch within a part."""

    onset: np.ndarray
    part: np.ndarray
    pitch: np.ndarray
    duration: np.ndarray

    @staticmethod
    def of(enc: Parts, onset: np.ndarray, part: np.ndarray, pitch: np.ndarray, duration: np.ndarray) -> Fixed:
        order = enc.note_order(np.asarray(onset), np.asarray(part), np.asarray(pitch))
        return Fixed(*(np.asarray(a, np.int64)[order] for a in (onset, part, pitch, duration)))

    @property
    def size(self) -> int:
        return int(self.onset.size)


@dataclass
class Frame:
    """Where the written stream sits in the piece (``ids``: the whole piece, natural order, for its bar times)."""

    ids: np.ndarray
    first_bar: int  # the bar the stream's first BAR opens (or that the prompt already opened: ``opened``)
    n_bars: int  # bars the stream may write
    opened: bool  # the prompt ends with that first BAR (harmonize); else the stream starts with it (a fill)
    timesigs: bool  # the stream carries a bar's time-signature change after its BAR (a whole piece, not a fill)
    start: int  # no note starts before this time (a pickup's first note)
    end: int  # no free note starts at or lasts past this time
    min_bars: int  # bar lines to write before the stream may close
    close_id: int  # EOS or FILL_END
    phrases: np.ndarray | None = None  # fermata onsets to write (a PHRASE there and nowhere else); None: free
    open_at: int | None = None  # the first onset comes here, none later (bar 1 of a piece with no pickup)
    final: int | None = None  # the last onset: every voice sings there and nothing starts after it (a final chord)


RANGE_MARGIN = 3  # semitones a written voice may go beyond theory's SATB ranges (Bach's go a step or two past)


def sung_pitches(role: int) -> np.ndarray:
    """The pitches a voice of ``role`` may be written at: its SATB range widened by ``RANGE_MARGIN`` (a model
    sampled in an odd context once wrote a tenor at MIDI 112 and a bass at 17 under melodies no chorale has)."""
    lo, hi = SATB_RANGES[role]
    return PITCHES[(PITCHES >= lo - RANGE_MARGIN) & (PITCHES <= hi + RANGE_MARGIN)]


class VoiceConstraint(RowState):
    """The mask described in the module docstring (one state per sample, kept on the CPU)."""

    ROWS = ("bar", "bars_written", "pos", "j", "need", "last_rank", "part_end", "open_part", "phrased", "chorded",
            "done", "last", "before", "cur")  # the per-sample state
    MAX_REST_BEATS = 4  # as in free generation (``OneNotePerVoice``)

    def __init__(self, enc: Parts, frame: Frame, fixed: Fixed, free: list[int], batch: int) -> None:
        e = enc
        self.enc, self.f, self.fixed = e, frame, fixed
        self.V, self.typ = e.token_type.size, e.token_type
        self.bar_start, self.bar_len = e.bar_times(frame.ids)
        bars = np.flatnonzero(frame.ids == e.bar_id)
        nxt = frame.ids[np.minimum(bars + 1, frame.ids.size - 1)]
        self.ts_after = np.where((self.typ[nxt] == T_TIMESIG) & frame.timesigs, nxt, -1)
        self.last_bar = min(frame.first_bar + frame.n_bars, self.bar_start.size) - 1
        self.phrases = None if frame.phrases is None else {int(t) for t in frame.phrases}
        self.free = sorted(free)
        self.n_parts = int(max([*self.free, *(fixed.part.tolist() or [0])])) + 1
        self.dur_fixed = e.dur0 + np.minimum(fixed.duration, e.max_dur) - 1
        self.pos_ids = e.pos0 + np.arange(e.max_bar)
        self.dur_ids = e.dur0 + np.arange(e.max_dur)
        roles = np.asarray(e.decode_quantized(frame.ids)["role"], np.int64)
        self.voices = [p for p in self.free if p < roles.size and roles[p] < OTHER]  # SATB: the rest rule's parts
        self.pitches = {p: sung_pitches(int(roles[p])) if p in self.voices else PITCHES for p in self.free}
        self.part_notes = {p: e.note_token_id(self.pitches[p], p) for p in self.free}
        self.fixed_note = e.note_token_id(fixed.pitch, fixed.part) if fixed.size else np.zeros(0, np.int64)
        n = batch
        self.bar = np.full(n, frame.first_bar if frame.opened else frame.first_bar - 1, np.int64)
        self.bars_written = np.full(n, 1 if frame.opened else 0, np.int64)
        self.pos = np.full(n, -1, np.int64)
        self.j = np.zeros(n, np.int64)  # next fixed note
        first_need = self.ts_after[frame.first_bar] if frame.opened else e.bar_id
        self.need = np.full(n, first_need, np.int64)
        self.rank = np.asarray(e.part_rank(np.arange(e.max_parts)), np.int64)
        self.last_rank = np.full(n, -1, np.int64)  # rank of the latest note's part at this onset
        self.part_end = np.zeros((n, max(self.n_parts, 1)), np.int64)
        # a rest is counted from where the stream may start notes, or a melody's first note after a lead-in rest
        self.rest_from = max(frame.start, int(fixed.onset.min()) if fixed.size else frame.start)
        self.max_rest = self.MAX_REST_BEATS * e.resolution
        self.open_part = np.full(n, -1, np.int64)  # a free NOTE waiting for its DUR
        self.phrased = np.zeros(n, bool)  # this onset's PHRASE is written
        self.chorded = np.zeros(n, bool)  # this onset's CHORD is written
        self.chord_ids = np.flatnonzero(self.typ == T_CHORD)
        self.done = np.zeros(n, bool)
        # pitches for the rule against parallels: each part's latest note, the one before this onset, and the
        # one it has at this onset (a fixed note's is known before it is written)
        self.last = np.full((n, max(self.n_parts, 1)), -1, np.int64)
        self.before = self.last.copy()
        self.cur = self.last.copy()


    def hold(self, part: int, until: int) -> None:
        """A note of ``part`` held from before the stream sounds until ``until``: the part starts no note before."""
        if part in self.free:
            self.part_end[:, part] = np.maximum(self.part_end[:, part], until)

    def _mask(self, i: int) -> np.ndarray:
        m = np.zeros(self.V, bool)
        e, fx, f = self.enc, self.fixed, self.f
        if self.done[i]:
            m[f.close_id] = True
            return m
        if self.need[i] >= 0:
            m[self.need[i]] = True
            return m
        b, pos, j = int(self.bar[i]), int(self.pos[i]), int(self.j[i])
        now = int(self.bar_start[b]) + pos if pos >= 0 else None
        due = int(fx.onset[j]) if j < fx.size else None
        if self.open_part[i] >= 0:  # a free note: any length that ends by the end
            m[self.dur_ids[: max(min(f.end - (now or 0), self.dur_ids.size), 1)]] = True
            return m
        pending = now is not None and now == due
        last, rank = int(self.last_rank[i]), self.rank
        rested: list[int] = []
        if now is not None and now < f.end:
            limit = int(rank[fx.part[j]]) if pending else rank.size  # a free part writes before a later fixed note
            for p in self.free:
                if last < rank[p] < limit and self.part_end[i, p] <= now:
                    other = np.arange(self.n_parts) != p
                    bad = parallels(self.pitches[p], int(self.before[i, p]), self.before[i, other],
                                    self.cur[i, other])
                    m[self.part_notes[p][~bad]] = True
                    if p in self.voices and (max(self.part_end[i, p], self.rest_from) + self.max_rest <= now
                                             or now == f.final):
                        rested.append(p)
        if pending and rank[fx.part[j]] >= last:
            m[self.fixed_note[j]] = True
        if (now is not None and not self.chorded[i] and not self.phrased[i] and last <= 0
                and not (pending and rank[fx.part[j]] == 0)):
            m[self.chord_ids] = True  # after the first-ranked part's notes (a fixed one written first)
        fermata = now is not None and self.phrases is not None and now in self.phrases and not self.phrased[i]
        if not pending and now is not None and not self.phrased[i] and (self.phrases is None or fermata):
            m[e.phrase_id] = True
        if not pending and not fermata:
            k = np.arange(pos + 1, int(self.bar_len[b]))
            t = self.bar_start[b] + k
            ok = (t < f.end) & (t >= f.start)
            waiting = f.open_at is not None and self.bar_start[b] + pos < f.open_at
            if waiting:  # without a bar before it the model took bar 1 for a pickup: notes on beat 4 only
                ok &= t <= f.open_at
            if f.final is not None:
                ok &= t <= f.final
            if due is not None:
                ok &= t <= due
            m[self.pos_ids[k[ok]]] = True
            if b < self.last_bar and (due is None or self.bar_start[b + 1] <= due) and not waiting:
                m[e.bar_id] = True
            if due is None and self.bars_written[i] >= f.min_bars and not waiting:  # a fill of bar 1 has a note
                m[f.close_id] = True
        if not m.any():
            m[f.close_id] = True
        return self._overdue(m, rested, j if pending else None) if rested else m

    def _overdue(self, m: np.ndarray, rested: list[int], pending: int | None) -> np.ndarray:
        """``m`` where the first-ranked of the ``rested`` voices must sing now: no token that ends the onset (POS,
        BAR, the close), no note of a part ranked after it (a pending fixed note included), and no CHORD before
        the first-ranked part; unchanged where that would leave the voice no note (every pitch a parallel)."""
        e, rank = self.enc, self.rank
        first = min(int(rank[p]) for p in rested)
        keep = m.copy()
        keep[self.pos_ids] = keep[e.bar_id] = keep[self.f.close_id] = False
        for p in self.free:
            if rank[p] > first:
                keep[self.part_notes[p]] = False
        if pending is not None and rank[self.fixed.part[pending]] > first:
            keep[self.fixed_note[pending]] = False
        if first == 0:
            keep[self.chord_ids] = False
        singer = next(p for p in rested if rank[p] == first)
        return keep if keep[self.part_notes[singer]].any() else m

    def allowed(self, allowed: torch.Tensor | None, prev: torch.Tensor) -> torch.Tensor:
        mine = torch.as_tensor(np.stack([self._mask(i) for i in range(self.done.size)]), device=prev.device)
        if allowed is None:
            return mine
        both = mine & allowed
        return torch.where(both.any(1, keepdim=True), both, mine)  # the fixed notes win over the grammar

    def advance(self, tok: torch.Tensor) -> None:
        e, fx = self.enc, self.fixed
        for i, t in enumerate(tok.tolist()):
            typ = int(self.typ[t])
            self.need[i] = -1
            now = int(self.bar_start[max(self.bar[i], 0)]) + int(self.pos[i])
            if typ in (T_EOS, T_FILL_END):
                self.done[i] = True
            elif typ == T_BAR:
                self.bar[i] = min(self.bar[i] + 1, self.bar_start.size - 1)
                self.bars_written[i] += 1
                self.pos[i], self.last_rank[i] = -1, -1
                self.phrased[i] = self.chorded[i] = False
                self.need[i] = self.ts_after[self.bar[i]]
            elif typ == T_POS:
                self.pos[i], self.last_rank[i] = e.pos_of[t], -1
                self.phrased[i] = self.chorded[i] = False
                self.before[i], self.cur[i] = self.last[i], -1
                at = int(self.bar_start[max(self.bar[i], 0)]) + int(self.pos[i])
                ahead = fx.onset == at  # the fixed notes of this onset: known before they are written
                self.cur[i, fx.part[ahead]] = fx.pitch[ahead]
            elif typ == T_PHRASE:
                self.phrased[i] = True
            elif typ == T_CHORD:  # the first-ranked part has written at this onset, or writes nothing here
                self.chorded[i], self.last_rank[i] = True, max(int(self.last_rank[i]), 0)
            elif typ == T_NOTE:
                p = int(e.part_of[t])
                self.last_rank[i] = self.rank[p]
                if p < self.last.shape[1]:
                    self.last[i, p] = self.cur[i, p] = int(e.pitch_of[t])
                j = int(self.j[i])
                if j < fx.size and t == self.fixed_note[j] and now == fx.onset[j]:
                    self.need[i] = self.dur_fixed[j]
                    self.j[i] += 1
                else:
                    self.open_part[i] = p
            elif typ == T_DUR and self.open_part[i] >= 0:
                self.part_end[i, self.open_part[i]] = now + int(e.dur_of[t])
                self.open_part[i] = -1


def parallels(x: np.ndarray, prev: int, prev_q: np.ndarray, cur_q: np.ndarray) -> np.ndarray:
    """Which of the pitches ``x`` for a voice last at ``prev`` would move in parallel fifths or octaves with
    another voice that moves from ``prev_q`` to ``cur_q`` at this onset (-1: unknown or silent)."""
    moving = (prev_q >= 0) & (cur_q >= 0) & (cur_q != prev_q)
    if prev < 0 or not moving.any():
        return np.zeros(x.size, bool)
    pq, cq = prev_q[moving], cur_q[moving]
    was = np.abs(prev - pq) % 12  # the interval either way up: a fifth below another voice is a fifth too
    now = np.abs(x[:, None] - cq[None, :]) % 12
    same_way = np.sign(x[:, None] - prev) == np.sign(cq - pq)[None, :]
    return (np.isin(was, PERFECT)[None, :] & (now == was[None, :]) & same_way & (x[:, None] != prev)).any(1)


def most_sounding(onset: np.ndarray, duration: np.ndarray) -> int:
    """The most notes sounding at one instant (a note ends before one that starts at its end)."""
    if not onset.size:
        return 0
    t = np.r_[onset, onset + duration]
    d = np.r_[np.ones(onset.size, np.int64), -np.ones(onset.size, np.int64)]
    order = np.lexsort((d, t))  # ends first at a tie
    return int(np.cumsum(d[order]).max())


def one_line(onset: np.ndarray, duration: np.ndarray, legato: int) -> bool:
    """Whether a part plays one note at a time, a note held up to ``legato`` past the next one's start counting as
    ended there (legato playing: a trio's lines each held a 16th of a beat longer, as a DAW or a player does, read
    as chords, so the trio was not laid out as voices)."""
    o = np.argsort(onset, kind="stable")
    start, end = onset[o], onset[o] + duration[o]
    if (np.diff(start) == 0).any():
        return False  # two notes struck at once: a chord
    nxt = np.r_[start[1:], np.iinfo(np.int64).max]
    end = np.where((end > nxt) & (end - nxt <= legato), nxt, end)
    return most_sounding(start, end - start) <= 1


class OneNotePerVoice(RowState):
    """Free generation (a continuation, a piece from nothing) with a parts model: a part the header names as a
    voice (Soprano, Alto, Tenor, Bass) starts a note only when its last note has ended, never moves in parallel
    fifths or octaves with another voice, and at an onset the notes come in part order (``part_rank``), as the
    encoding writes them. So a chorale never has two notes at once in one voice, and never more notes
    sounding than voices. A voice silent for ``MAX_REST_BEATS`` or more sings again at the next onset where it
    may: until it has, the onset cannot close (no POS, BAR or EOS) and no later-ranked part writes. With a chords
    vocabulary an onset names its harmony once (one CHORD), after the first-ranked part's notes and before any
    other part's, as the encoding writes it. (Without it
    the shipped model let the lower voices fall silent for good in about 1 piece in 16, a melody alone for
    dozens of beats: Bach's voices rest 4 beats or more about once in three chorales.) Other parts
    (instruments) keep their chords, unless the prompt (a primer) had them play ``LINE_NOTES`` or more notes, one
    at a time (a flute, a bassoon line): those go on one note at a time (before, a wind trio's continuation put
    3 notes at once in the bassoon). Parts are declared in the header only: a PART or PROGRAM after the first BAR
    (which the grammar allows after a tempo change, and decoding ignores) is masked (a wind trio's continuation
    declared a fourth part mid-piece, then wrote it as an undeclared "Part 4"), and the first BAR comes after at
    least one part is declared (every training piece declares its parts). Vectorised over the batch; the
    prompt is replayed once to set the state."""

    MAX_REST_BEATS = 4
    LINE_NOTES = 8  # notes one at a time in the primer that make an instrument's part a line (one is no evidence)
    ROWS = ("bar_start", "bar_len", "pos", "started", "chorded", "last_rank", "open", "parts_seen", "end", "voice",
            "last", "before", "cur", "mono")  # the per-sample state

    def __init__(self, enc: Parts, rows: np.ndarray, device: torch.device) -> None:
        e, typ = enc, enc.token_type
        t = lambda a, dtype=torch.long: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
        self.P = e.max_parts
        self.is_note, self.is_bar = t(e.is_note, torch.bool), t(typ == T_BAR, torch.bool)
        self.is_pos, self.is_dur = t(typ == T_POS, torch.bool), t(typ == T_DUR, torch.bool)
        self.is_ts, self.is_part = t(typ == T_TIMESIG, torch.bool), t(typ == T_PART, torch.bool)
        self.is_chord = t(typ == T_CHORD, torch.bool)
        self.is_header = t(np.isin(typ, (T_PART, T_PROGRAM)), torch.bool)  # declares a part: before the first BAR
        self.closes = t(np.isin(typ, (T_POS, T_BAR, T_EOS)), torch.bool)  # tokens that end an onset's notes
        self.max_rest = self.MAX_REST_BEATS * e.resolution
        self.part = t(np.maximum(e.part_of, 0))
        self.part_rank = t(e.part_rank(np.maximum(e.part_of, 0)))  # a token's part's place at an onset
        self.role = t(np.maximum(e.role_of, 0))
        self.pos_of, self.dur_of = t(e.pos_of), t(e.dur_of)
        self.ts_len = t(np.where(typ == T_TIMESIG, e.ts_len[e.ts_of], 0))
        rows = np.atleast_2d(np.asarray(rows, np.int64))
        b = rows.shape[0]
        z = lambda fill: torch.full((b,), fill, dtype=torch.long, device=device)  # noqa: E731
        self.bar_start, self.bar_len, self.pos = z(0), z(int(e.ts_len[e.default_ts])), z(-1)
        self.started = torch.zeros(b, dtype=torch.bool, device=device)
        self.chorded = torch.zeros(b, dtype=torch.bool, device=device)
        self.last_rank, self.open, self.parts_seen = z(-1), z(-1), z(0)
        self.end = torch.zeros(b, self.P, dtype=torch.long, device=device)
        self.voice = torch.zeros(b, self.P, dtype=torch.bool, device=device)
        self.part_index = torch.arange(self.P, device=device)
        self.rank_of_part = t(e.part_rank(np.arange(self.P)))
        self.pitch = t(e.pitch_of)
        self.perfect = t(PERFECT)
        self.last = torch.full((b, self.P), -1, dtype=torch.long, device=device)  # for the rule against parallels
        self.before, self.cur = self.last.clone(), self.last.clone()
        played = torch.zeros(b, self.P, dtype=torch.long, device=device)  # each part's notes in the prompt
        chords = torch.zeros(b, self.P, dtype=torch.bool, device=device)  # ... with two at once there
        self.mono = torch.zeros(b, self.P, dtype=torch.bool, device=device)
        for j in range(rows.shape[1]):  # the prompt, once (a primer's few hundred tokens)
            tok = t(rows[:, j])
            self._line_evidence(tok, played, chords)
            self.advance(tok)
        self.mono = (played >= self.LINE_NOTES) & ~chords  # an instrument that played a line goes on so

    def _line_evidence(self, tok: torch.Tensor, played: torch.Tensor, chords: torch.Tensor) -> None:
        """Counts ``tok`` (a prompt token, before ``advance`` reads it) into each part's notes (``played``) and marks
        a part whose note starts while its last still sounds or beside another at its onset (``chords``)."""
        note, k = self.is_note[tok], self.part[tok][:, None]
        busy = (self.end.gather(1, k)[:, 0] > self.bar_start + self.pos) | (self.cur.gather(1, k)[:, 0] >= 0)
        chords.scatter_(1, k, (chords.gather(1, k)[:, 0] | (note & busy))[:, None])
        played.scatter_(1, k, (played.gather(1, k)[:, 0] + note.long())[:, None])


    def allowed(self, allowed: torch.Tensor | None, prev: torch.Tensor) -> torch.Tensor | None:
        now = self.bar_start + self.pos
        r, last = self.rank_of_part[None, :], self.last_rank[:, None]
        one = self.voice | self.mono
        ok = torch.where(one, (r > last) & (self.end <= now[:, None]), r >= last)  # (B, P)
        declared = (self.part_index[None, :] < self.parts_seen[:, None]) | (self.parts_seen == 0)[:, None]
        declared |= ~self.started[:, None]
        ok &= declared  # only the header's parts (a trio's continuation wrote a fourth)
        ok &= ~(self.chorded[:, None] & (r == 0))  # the CHORD closes the first-ranked part (an instrument's chord)
        by_part = self.part[None, :].expand(ok.shape[0], -1)
        notes = ok.gather(1, by_part) | ~self.is_note[None, :]
        notes &= ~self._parallels()
        no_chord = self.chorded | (self.last_rank > 0) | (self.pos < 0)  # one per onset, before the second part
        notes &= ~(self.is_chord[None, :] & no_chord[:, None])
        notes &= self._overdue(ok, now, allowed)
        notes &= self._onsets(one, declared)
        notes &= ~(self.is_header[None, :] & self.started[:, None])  # mid-piece they declare nothing
        notes &= ~(self.is_bar[None, :] & (~self.started & (self.parts_seen == 0))[:, None])  # a part first
        if allowed is None:
            return notes
        both = allowed & notes
        kept = allowed & (declared.gather(1, by_part) | ~self.is_note[None, :])  # else the grammar, header's parts
        return torch.where(both.any(1, keepdim=True), both, torch.where(kept.any(1, keepdim=True), kept, allowed))

    def _onsets(self, one: torch.Tensor, declared: torch.Tensor) -> torch.Tensor:
        """(B, V): where an instrument goes on one note at a time (``mono``), a POS only at a time some part may
        start a note (else the onset would have no note to write, and the grammar alone would choose one);
        everything elsewhere (a chorale's voices as before)."""
        rows = (self.mono & ~self.voice).any(1)
        if not bool(rows.any()):
            return torch.ones(1, self.is_pos.shape[0], dtype=torch.bool, device=self.is_pos.device)
        at = self.bar_start[:, None] + self.pos_of.clamp(min=0)[None, :]  # (B, V): a POS token's time
        can = declared[:, None, :] & (~one[:, None, :] | (self.end[:, None, :] <= at[:, :, None]))  # (B, V, P)
        return ~(self.is_pos[None, :] & ~can.any(-1) & rows[:, None])

    def _overdue(self, ok: torch.Tensor, now: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
        """(B, V): where a voice has rested ``MAX_REST_BEATS`` or more and may sing at this step, only its notes,
        those of parts written before it at an onset, and the tokens that do not end the onset (a DUR, a PHRASE);
        elsewhere everything."""
        rested = self.voice & ok & (self.end + self.max_rest <= now[:, None]) & self.started[:, None]
        first = torch.where(rested, self.rank_of_part[None, :], self.P).min(1).values  # the first-ranked such voice
        must = rested.any(1)
        token_rank = torch.where(self.is_note, self.part_rank, self.P)[None, :]
        if allowed is not None:  # only where the grammar lets its note come now
            must &= (allowed & (token_rank == first[:, None])).any(1)
        keep = (token_rank <= first[:, None]) | ~(self.is_note | self.closes)[None, :]  # parts before it may still
        keep &= ~(self.is_chord[None, :] & (first[:, None] == 0))  # a CHORD now would shut out the first part
        return torch.where(must[:, None], keep, torch.ones_like(keep))

    def _parallels(self) -> torch.Tensor:
        """(B, V): note tokens of a voice that would move in parallel fifths or octaves with a voice already
        written at this onset (see ``parallels``)."""
        b, v = self.before.shape[0], self.part.shape[0]
        prev = self.before.gather(1, self.part[None, :].expand(b, v))[:, :, None]  # (B, V, 1): this voice's last
        x = self.pitch[None, :, None]
        pq, cq = self.before[:, None, :], self.cur[:, None, :]  # (B, 1, P): the other voices
        other = self.part_index[None, None, :] != self.part[None, :, None]
        moving = (pq >= 0) & (cq >= 0) & (cq != pq) & (prev >= 0) & other & self.voice[:, None, :]
        was, now = (prev - pq).abs() % 12, (x - cq).abs() % 12  # either way up, as in ``parallels``
        same_way = torch.sign(x - prev) == torch.sign(cq - pq)
        bad = moving & torch.isin(was, self.perfect) & (now == was) & (x != prev) & same_way
        mine = self.voice.gather(1, self.part[None, :].expand(b, v)) & self.is_note[None, :]
        return bad.any(-1) & mine

    def advance(self, tok: torch.Tensor) -> None:
        bar, pos, note = self.is_bar[tok], self.is_pos[tok], self.is_note[tok]
        onset = bar | pos
        self.before = torch.where(onset[:, None], self.last, self.before)
        self.cur = torch.where(onset[:, None], -1, self.cur)
        k = self.part[tok][:, None]
        pitch = torch.where(note, self.pitch[tok], -1)[:, None]
        self.last.scatter_(1, k, torch.where(note[:, None], pitch, self.last.gather(1, k)))
        self.cur.scatter_(1, k, torch.where(note[:, None], pitch, self.cur.gather(1, k)))
        now = self.bar_start + self.pos
        self.bar_start = torch.where(bar, torch.where(self.started, self.bar_start + self.bar_len, 0), self.bar_start)
        self.started |= bar
        self.bar_len = torch.where(self.is_ts[tok], self.ts_len[tok], self.bar_len)
        self.pos = torch.where(bar, -1, torch.where(pos, self.pos_of[tok], self.pos))
        chord = self.is_chord[tok]
        self.last_rank = torch.where(bar | pos, -1, torch.where(note, self.part_rank[tok], self.last_rank))
        self.last_rank = torch.where(chord, self.last_rank.clamp(min=0), self.last_rank)  # the first part is done
        self.chorded = (self.chorded | chord) & ~(bar | pos)
        held = self.is_dur[tok] & (self.open >= 0)
        k = self.open.clamp(min=0)
        cur = self.end.gather(1, k[:, None])[:, 0]
        self.end.scatter_(1, k[:, None], torch.where(held, now + self.dur_of[tok], cur)[:, None])
        self.open = torch.where(note, self.part[tok], torch.where(self.is_dur[tok], -1, self.open))
        named = self.is_part[tok] & ~self.started & (self.parts_seen < self.P)
        at = self.parts_seen.clamp(max=self.P - 1)
        cur_v = self.voice.gather(1, at[:, None])[:, 0]
        self.voice.scatter_(1, at[:, None], torch.where(named, self.role[tok] < OTHER, cur_v)[:, None])
        self.parts_seen += named.long()
