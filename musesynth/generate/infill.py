"""Infilling: rewrite bars in the middle of a piece, given the music before *and after* them.

The contract (``tests/test_infill.py`` checks it):

- Bars are the encoding's bars counted from 1 (a pickup is bar 1); ``--bars 5-8`` rewrites bars 5 to 8,
  the span [S, E) from the start of bar 5 to the start of bar 9 (or the end of the last bar).
- **Outside the span nothing changes**: the result is the input file itself (``infill_output``) with the
  span's notes rewritten, so every note whose onset (on the encoding's grid) is before S or at/after E is the
  file's own, on its own track: time, length, pitch and velocity, with the tracks' names, programs, controls
  and pedals, the file's tempo map, meter, key signatures, markers and lyrics, and its ticks per beat. This
  includes notes that start before S and sound into the span: they keep their durations (a rewritten part's
  as far as the tokens read them, ``max_dur``, so the fill never overlaps it).
- **Inside the span the notes are the model's**: the input's notes that start in [S, E) are replaced; a
  new note ends by E at the latest (cut there), and a new note on a pitch that is still sounding from a
  note held over S is dropped (one pitch cannot sound twice in MIDI). Fermatas in the span are the model's.
  New notes lie on the grid, at the median velocity of the notes they replace.
  In a pickup bar (bar 1 of a piece with an upbeat) new notes start no earlier than the input's first note.

**Chosen parts** (``--parts A,T,B``, a model of the parts encoding): only those parts' notes in the span are
the model's; every note of the other parts is kept exactly, in the span too. The fill is decoded under
``generate.voices.VoiceConstraint``: the kept parts' notes are written as given at their onsets, each rewritten
part is one voice (one note at a time, none ending past E, none starting while its own note held over S still
sounds), and the fill writes every bar of the span. ``--parts`` naming every part is a plain fill.

How: a model trained with fill-in-the-middle windows (``data.fim``) reads ``HOLE suffix FILL prefix`` and
writes the middle until ``FILL_END``. The sampler allows only the middle's own tokens (bar lines,
positions, notes, durations, phrase marks: the span keeps the input's meter and tempo), exactly as many
bar lines as the span has bars, and ``FILL_END`` only after the last one; a fill the token budget cuts
short is completed with empty bars. The prompt is as much of the prefix's end and the suffix's start as
the model's context holds next to the fill's budget. The fill is spliced back into the input's tokens
and decoded, and its notes in the span are merged with the input's notes outside it by the rules above.
"""

from __future__ import annotations

import copy
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import symusic
import torch

from musesynth.artifacts.load import load_model
from musesynth.artifacts.meta import CheckpointMeta
from musesynth.data import build
from musesynth.data.files import why_unreadable
from musesynth.data.key_frame import to_frame
from musesynth.device import pick_device
from musesynth.errors import BadRequest, MusesynthError, literal
from musesynth.generate.infill_output import InputEdit, grid_shift, own_tracks
from musesynth.generate.layout import Layout, declared_parts, satb_layout
from musesynth.generate.midi_out import seconds_of
from musesynth.generate.model import checkpoint_or_shipped
from musesynth.generate.particles import check_particles, decode_particles
from musesynth.generate.ranges import moved_by, parse_transpose, piece_shift
from musesynth.generate.request import cli_flag, fresh_seed
from musesynth.generate.run import call_counter, check_sample_options, flags, write_scores
from musesynth.generate.sampling import DecodeSpec, Sampling, decode
from musesynth.generate.voices import PITCHES, Fixed, Frame, VoiceConstraint, one_line
from musesynth.outputs import WrittenScore, check_writable_dir
from musesynth.tokenize import Encoding
from musesynth.tokenize.base import BarInfill, Parts
from musesynth.tokenize.meter import T_BAR, T_DUR, T_NOTE, T_PHRASE, T_POS, T_TIMESIG
from musesynth.tokenize.midi_io import (
    MAX_SILENCE_BEATS,
    OTHER,
    VOICES,
    load_score,
    score_notes,
    score_parts,
    stretch_over_cap,
    voice_named,
    voice_role,
)
from musesynth.tokenize.parts import T_CHORD

CLI_ALIASES = {"piece": "--input"}  # the API's keyword -> the CLI's flag, where they differ


def cli_name(field: str) -> str:
    """How the CLI spells one of infill's fields."""
    return CLI_ALIASES.get(field) or cli_flag(field)
_BARS_RE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$", re.ASCII)  # ASCII digits: int() would take "３"


