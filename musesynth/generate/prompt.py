"""The one place a generation prompt is built: primer rows, key, composer and tempo controls, the key frame of a
key-relative model, the context check and the forced header tempo."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import symusic

from musesynth.data.key_frame import KeyFrame
from musesynth.errors import BadRequest, MidiReadError
from musesynth.generate.controls import HeaderTempo, apply_controls, check_controls
from musesynth.generate.keys import parse_requested_key, primer_rows
from musesynth.generate.layout import satb_layout
from musesynth.generate.model import Model
from musesynth.generate.primer import clip_seconds
from musesynth.generate.ranges import on_piano, parse_transpose, piece_shift
from musesynth.generate.request import GenerationRequest
from musesynth.tokenize import Encoding
from musesynth.tokenize.base import Parts
from musesynth.tokenize.meter import T_BAR
from musesynth.tokenize.midi_io import OTHER, VOICES, load_score, part_tracks, score_parts
from musesynth.tokenize.parts import T_PART, T_PROGRAM


@dataclass
class Prompt:
    """What the decoder starts from: ``rows`` (one per sample) as the user sees them, ``model_rows`` as the
    model reads them (``frame``), the primer's own length and where it ends in beats (None without a primer),
    and the header tempo to force (None: the model's or the primer's)."""

    rows: np.ndarray
    model_rows: np.ndarray
    frame: KeyFrame
    primer_tokens: int
    boundary: float | None
    tempo: HeaderTempo | None
    added: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # voices a parts primer lacks
    names: list[str] = field(default_factory=list)  # a parts primer's track names, in part order
    tracks: list[int] = field(default_factory=list)  # each part's track in the primer file (``primer_ids``)


def build_prompt(request: GenerationRequest, model: Model) -> Prompt:
    """The prompt of a validated, resolved request (``GenerationRequest.resolved``) for ``model``; the checks that
    need the model's encoding and context are made here."""
    enc, meta, seed = model.encoding, model.meta, request.seed
    assert seed is not None, "build_prompt takes a resolved request"
    request.sampling.validate(len(enc.vocab))
    c = request.controls
    key = parse_requested_key(enc, c.key)
    tempo_token = check_controls(enc, c.composer, c.tempo)
    p = request.primer
    ids, added, names, tracks = primer_ids(enc, p.path, p.tokens, p.seconds, model.seq_len)
    rows = primer_rows(enc, ids, key, meta.key_prior, request.num_samples, seed)
    rows = apply_controls(enc, rows, c.composer, c.tempo, meta.composer_prior, seed)
    # read from the primer as --key moved it (a flute duet moved up to F# major strays further)
    frame = KeyFrame(enc, meta.key_frames, register_shift(enc, rows[0], request.transpose, p.path is not None))
    model_rows = check_fits(frame.to_model(rows), model.seq_len, len(ids))
    ctl = enc.header_controls()
    tempo = HeaderTempo(ctl, tempo_token, model_rows, model.device) if ctl and tempo_token is not None else None
    boundary = enc.end_beats(ids) if p.path is not None else None
    return Prompt(rows, model_rows, frame, int(rows.shape[1]), boundary, tempo, added, names, tracks)


def batch_prompts(prompts: list[Prompt], model: Model) -> Prompt:
    """Prompts of equal length and header tempo (each from ``build_prompt``) as one batch, decoded together."""
    rows = np.concatenate([p.rows for p in prompts])
    assert len({p.frame.register for p in prompts}) == 1, "one register per batch"
    frame = KeyFrame(model.encoding, model.meta.key_frames, prompts[0].frame.register)
    model_rows = frame.to_model(rows)
    first = prompts[0].tempo
    assert len({None if p.tempo is None else p.tempo.token for p in prompts}) == 1, "one header tempo per batch"
    ctl = model.encoding.header_controls()
    tempo = HeaderTempo(ctl, first.token, model_rows, model.device) if ctl and first is not None else None
    assert all(np.array_equal(p.added, prompts[0].added) for p in prompts), "one part layout per batch"
    return Prompt(rows, model_rows, frame, prompts[0].primer_tokens, prompts[0].boundary, tempo, prompts[0].added,
                  prompts[0].names, prompts[0].tracks)