@dataclass
class InfillOptions:
    checkpoint: str | None = None
    input: str = ""
    bars: str = ""
    parts: str | None = None  # rewrite only these parts in the bars (a parts model), e.g. "A,T,B"; None: all
    sampling: Sampling = field(default_factory=Sampling)
    seed: int | None = None  # None: a fresh seed, printed and recorded in each sidecar
    num_samples: int = 1
    particles: int = 1  # with ``parts``: SMC particles per version (``generate.particles``); 1: plain masked sampling
    max_tokens: int | None = None  # the fill's budget; None: 3 x the span's tokens + 32, at most half the context
    transpose: str | int = "auto"  # semitones the fill is written at, then moved back (``ranges.piece_shift``)
    out_dir: str = "infilled"
    wav: bool = True
    png: bool = True
    soundfont: str | None = None
    device: str = "auto"
    overwrite: bool = False

    def validate(self) -> None:
        parse_bars(self.bars)
        check_sample_options(self)
        if self.max_tokens is not None and self.max_tokens < 1:
            raise BadRequest("max_tokens", f"must be at least 1 (got {self.max_tokens})")
        check_particles(self.particles)
        self.transpose = parse_transpose(self.transpose)
        if self.particles > 1 and self.parts is None:
            raise BadRequest("particles", "weighs a fill by the kept parts' notes in the bars: give {parts}")


def parse_bars(text: str) -> tuple[int, int]:
    """``"5-8"`` -> ``(4, 8)``: the first bar's index from 0 and the index after the last."""
    m = _BARS_RE.match(str(text))
    if not m:
        raise BadRequest("bars", f"must be bar numbers FIRST-LAST counted from 1, e.g. 5-8 (got '{literal(text)}')")
    first, last = int(m[1]), int(m[2] or m[1])
    if first < 1 or last < first:
        raise BadRequest("bars", f"{literal(text)}: bars count from 1 and the last may not come before the first")
    return first - 1, last


@dataclass
class Span:
    """A piece (natural order, BOS ... EOS), the span's bars [first, end) and their token range [s, m)."""

    ids: np.ndarray
    first: int
    end: int
    s: int
    m: int

    @property
    def n_bars(self) -> int:
        return self.end - self.first


def infilling(enc: Encoding) -> BarInfill:
    """The encoding's infill tables; an encoding without them is a one-line error."""
    inf = enc.bar_infill()
    if inf is None:
        raise MusesynthError(f"the '{enc.name}' encoding of this model has no FILL tokens: it cannot infill")
    return inf


@dataclass
class PartLabels:
    """How a user names the parts of the piece the model reads (in its part order, voices the file lacks
    included): a part's number (its place among the file's tracks the model reads, from 1, as a DAW lists them;
    0: a voice the file lacks), its voice (-1: none) and its label (the voice, else its track's name, else
    "Part k")."""

    number: list[int]
    voice: list[int]
    label: list[str]

    def own(self) -> list[int]:
        """The piece's own parts, in the file's order."""
        return sorted((p for p, n in enumerate(self.number) if n), key=lambda p: self.number[p])


def part_labels(enc: Parts, ids: np.ndarray, added: np.ndarray | None = None, source: symusic.Score | None = None,
                own: dict[int, int] | None = None) -> PartLabels:
    """The parts of ``ids`` as the user knows them; with the input file ``source`` and each part's own track
    (``infill_output.own_tracks``), by their tracks' order and names (without: in part order). A track named for
    no voice keeps its name, even where the layout gave it a voice's place (a wind trio laid out by register:
    Flute, Oboe and Bassoon, which S, A and B name too)."""
    role, _ = enc.parts_of(ids)
    lacking = set() if added is None else set(added.tolist())
    order = [p for p in range(role.size) if p not in lacking]
    names: dict[int, str] = {}
    if source is not None and own is not None and all(p in own for p in order):
        order = sorted(order, key=lambda p: own[p])  # the file's track order
        names = {p: source.tracks[own[p]].name.strip() for p in order}
    number = [order.index(p) + 1 if p in order else 0 for p in range(role.size)]
    voice = [int(r) if r < OTHER else -1 for r in role]
    own_name = [names.get(p, "") if voice_role(names.get(p, "")) == OTHER else "" for p in range(role.size)]
    label = [own_name[p] or (VOICES[voice[p]] if voice[p] >= 0 else f"Part {number[p]}") for p in range(role.size)]
    return PartLabels(number, voice, label)


def file_labels(enc: Encoding, source: symusic.Score, lay: Layout) -> PartLabels | None:
    """The laid-out parts of the input file ``source`` as its user knows them (None: a model without parts)."""
    parts = enc.parts()
    return None if parts is None else part_labels(parts, lay.ids, lay.added, source, own_tracks(enc, source, lay))