def register_shift(enc: Encoding, ids: np.ndarray, transpose: str | int, primed: bool) -> int:
    """Semitones the model reads the primer at (``ranges.piece_shift``: with "auto", a parts primer whose voices'
    parts stray past their ranges, a flute duet an octave up, is continued an octave down and moved back; the
    shipped model went on with the duet at the soprano's and alto's pitch)."""
    transpose = parse_transpose(transpose)
    parts = enc.parts()
    if transpose == "auto":
        return piece_shift(parts.decode_quantized(ids), "auto", parts.resolution // 4) if parts and primed else 0
    if transpose and not primed:
        raise BadRequest("transpose", "moves a primer: give one with {primer} (or leave {transpose} at auto)")
    if transpose and enc.keyed() is None:
        raise BadRequest("transpose", f"moves the notes the model reads; the '{enc.name}' encoding cannot move them "
                                      f"(leave {{transpose}} at auto or 0)")
    notes = [t.notes.numpy()["pitch"] for t in enc.decode(ids).tracks] if transpose else []
    return on_piano(np.concatenate(notes) if notes else np.zeros(0, np.int64), int(transpose))


def primer_ids(enc: Encoding, path: Path | None, tokens: int | None, seconds: float | None,
               seq_len: int) -> tuple[np.ndarray, np.ndarray, list[str], list[int]]:
    """Token ids of the primer: BOS alone without a file; else the file's opening, cut by seconds or tokens
    (neither: half the model context). A parts model reads a primer of fewer SATB voices in the places it learnt
    (``generate.layout``): a trio's bass continued in the tenor's register, beside a fourth part. Also returns
    the parts so added, whose notes the model writes and the piece drops, and the names of the primer's tracks
    read as parts (in part order; none for other encodings), which the piece's tracks keep, and their tracks'
    indices in the file (a parts model's piece keeps the file's order: ``pipeline.in_file_order``)."""
    added = np.zeros(0, np.int64)
    if path is None:
        return np.array([enc.bos_id]), added, [], []
    try:
        whole = load_score(path)
        score = clip_seconds(whole, seconds) if seconds is not None else whole
        ids = enc.encode(score)
    except MidiReadError as exc:
        raise MidiReadError(f"cannot use primer {os.fsdecode(path)!r}: {exc}") from None
    except Exception as exc:  # a library bug on an odd file: this primer is skipped, like in `musesynth data`
        raise MidiReadError(f"cannot use primer {os.fsdecode(path)!r}: failed to tokenize: "
                            f"{type(exc).__name__}: {exc}") from None
    laid, added, names, tracks = primer_layout(enc, ids, score, whole)
    keep = tokens if tokens is not None else None if seconds is not None else seq_len // 2
    parts = enc.parts()
    bar = np.flatnonzero(laid == parts.bar_id) if parts is not None else np.zeros(0, np.int64)
    if keep is not None and bar.size:  # a cut inside a parts header keeps it whole, up to the first bar line
        keep = max(keep, int(bar[0]) + 1)  # (its parts half declared, the model declared others: "Part 1" tracks)
    cut = laid[:-1][:keep]  # drop EOS: the model continues the piece
    if parts is not None and not (cut == parts.bar_id).any():  # a primer with no notes: the model writes its own
        return ids[:-1][:keep], np.zeros(0, np.int64), [], []
    return cut, added, names, tracks


def primer_layout(enc: Encoding, ids: np.ndarray, score: symusic.Score,
                  whole: symusic.Score) -> tuple[np.ndarray, np.ndarray, list[str], list[int]]:
    """``ids`` (the encoded ``score``: the opening of ``whole``, the file) in the places a parts model learnt
    (``satb_layout``), the places to drop from the piece (voices the file lacks: a voice that enters after a
    short opening is the file's and stays), and the track names of the piece's parts (each voice's from the
    file) and their tracks' indices in the file (``len(whole.tracks)`` for a part the model adds)."""
    parts = enc.parts()
    none = np.zeros(0, np.int64)
    if parts is None:
        return ids, none, [], []
    lay = satb_layout(enc, ids)  # an instrument beside the voices is left out of the continuation
    read = part_tracks(score, parts.max_parts, parts.drop_extra)[0]
    if lay.ids is ids:
        return ids, none, [score.tracks[i].name for i in read], list(read)
    wread = part_tracks(whole, parts.max_parts, parts.drop_extra)[0]
    whole_lay = satb_layout(enc, enc.encode(whole)) if lay.by_register and len(wread) > len(read) else None
    if whole_lay is not None and whole_lay.by_register:  # an instrument entering later: the file's places for all
        place = dict(zip(wread, whole_lay.place_of(len(wread)).tolist(), strict=False))
        places = np.array([place.get(i, -1) for i in read], np.int64)
        if (places >= 0).all() and len(set(places.tolist())) == places.size:
            lay = satb_layout(enc, ids, places)  # a clarinet lowest in the primer is no bass under a bassoon
    laid, added = lay.ids, lay.added
    # each part's place (its voice's, or its register's: a bassoon's the bass's) -> its track's index, the same in
    # the primer and the file (a clip keeps every track); tracks are told apart by index (two named "Horn", or none)
    have = {int(p): i for p, i in zip(lay.place_of(len(read)).tolist(), read, strict=False) if p >= 0}
    role = score_parts(whole, parts.max_parts, parts.drop_extra)[1].role
    for r, i in zip(role.tolist(), wread, strict=False):
        if r < OTHER:
            have.setdefault(int(r), i)  # a voice's own track (not its second) entering later
    if whole_lay is not None and whole_lay.by_register:  # an instrument entering later: by register too
        for p, i in zip(whole_lay.place_of(len(wread)).tolist(), wread, strict=False):
            if p >= 0 and i not in have.values():
                have.setdefault(int(p), i)
    drop = added[~np.isin(added, list(have))]
    later = {p: whole.tracks[have[p]].program for p in added.tolist() if p in have}  # the file's programs
    kept = [p for p in range(len(VOICES)) if p not in drop]
    return (with_programs(parts, laid, later), drop, [whole.tracks[have[p]].name if p in have else "" for p in kept],
            [have.get(p, len(whole.tracks)) for p in kept])


def with_programs(parts: Parts, ids: np.ndarray, programs: dict[int, int]) -> np.ndarray:
    """``ids`` with the header's PROGRAM of each part in ``programs`` (its place -> a General MIDI program): a
    voice or instrument entering after the primer plays its own track's program (it came out as program 0)."""
    typ = parts.token_type[ids]
    bar = np.flatnonzero(typ == T_BAR)
    at = np.flatnonzero(typ[: bar[0] if bar.size else ids.size] == T_PART) + 1
    out = ids.copy()
    for p, program in programs.items():
        if p < at.size and at[p] < ids.size and typ[at[p]] == T_PROGRAM:
            out[at[p]] = parts.program0 + program
    return out


def check_fits(rows: np.ndarray, seq_len: int, primer_tokens: int | None = None) -> np.ndarray:
    """The prompt rows must fit the model's context; ``primer_tokens``: the primer's own length, before the
    key / composer tokens the controls may have added (the advice counts them)."""
    if rows.shape[-1] > seq_len:
        added = rows.shape[-1] - primer_tokens if primer_tokens is not None else 0
        raise BadRequest("primer", f"is {rows.shape[-1]} tokens, longer than the model context of {seq_len} "
                         f"tokens; use {{primer_tokens}} {max(seq_len - added, 1)} or fewer (or fewer "
                         "{primer_seconds})")
    return rows