def parse_parts(text: str, enc: Parts, ids: np.ndarray, added: np.ndarray | None = None,
                labels: PartLabels | None = None) -> list[int]:
    """``"A,T,B"`` -> the piece's part indices (``named_parts``); every part of the piece named: ``[]``, a plain fill
    (which keeps any added voice named: ``asked_parts``)."""
    out, own = named_parts(text, labels or part_labels(enc, ids, added))
    return [] if set(own) <= set(out) else out


def named_parts(text: str, labels: PartLabels) -> tuple[list[int], list[int]]:
    """The part indices ``text`` names (sorted): voices by letter or name (any case), parts by their track's name
    or by number from 1 (the file's track order); and the piece's own parts. A voice the piece lacks (added by
    ``satb_layout``) is named by its voice only: the numbers and the listing are the piece's own parts."""
    own = labels.own()
    out: list[int] = []
    for w in (x.strip() for x in str(text).split(",")):
        if not w:
            continue
        named = voice_named(w)
        hit = [p for p, v in enumerate(labels.voice) if v >= 0 and v == named]
        hit = hit or [p for p in own if labels.label[p].lower() == w.lower()]
        if not hit and w.isascii() and w.isdigit() and 1 <= int(w) <= len(own):
            hit = [own[int(w) - 1]]
        if not hit:
            listed = literal(", ".join(labels.label[p] + (f" ({VOICES[labels.voice[p]][0]})" if labels.voice[p] >= 0
                                   and labels.label[p] != VOICES[labels.voice[p]] else "") for p in own) or "none")
            sung = ", ".join(VOICES[v][0] for v in sorted({v for v in labels.voice if v >= 0}))
            by = f"its voice ({sung}), " if sung else ""
            raise BadRequest("parts", f"'{literal(w)}': the piece has no such part (its parts: {listed}; "
                                 f"name a part by {by}its track's name or its number from 1)")
        out += [h for h in hit[:1] if h not in out]
    if not out:
        raise BadRequest("parts", "names no part (e.g. A,T,B)")
    return sorted(out), own


def find_span(enc: Encoding, ids: np.ndarray, first: int, end: int) -> Span:
    bars = np.flatnonzero(ids == infilling(enc).bar_id)
    if end > bars.size:
        unit = "bar" if bars.size == 1 else "bars"
        raise BadRequest("bars", f"{first + 1}-{end}: the piece has only {bars.size} {unit}")
    eos = np.flatnonzero(ids == enc.eos_id)
    m = int(bars[end]) if end < bars.size else int(eos[0]) if eos.size else ids.size
    return Span(ids, first, end, int(bars[first]), m)


def fill_budget(span: Span, seq_len: int, max_tokens: int | None, scale: float = 1.0) -> int:
    """Tokens a fill may take: 3 per token of the span as given, up to half the context. ``scale``: parts written
    per part of the input (the voices ``satb_layout`` added are written too), which may take up to three quarters
    (an 8-bar fill of a duet's bass, written as four voices, ran out at half)."""
    if max_tokens:
        return max_tokens
    cap = seq_len // 2 if scale <= 1 else seq_len * 3 // 4
    return min(cap, int(3 * (span.m - span.s) * scale) + 32)


def infill_prompt(enc: Encoding, span: Span, seq_len: int, budget: int) -> np.ndarray:
    """``HOLE suffix FILL prefix``: the suffix's start and the prefix's end, shared fairly, so that the prompt
    and the fill's budget fit the model's context."""
    prefix, suffix = span.ids[: span.s], span.ids[span.m :]
    if suffix.size > 3:  # as in training (data.fim), a suffix never shows its last 3 tokens
        suffix = suffix[:-3]
    room = max(seq_len - budget - 2, 2)
    q = min(suffix.size, room // 2)
    p = min(prefix.size, room - q)
    q = min(suffix.size, room - p)
    inf = infilling(enc)
    return np.r_[inf.hole_id, suffix[:q], inf.fill_id, prefix[prefix.size - p :]]


class FillConstraint:
    """The middle's grammar: only its own token types, positions that move forward inside the bar (shorter
    than ``bar_len``), exactly ``n_bars`` bar lines, then FILL_END (which may come wherever a bar line could)."""

    def __init__(self, enc: Encoding, n_bars: int, bar_len: int, batch: int, device: torch.device,
                 n_parts: int | None = None, open_first: bool = False) -> None:
        inf = infilling(enc)
        typ = torch.as_tensor(inf.token_type, device=device)
        self.keep = torch.isin(typ, torch.tensor([T_BAR, T_POS, T_NOTE, T_DUR, T_PHRASE, T_CHORD], device=device))
        parts = enc.parts()
        if parts is not None and n_parts is not None:  # only the piece's parts: a trio's fill wrote a fourth part
            extra = np.arange(n_parts, parts.max_parts)
            ids = parts.note_token_id(PITCHES[:, None], extra[None, :]).ravel()
            self.keep[torch.as_tensor(ids, device=device)] = False
        self.is_pos = typ == T_POS
        self.pos = torch.as_tensor(inf.pos_of, device=device)
        self.keep &= ~self.is_pos | (self.pos < bar_len)
        self.bar, self.end, self.n = inf.bar_id, inf.fill_end_id, n_bars
        self.count = torch.zeros(batch, dtype=torch.long, device=device)
        self.first = True  # the middle opens with the span's first bar line (the prompt ends inside the prefix)
        self.last = torch.full((batch,), -1, dtype=torch.long, device=device)  # position in the bar so far
        self.open_first = open_first  # the first bar opens with POS_0 (``opens_full_bar``)

    def allowed(self, allowed: torch.Tensor | None, prev: torch.Tensor) -> torch.Tensor:
        if self.first:
            only = torch.zeros(prev.shape[0], self.keep.shape[0], dtype=torch.bool, device=prev.device)
            only[:, self.bar] = True
            return only
        base = (allowed & self.keep) if allowed is not None else self.keep.expand(prev.shape[0], -1).clone()
        base &= ~(self.is_pos[None, :] & (self.pos[None, :] <= self.last[:, None]))
        if self.open_first:
            waiting = ((self.count == 1) & (self.last < 0))[:, None]
            base &= ~(waiting & (self.is_pos & (self.pos > 0))[None, :])
            base[:, self.bar] &= ~waiting[:, 0]
        done = self.count >= self.n
        can_end = base[:, self.bar].clone()
        base[:, self.bar] &= ~done
        base[:, self.end] = can_end & done
        base[:, self.end] |= ~base.any(1)  # a finished sample still needs one allowed token
        return base

    def advance(self, tok: torch.Tensor) -> None:
        self.first = False
        bar = tok == self.bar
        self.count += bar.long()
        self.last = torch.where(bar, -1, torch.where(self.is_pos[tok], self.pos[tok], self.last))


def sample_fills(model: torch.nn.Module, enc: Encoding, span: Span, budget: int, sampling: Sampling,
                 num_samples: int, seed: int, seq_len: int, key_frames: tuple[int, ...] = (),
                 free: list[int] | None = None, particles: int = 1, durations: np.ndarray | None = None,
                 transpose: int = 0) -> tuple[list[np.ndarray], int]:
    """Each sample's middle tokens (FILL_END included when it was written), and the prompt's length. A
    key-relative model reads the piece in its frame (``data.key_frame``) and its fills move back. With ``free``
    (parts of a parts model) only those parts are written; the others' notes in the span are fixed, and with
    ``particles`` > 1 each sample is the heaviest of that many SMC particles (``generate.particles``). The model
    reads the piece ``transpose`` semitones higher (``ranges.piece_shift``), and its fills move back."""
    device = next(model.parameters()).device
    inf = infilling(enc)
    start, length = inf.bar_times(span.ids)
    bar_len = int(length[span.first : span.end].min())
    ids = inf.transpose_ids(span.ids, transpose) if transpose else span.ids
    ids, shift = to_frame(enc, ids, key_frames) if key_frames else (ids, 0)
    shift += transpose
    constraint: FillConstraint | VoiceConstraint = (
        parts_constraint(enc, replace(span, ids=ids), free, num_samples * particles, durations) if free
        else FillConstraint(enc, span.n_bars, bar_len, num_samples, device, declared_parts(enc, ids),
                            opens_full_bar(span, inf.decode_quantized(span.ids))))
    prompt = infill_prompt(enc, find_span(enc, ids, span.first, span.end), seq_len, budget)
    # no repeat copier (a fill is short) and no ending ramp: the constraint decides where a fill ends
    spec = DecodeSpec(enc.grammar(), inf.fill_end_id, seq_len, keys=enc.key_spec())
    smc = bool(free) and particles > 1
    rows, sampling = np.tile(prompt, (num_samples * (particles if smc else 1), 1)), replace(sampling, ending=0.0)
    key_source = ids[None]  # the piece's own header: a long prefix is cut before it
    if smc:
        seqs, _ = decode_particles(model, rows, spec, sampling, seed, budget, constraint, num_samples,
                                   key_source=key_source)
    else:
        seqs = decode(model, rows, spec, sampling, seed, budget, constraint, key_source=key_source)
    fills = [np.asarray(s[prompt.size :], np.int64) for s in seqs]
    return [inf.transpose_ids(f, -shift, keys=False) for f in fills] if shift else fills, prompt.size


def one_line_parts(enc: Encoding, q: dict[str, Any]) -> list[int]:
    """Every part of a parts model's piece (``q``: as read, laid out), where each plays one note at a time (a
    chorale's voices, a folk tune, a wind trio): a plain fill of them is written under the voice rules, one note
    at a time per part (before, a fill wrote chords into a one-line tune); [] where a part plays chords (a
    piano's: the fill keeps them)."""
    parts = enc.parts()
    if parts is None:
        return []
    n, part = len(q["role"]), np.asarray(q["part"], np.int64)
    legato = parts.resolution // 4  # a note held a 16th into the next is still one line (DAW or played legato)
    one = all(one_line(q["onset"][part == p], q["duration"][part == p], legato) for p in range(n))
    return list(range(n)) if n and one else []


def parts_constraint(enc: Encoding, span: Span, free: list[int], batch: int,
                     durations: np.ndarray | None = None) -> VoiceConstraint:
    """The fill's mask when only ``free`` parts are rewritten: the kept parts' notes in the span are fixed, a free
    part held over the span's start waits for its note to end (at its full length, ``durations``: the notes' own,
    in decoding order; else as decoded, at most the 8 beats a DUR holds), and every bar of the span is written."""
    e = enc.parts()
    assert e is not None
    q = e.decode_quantized(span.ids)
    s, end = span_steps(enc, span)
    inside = (q["onset"] >= s) & (q["onset"] < end)
    kept = inside & ~np.isin(q["part"], free)
    fixed = Fixed.of(e, q["onset"][kept], q["part"][kept], q["pitch"][kept], q["duration"][kept])
    frame = Frame(span.ids, span.first, span.n_bars, opened=False, timesigs=False, start=max(s, int(q["offset"])),
                  end=end, min_bars=span.n_bars, close_id=infilling(enc).fill_end_id,
                  open_at=s if opens_full_bar(span, q) and not kept.any() else None)
    c = VoiceConstraint(e, frame, fixed, free, batch)
    length = q["duration"] if durations is None or durations.size != q["onset"].size else \
        np.maximum(durations, q["duration"])
    held = (q["onset"] < s) & (q["onset"] + length > s) & np.isin(q["part"], free)
    for p, until in zip(q["part"][held].tolist(), (q["onset"] + length)[held].tolist(), strict=True):
        c.hold(p, until)
    return c


def opens_full_bar(span: Span, q: dict[str, Any]) -> bool:
    """Whether the span opens the piece with a full bar (no pickup: a note at time 0), which a plain fill must open
    with a note too: with no bar before it, the model read bar 1 as the pickup most chorales have (the shipped
    model's ``--bars 1`` of bwv10.7 wrote every voice's one note on beat 4, seeds 1-5, and on 7 of 8 chorales)."""
    return span.first == 0 and int(q["offset"]) == 0 and bool((np.asarray(q["onset"]) == 0).any())


def splice(enc: Encoding, span: Span, fill: np.ndarray) -> np.ndarray:
    """The piece with the fill in place of the span's bars (natural order): exactly the span's number of
    bars, each opened like the input's bar (its time-signature change kept)."""
    inf = infilling(enc)
    bar = inf.bar_id
    fill = fill[fill != inf.fill_end_id]
    at = np.flatnonzero(fill == bar)
    n = span.n_bars
    if at.size > n:
        fill = fill[: at[n]]
    fill = np.r_[fill, np.full(max(n - at.size, 0), bar, np.int64)]
    orig = np.flatnonzero(span.ids == bar)[span.first : span.end]
    nxt = span.ids[np.minimum(orig + 1, span.ids.size - 1)]
    ts = inf.token_type[nxt] == T_TIMESIG
    fill = np.insert(fill, np.flatnonzero(fill == bar)[:n][ts] + 1, nxt[ts])
    return np.r_[span.ids[: span.s], fill, span.ids[span.m :]]


def span_steps(enc: Encoding, span: Span) -> tuple[int, int]:
    """The span [S, E) in grid steps (times as in ``decode_quantized``). A span that takes in the last bar ends where
    the piece does, when that is sooner than the bar's meter says (bwv1.6's last bar is 3 beats, after its
    pickup: a fill of it lasted to beat 81 in a piece of 80)."""
    inf = infilling(enc)
    start, length = inf.bar_times(span.ids)
    if span.end < start.size:
        return int(start[span.first]), int(start[span.end])
    q = inf.decode_quantized(span.ids)
    ends = np.asarray(q["onset"]) + np.asarray(q["duration"])
    last = start[-1] + length[-1]
    return int(start[span.first]), int(min(last, ends.max()) if ends.size and ends.max() > start[-1] else last)


def check_stretches(enc: Encoding, score: symusic.Score, path: str) -> None:
    """Refuse a piece the encoding would squeeze: a stretch over ``MAX_SILENCE_BEATS`` in which no note of the
    parts it reads starts or ends is shortened when read, which moves every later note, kept ones included."""
    parts = enc.parts()
    n = score_parts(score, parts.max_parts, parts.drop_extra)[0] if parts is not None else score_notes(score)
    over = stretch_over_cap(n)
    if over is None and parts is not None:  # the tracks the model does not read, kept as they are, count too
        every = score.copy()
        for t in every.tracks:
            t.is_drum = False
        over = stretch_over_cap(score_notes(every))
    if over is not None:
        raise BadRequest("piece", f"{literal(os.fsdecode(Path(path).name))} has {over[1]:g} beats in which no "
                                  f"note starts or ends (from beat {over[0]:g}); infill keeps at most "
                                  f"{MAX_SILENCE_BEATS}, a longer rest or note would move the notes it keeps")


def drop_notes_of(q: dict[str, Any], parts: np.ndarray) -> dict[str, Any]:
    """``q`` without the notes of ``parts``."""
    keep = ~np.isin(q["part"], parts)
    return {**q, **{k: q[k][keep] for k in ("onset", "pitch", "duration", "part")}}


def uncapped_durations(enc: Encoding, score: symusic.Score, q0: dict[str, Any]) -> np.ndarray:
    """``q0``'s durations (the input as decoded), with those a DUR token caps (``max_duration_beats``: a chorale's
    final note of 16 beats reads as 8) as long as they are in the file: the encoding's own reading of ``score``
    with the cap lifted, note for note the same notes (the same parts, pitches folded, restruck notes cut). Where
    it does not list the same notes (a key-relative model's frame), nothing is restored."""
    inf = infilling(enc)
    dur = q0["duration"].copy()
    if not (dur >= inf.max_dur).any():
        return dur
    wide = copy.copy(inf)
    wide.max_dur = np.iinfo(np.int64).max // 4
    full = wide.quantize(score)
    same = all(np.array_equal(full[k], q0[k]) for k in ("onset", "pitch", "part") if k in q0 or k in full)
    return np.maximum(dur, full["duration"]) if same else dur


def merge(enc: Encoding, span: Span, q0: dict[str, Any], durations: np.ndarray, spliced: np.ndarray,
          free: list[int] | None = None, lines: list[int] | None = None) -> dict[str, Any]:
    """The input's content (``q0``: ``span.ids`` decoded, once for every fill; ``durations``: its notes' own,
    ``uncapped_durations``) with the span's notes and fermatas taken from ``spliced``, by the module's rules; with
    ``free`` (a parts model's parts) only those parts' notes in the span are taken, and a pitch clashes with a
    held note of its own part only. A note held into the span keeps its full length (a 10-beat pedal point was cut
    to the 8 beats a DUR holds), except in a part written one note at a time (``lines``), where it ends by that
    part's next new note (never before its decoded end, which the fill was written against)."""
    q1 = infilling(enc).decode_quantized(spliced)
    part0 = q0.get("part", np.zeros(q0["onset"].size, np.int64))
    part1 = q1.get("part", np.zeros(q1["onset"].size, np.int64))
    s, e = span_steps(enc, span)
    outside = (q0["onset"] < s) | (q0["onset"] >= e)
    if free:
        outside |= ~np.isin(part0, free)
    on0, pi0, du0, pa0 = q0["onset"][outside], q0["pitch"][outside], q0["duration"][outside], part0[outside]
    new = (q1["onset"] >= max(s, q0["offset"])) & (q1["onset"] < e)  # nothing before a pickup's first beat
    if free:
        new &= np.isin(part1, free)
    on1, pi1, pa1 = q1["onset"][new], q1["pitch"][new], part1[new]
    full = durations[outside]  # as long as in the file
    into = (on0 < s) & (on0 + full > s) & (np.isin(pa0, free) if free else True)
    never = np.iinfo(np.int64).max // 2
    nxt = np.where((pa1[None, :] == pa0[:, None]) & (on1[None, :] > on0[:, None]) & np.isin(pa0, lines or [])[:, None],
                   on1[None, :], never).min(1) if on1.size else np.full(on0.size, never)
    du0 = np.where(into, np.maximum(du0, np.minimum(full, nxt - on0)), full)
    du1 = np.minimum(q1["duration"][new], e - on1)
    held = (on0 < s) & (on0 + du0 > s)
    clash = ((pi1[:, None] == pi0[held][None, :]) & (pa1[:, None] == pa0[held][None, :])
             & (on1[:, None] < (on0 + du0)[held][None, :]))
    ok = ~clash.any(1)
    onset, pitch, dur = np.r_[on0, on1[ok]], np.r_[pi0, pi1[ok]], np.r_[du0, du1[ok]]
    part = np.r_[pa0, pa1[ok]]
    parts = enc.parts()
    order = parts.note_order(onset, part, pitch) if parts is not None else np.lexsort((pitch, onset))
    p0, p1 = q0["phrase_step"], q1["phrase_step"]
    phrase = np.union1d(p0[(p0 < s) | (p0 >= e)], p1[(p1 >= s) & (p1 < e)])
    out = {**q0, "onset": onset[order], "pitch": pitch[order], "duration": dur[order], "phrase_step": phrase}
    if "part" in q0:
        out["part"] = part[order]
    return out


def read_input(enc: Encoding, path: str) -> np.ndarray:
    p = Path(path)
    why = why_unreadable(p, literal(path))
    if why is not None:
        raise BadRequest("piece", why)
    # read in a worker under `musesynth data`'s per-file budget (time, memory; tokens and silences as in data)
    ids, reason = build.tokenize_files([p], enc, 1, True, build.FILE_SECONDS, build.FILE_MEMORY)[0]
    if ids is None:
        raise BadRequest("piece", f"{literal(repr(os.fsdecode(p)))} cannot be used: {literal(reason)}")
    return ids.astype(np.int64)


def check_infill_model(enc: Encoding, path: str) -> None:
    if enc.bar_infill() is None:
        raise MusesynthError(f"{path} was not trained for infilling (it has no FILL tokens); train on a dataset "
                             f"made with `musesynth data --encoding meter --infill`")


class Infilling(WrittenScore):
    """A piece with bars rewritten: its score, the fill's tokens, what its JSON sidecar holds (``info["span_beats"]``:
    where the rewritten bars lie), and the file name it is written under (without a suffix)."""

    @property
    def marks(self) -> tuple[float, float]:
        """The rewritten span, shaded on the piano roll."""
        return tuple(self.info["span_beats"])


def asked_parts(text: str | None, enc: Encoding, ckpt: str, labels: PartLabels | None,
                padded: np.ndarray) -> tuple[list[int] | None, np.ndarray]:
    """The parts ``--parts`` rewrites (None: not given; ``[]``: every part, a plain fill) and the ``padded`` places
    (voices the piece lacks, ``satb_layout``) not asked for, which the result drops."""
    if text is None:
        return None, padded
    if enc.parts() is None or labels is None:
        raise BadRequest("parts", f"needs a model that knows parts; {literal(ckpt)} reads the '{enc.name}' "
                                  f"encoding (leave {{parts}} out to rewrite every note in the bars)")
    out, own = named_parts(text, labels)
    free = [] if set(own) <= set(out) else out
    keep = [p for p in free if p in padded] if free else [p for p in out if p in padded]
    return free, np.setdiff1d(padded, keep)


def infillings(opt: InfillOptions, progress: Callable[[float], None] | None = None,
               loaded: tuple[torch.nn.Module, Encoding, CheckpointMeta] | None = None) -> list[Infilling]:
    """``num_samples`` versions of the input with the bars asked for rewritten, in memory (``loaded``: a model
    already loaded, else ``opt.checkpoint``'s). ``progress`` (the studio's progress bar) hears the share of the
    fill's token budget drawn, in [0, 1]."""
    opt.validate()
    seed = fresh_seed() if opt.seed is None else opt.seed
    first, end = parse_bars(opt.bars)
    ckpt = checkpoint_or_shipped(opt.checkpoint, parts=True) if loaded is None else loaded[2].path
    model, enc, meta = load_model(ckpt, pick_device(opt.device)) if loaded is None else loaded
    check_infill_model(enc, ckpt)
    opt.sampling.validate(len(enc.vocab))
    ids = read_input(enc, opt.input)
    source = load_score(opt.input)  # read within `data`'s budget by read_input already
    check_stretches(enc, source, opt.input)
    bi = infilling(enc)
    as_read = bi.decode_quantized(ids)
    kept = uncapped_durations(enc, source, as_read)
    shift = grid_shift(enc, source, as_read, bi.resolution)  # the layout keeps every note it keeps on its step
    lay = satb_layout(enc, ids)
    padded = lay.added
    if lay.notes is not None:  # the parts left out (a trio's horn) are copied as they are, with the unread tracks
        kept = kept[lay.notes]
    span = find_span(enc, lay.ids, first, end)
    # decoded once where nothing moved; a horn's lead-in left out reads the voices as a pickup: the same steps,
    # written on the input's time line
    given = as_read if lay.ids is ids else {**bi.decode_quantized(span.ids), "offset": as_read["offset"],
                                            "pickup": as_read["pickup"]}
    labels = file_labels(enc, source, lay)
    free, drop = asked_parts(opt.parts, enc, ckpt, labels, padded)
    edit = InputEdit.of(enc, source, lay, drop)  # a voice asked for keeps its track, even one left empty
    # the voices the input lacks are written too where others are (as the model learnt four), then dropped
    written = sorted({*free, *padded.tolist()}) if free else one_line_parts(enc, given)  # a plain fill: [] or all
    seq_len = meta.model_config.seq_len
    n_parts = declared_parts(enc, span.ids) or 1
    budget = fill_budget(span, seq_len, opt.max_tokens, n_parts / max(n_parts - padded.size, 1))
    moved = piece_shift(given, opt.transpose, bi.resolution // 4)
    hook = model.register_forward_hook(call_counter(progress, budget + 1)) if progress is not None else None
    t0 = time.perf_counter()
    try:
        fills, prompt_tokens = sample_fills(model, enc, span, budget, opt.sampling, opt.num_samples, seed, seq_len,
                                            meta.key_frames, written, opt.particles, kept, moved)
    finally:
        if hook is not None:
            hook.remove()
    dt = time.perf_counter() - t0
    s, e = span_steps(enc, span)
    stem = os.fsdecode(Path(opt.input).stem)
    out = []
    for i, fill in enumerate(fills):
        q = merge(enc, span, given, kept, splice(enc, span, fill), free, written)
        if drop.size and not free:  # a plain fill: the voices the input lacks are not the user's unless asked
            q = drop_notes_of(q, drop)
        res = bi.resolution
        score, new = edit.apply(source, q, (s, e), free, shift, res, bi.max_dur, written)
        info = {"input": os.fsdecode(opt.input), "bars": f"{first + 1}-{end}", "checkpoint": meta.path,
                "parts": [labels.label[p] for p in free] if free and labels else [],
                "model": meta.family, "span_beats": [(s - shift) / res, (e - shift) / res],
                "prompt_tokens": prompt_tokens, "fill_tokens": int(fill.size),
                "fill_complete": bool(fill.size and fill[-1] == bi.fill_end_id),
                "notes": int(sum(t.note_num() for t in score.tracks)), "new_notes": new,
                "sampling": {**asdict(opt.sampling), "seed": seed, "num_samples": opt.num_samples,
                             "particles": opt.particles},
                "generation_seconds": round(dt, 3), "unseen_tracks": edit.unseen(source),
                "shift": moved, "transpose": opt.transpose}
        info["seconds"] = seconds_of(score)
        which = "".join(VOICES[labels.voice[p]][0] if labels.voice[p] >= 0 else f"P{labels.number[p]}"
                        for p in free) if free and labels else ""
        sp = opt.sampling
        title = f"{meta.family} | {Path(info['input']).name} bars {info['bars']} | T={sp.temperature} " \
                f"k={sp.top_k} p={sp.top_p} seed={seed}"
        out.append(Infilling(score, np.asarray(fill, np.int64), info,
                             f"{stem}_infill{first + 1}-{end}{which}_{meta.family}_seed{seed}_{i}", title))
    return out


def run_infill(opt: InfillOptions, progress: Callable[[float], None] | None = None,
               names: Callable[[str], str] | None = None) -> list[dict[str, Any]]:
    """Write ``num_samples`` versions of the input with the bars asked for rewritten (MIDI, WAV, PNG, JSON).
    Errors name the CLI's flags, or the fields as ``names`` spells them (the core, `infillings`, names the API's
    keywords)."""
    with flags(names or cli_name):
        opt.validate()
        out_dir = check_writable_dir(opt.out_dir, "-o/--out-dir")  # before any work
        return write_scores(infillings(opt, progress), out_dir, opt)


def summarize(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        done = "" if r["fill_complete"] else " (fill cut by the token budget, completed with empty bars)"
        who = f" in {', '.join(r['parts'])}" if r.get("parts") else ""
        lines.append(f"{r['midi']}  (bars {r['bars']}{who}: {r['new_notes']} new notes{done})")
        if r.get("shift"):
            k = r["shift"]
            why = "its parts lie outside the voices' ranges, so " if r.get("transpose") == "auto" else \
                f"--transpose {k}: "
            lines.append(f"  {why}the bars were written {moved_by(k)} and "
                         f"moved back: the piece sounds where it was")
        if r.get("unseen_tracks"):
            lines.append(f"  kept as in the input, beyond the parts the model reads (it did not hear them): "
                         f"{', '.join(r['unseen_tracks'])}")
        if r["wav"] or r.get("wav_skipped"):
            lines.append(f"  wav: {r['wav'] or 'not written - ' + r['wav_skipped']}")
        if r["png"]:
            lines.append(f"  png: {r['png']}")
    return "\n".join(lines)
