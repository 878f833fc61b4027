"""`musesynth harmonize`: the other voices written under a given melody, by a model of the ``parts`` encoding.

The melody is read into one part of a part-aware piece (its voice: the track's SATB name, else Soprano), and
the model writes that piece token by token under a per-step mask (``generate.voices.VoiceConstraint``) that

- writes each melody note, with its pitch and duration, at its onset: the position of a melody onset cannot be
  passed before its note is written, no other note of the melody's part is allowed, and its DUR is forced;
- lets the other voices write notes, each one note at a time (a voice starts a note only when its last one has
  ended, and no note lasts past the melody's end);
- keeps the melody's bars, time signatures and fermatas, and ends the piece (EOS) only after the last melody note.

The model reads the **whole melody first**: the prompt is the melody alone as a piece (no BOS, the full part
header, only the melody's notes), EOS, then the header of the piece to write: the form of the melody-first training
windows (``data.melody_first``, `musesynth train --melody-first`), which teach a model to use it. The written
piece's melody part is then replaced by the melody as read, so the melody comes out exactly even where the token
budget runs out. A model of four parts always writes all four (as it was trained: a part's NOTE tokens name its
place, not its role), and only the asked-for voices are kept, so at most 1 + len(voices) notes sound at once.
"""

from __future__ import annotations

import os
import tempfile
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
from musesynth.data.files import why_unreadable
from musesynth.data.melody_first import melody_prompt
from musesynth.device import pick_device
from musesynth.errors import BadRequest, MidiReadError, MusesynthError, literal
from musesynth.generate.midi_out import seconds_of
from musesynth.generate.model import checkpoint_or_shipped
from musesynth.generate.particles import check_particles, decode_particles
from musesynth.generate.ranges import HIGHEST, LOWEST, fit_shift, moved_by, parse_transpose, register_voice
from musesynth.generate.request import fresh_seed
from musesynth.generate.run import call_counter, check_sample_options, flags, write_scores
from musesynth.generate.sampling import DecodeSpec, Sampling, decode
from musesynth.generate.voices import Fixed, Frame, VoiceConstraint, most_sounding
from musesynth.outputs import WrittenScore, check_writable_dir
from musesynth.theory import MODES, SATB_RANGES
from musesynth.tokenize import Encoding
from musesynth.tokenize.base import Parts
from musesynth.tokenize.meter import key_name, parse_key
from musesynth.tokenize.midi_io import (
    MAX_SILENCE_BEATS,
    VOICES,
    Notes,
    load_score,
    score_notes,
    stretch_over_cap,
    voice_named,
    voice_role,
)

# SMC particles per harmonisation by default: on the 92 held-out chorales (test + val; the lr 2e-3 model) 4 bring the
# classifier from 81.5% / 87.5% (8 / 16 beats; 1 particle) to 80.9% / 84.2%, below the model's own pieces (82.2% /
# 86.3%), beats with Bach's chord 19.1% -> 21.4%, crossings 3.4% -> 2.8% (Bach 2.8%), for about twice the time;
# 8 cut the long notes below Bach's band (docs/pretrained-parts-notes.md)
DEFAULT_PARTICLES = 4
# Sampled a little colder than free pieces: on the 39 test chorales (4 particles, one seed, 235 / 125 windows per
# set) temperature 0.85 against 1.0 took the classifier from 72.1% / 76.7% (8 / 16 beats) to 67.1% / 69.2% (the
# model's free pieces: 71.2% / 74.5%), beats with Bach's pitch-class set 23.6% -> 26.0%, crossings 2.7% -> 2.1%
# (Bach 2.4%), notes of 2+ beats 7.4% -> 7.6% (Bach 8.9%); colder free pieces gained nothing
# (docs/pretrained-parts-notes.md): under a given melody the harmony has less room to go wrong
HARMONIZE_TEMPERATURE = 0.85

MAX_MELODY_NOTES = 5000
LEGATO_BEATS = 0.25  # an overlap this short is a played legato, not a second line


@dataclass
class HarmonizeOptions:
    melody: str | None = None
    chorale: str | None = None  # instead of melody: a corpus chorale (e.g. bwv10.7), its Soprano by default
    checkpoint: str | None = None
    part: str | None = None
    melody_voice: str | None = None  # the melody's voice (S, A, T, B); None: its track's name, else its register
    voices: str | None = None
    key: str | None = None
    num_samples: int = 1
    seed: int | None = None  # None: a fresh seed, printed and recorded in each sidecar
    max_tokens: int | None = None
    particles: int = DEFAULT_PARTICLES  # SMC particles per harmonisation (``generate.particles``); 1: masked sampling
    transpose: str | int = "auto"  # semitones the voices are written at, then moved back (``melody_shift``)
    top_line: bool = False  # a melody with chords: its top line (``top_line``) instead of a refusal
    out_dir: str = "harmonized"
    overwrite: bool = False
    wav: bool = True
    png: bool = True
    soundfont: str | None = None
    device: str = "auto"
    sampling: Sampling = field(default_factory=lambda: Sampling(temperature=HARMONIZE_TEMPERATURE))

    def validate(self) -> None:
        if bool(self.melody) == bool(self.chorale):
            raise BadRequest("melody", "or {chorale}: give one of them (a MIDI file, or a corpus chorale's name)")
        check_sample_options(self)  # samples, seed and dials as every request checks them, and an explicit soundfont
        if self.max_tokens is not None and self.max_tokens < 1:
            raise BadRequest("max_tokens", f"must be at least 1 (got {self.max_tokens})")
        check_particles(self.particles)
        self.transpose = parse_transpose(self.transpose)
        if self.melody_voice is not None:
            parse_voice(self.melody_voice)




def parse_voice(text: str) -> int:
    """"S" / "soprano" (any case) ... -> the voice's index; anything else is a one-line error."""
    v = voice_named(text)
    if v is not None:
        return v
    raise BadRequest("melody_voice", f"'{literal(text)}' is no voice: S, A, T or B (or soprano, alto, tenor, bass)")


def melody_shift(pitch: np.ndarray, voice: int, transpose: str | int) -> int:
    """Semitones to write the harmony at, the melody moved with it and everything moved back after, so the melody
    comes out as given: ``transpose`` itself when a number; with "auto", 0 for a melody inside its voice's range
    (theory's SATB ranges), else the fewest semitones that bring it in (or, for a melody wider than the voice, that
    leave the fewest semitones outside), so a fiddle tune up to E6 is harmonised as a chorale a few semitones down
    and moved back up, where the model would otherwise write a soprano it never saw. 0 where no shift keeps the
    melody in what any voice sings (the range check then refuses it)."""
    if transpose != "auto":
        return int(transpose)
    lo, hi = int(pitch.min()), int(pitch.max())
    vlo, vhi = SATB_RANGES[voice]
    if vlo <= lo and hi <= vhi:
        return 0
    return fit_shift([(lo, hi, voice)], LOWEST - lo, HIGHEST - hi)


def top_line(score: symusic.Score) -> tuple[symusic.Score, int, int]:
    """The one-track melody's top line, for a melody track with chords, double stops or a second voice below (a
    fiddle tune's drone, a piano's right hand): a note is dropped when it starts together with a higher one or
    while the line's note above it still sounds (as do notes of no length); a kept note is cut where the next kept
    one starts. Returns the line, the notes dropped and the notes cut (its other notes are as in the file)."""
    n = score.tracks[0].notes.numpy()
    n = {k: v[n["duration"] > 0] for k, v in n.items()}
    order = np.lexsort((-n["pitch"].astype(np.int64), n["time"]))
    t, d, pitch = n["time"][order].astype(np.int64), n["duration"][order].astype(np.int64), n["pitch"][order]
    keep = np.zeros(t.size, bool)
    end, top = -1, -1  # the kept note sounding now: its end and pitch
    for i in range(t.size):  # a scan over the melody's notes (at most MAX_MELODY_NOTES), once per harmonisation
        if t[i] < end and pitch[i] <= top:
            continue  # with or under a higher note that still sounds
        keep[i], end, top = True, t[i] + d[i], int(pitch[i])
    kept = np.flatnonzero(keep)
    nxt = np.r_[t[kept][1:], np.iinfo(np.int64).max]
    dur = np.minimum(d[kept], nxt - t[kept])
    out = score.copy()
    out.tracks[0].notes = symusic.Note.from_numpy(time=t[kept], duration=dur, pitch=pitch[kept],
                                                  velocity=n["velocity"][order][kept])
    return out, int(score.tracks[0].note_num() - kept.size), int((dur < d[kept]).sum())


def check_range(pitch: np.ndarray, shift: int, transpose: str | int, source: str) -> None:
    """The melody, moved by ``shift``, must lie in what some voice sings; the message gives the file's pitches (as
    the file has them: quantising would fold them onto the piano)."""
    lo, hi = int(pitch.min()), int(pitch.max())
    if LOWEST <= lo + shift and hi + shift <= HIGHEST:
        return
    sung = f"{LOWEST}-{HIGHEST}, low bass D2 to high soprano A5"
    if transpose == "auto":
        raise MusesynthError(f"the melody {source} spans MIDI pitches {lo}-{hi}, {hi - lo} semitones: wider than all "
                             f"voices together sing ({sung}), at any transposition")
    moved = f" (moved {shift:+d} by --transpose: {lo + shift}-{hi + shift})" if shift else ""
    hint = "; --transpose auto moves it into range" if hi - lo <= HIGHEST - LOWEST else ", at any transposition"
    raise MusesynthError(f"the melody {source} spans MIDI pitches {lo}-{hi}{moved}, outside what any voice sings "
                         f"({sung}){hint}")


# ---------------------------------------------------------------------- the melody
def pick_track(score: symusic.Score, part: str | None, source: str) -> symusic.Track:
    """The melody's track: ``part`` by name (any case) or index (from 0, among all tracks), else the one track
    with notes, or the one named Soprano."""
    tracks = [t for t in score.tracks if not t.is_drum]
    names = ", ".join(f"{i}:{t.name or '(unnamed)'}" for i, t in enumerate(tracks))
    if part is None:
        with_notes = [t for t in tracks if t.note_num()]
        sopranos = [t for t in with_notes if voice_role(t.name) == 0]
        if len(with_notes) > 1 and len(sopranos) == 1:
            return sopranos[0]  # a choir score: its top voice is the melody
        if len(with_notes) > 1:
            raise BadRequest("part", f"is needed: {literal(source)} has {len(with_notes)} tracks with notes; "
                                     f"choose the melody's by name or index (tracks: {literal(names)})")
        if not with_notes:
            raise MusesynthError(f"the melody {source} has no notes")
        return with_notes[0]
    if part.strip().lstrip("-").isdigit():
        i = int(part)
        if not 0 <= i < len(tracks):
            drums = "; drum tracks are not counted" if len(tracks) < len(score.tracks) else ""
            raise BadRequest("part", f"{literal(part)}: unknown part in {literal(source)}, it has {len(tracks)} tracks "
                                     f"(tracks: {literal(names)}{drums})")
        return with_melody(tracks[i], f"{i}:{tracks[i].name or '(unnamed)'}", tracks, source)
    hit = [t for t in tracks if t.name.strip().lower() == part.strip().lower()]
    if not hit:
        drums = any(t.is_drum and t.name.strip().lower() == part.strip().lower() for t in score.tracks)
        what = "is a drum track: it has no melody to harmonise" if drums else f"unknown part in {literal(source)}"
        raise BadRequest("part", f"'{literal(part)}': {what} (tracks: {literal(names)})")
    hit.sort(key=lambda t: not t.note_num())  # of two tracks so named (the chorales' empty duplicate Soprano)
    return with_melody(hit[0], hit[0].name, tracks, source)


def with_melody(track: symusic.Track, label: str, tracks: list[symusic.Track], source: str) -> symusic.Track:
    """``track``, the melody a user chose, if it has notes (else a one-line error naming those that do)."""
    if track.note_num():
        return track
    playing = ", ".join(f"{i}:{t.name or '(unnamed)'}" for i, t in enumerate(tracks) if t.note_num()) or "none"
    raise BadRequest("part", f"{literal(label)}: that track of {literal(source)} has no notes (tracks with notes: "
                             f"{literal(playing)})")


def chorale_score(name: str, part: str | None, as_voice: str | None = None) -> tuple[symusic.Score, int, str]:
    """A corpus chorale exported as `musesynth corpus` writes it, its Soprano (or ``part``) as the melody."""
    from musesynth.data.corpus import corpus_pieces, export_piece

    stem = name.strip().removeprefix("bach/").removesuffix(".mid")
    src = corpus_pieces("bach").get(f"bach/{stem}.mid")
    if src is None:
        raise MusesynthError(f"unknown chorale '{name}' (a name from the music21 Bach corpus, e.g. bwv10.7)")
    with tempfile.TemporaryDirectory() as tmp:
        return melody_score(str(export_piece(src, Path(tmp) / f"{stem}.mid")), part or "Soprano", as_voice)


def melody_score(path: str, part: str | None, as_voice: str | None = None) -> tuple[symusic.Score, int, str]:
    """The melody as a one-track score, its voice (``as_voice``; else the track's SATB role; else by its register,
    ``register_voice``) and where that voice came from ("option", "name" or "register")."""
    p = Path(path)
    why = why_unreadable(p, literal(path))
    if why is not None:
        raise BadRequest("melody", why)
    try:
        score = load_score(p)
    except MidiReadError as exc:
        raise BadRequest("melody", f"{literal(repr(os.fsdecode(p)))} cannot be used: {literal(exc)}") from None
    track = pick_track(score, part, os.fsdecode(p.name))
    role = voice_role(track.name)
    if as_voice is not None:
        voice, origin = parse_voice(as_voice), "option"
    elif role < len(VOICES):
        voice, origin = role, "name"
    else:
        voice, origin = register_voice(track.notes.numpy()["pitch"]), "register"
    one = score.copy()
    t = track.copy()
    t.name = VOICES[voice]
    one.tracks = [t]
    if not t.note_num():
        raise MusesynthError(f"the melody {os.fsdecode(p.name)} has no notes")
    return one, voice, origin


def parse_voices(text: str | None, melody_voice: int) -> list[int]:
    """``"A,T,B"`` / ``"alto,bass"`` -> voice indices; default: the three SATB voices other than the melody's."""
    if text is None:
        return [v for v in range(len(VOICES)) if v != melody_voice]
    out = []
    for w in (w.strip() for w in text.split(",") if w.strip()):
        v = voice_named(w)
        if v is None:
            raise BadRequest("voices", f"'{literal(w)}': unknown voice (S, A, T, B or Soprano, Alto, Tenor, Bass)")
        if v == melody_voice:
            raise BadRequest("voices", f"names {VOICES[v]}, the melody's own voice")
        if v not in out:
            out.append(v)
    if not out:
        raise BadRequest("voices", "names no voice (e.g. A,T,B)")
    return sorted(out)


@dataclass
class Skeleton:
    """The piece to write: its parts (voices in SATB order), the melody's part, and the melody alone as tokens."""

    ids: np.ndarray  # BOS header BAR ... EOS with only the melody's notes
    roles: np.ndarray  # SATB role per part: all four where the model knows four parts (``layout``)
    melody_part: int
    sung: np.ndarray  # the parts the result keeps: the melody's and the asked-for voices'
    offset: int  # where the decoded MIDI starts (a pickup's first note): nothing may start before it
    pickup: tuple[int, int] | None  # the pickup bar's time signature, as decode_quantized gives it
    onset: np.ndarray  # the melody in grid steps (times as in decode_quantized)
    pitch: np.ndarray
    duration: np.ndarray
    off_grid: tuple[int, float] = (0, 0.0)  # melody notes moved onto the grid, and the first one's beat
    legato: int = 0  # melody notes cut where the next one starts (``trim_legato``)


def melody_skeleton(enc: Parts, score: symusic.Score, voice: int, voices: list[int], key: str | None,
                    source: str) -> Skeleton:
    """Quantise the melody (in a singable range: ``check_range``), check it (one note at a time, no stretch the
    encoding would shorten), and lay it into the parts. A legato overlap (a note held into the next by at most
    ``LEGATO_BEATS``, as played on a keyboard) is cut where the next note starts."""
    score, legato = trim_legato(score, enc.resolution)
    raw = score_notes(score)
    over = stretch_over_cap(raw)
    if over is not None and over == (0.0, raw.onset.min() / raw.tpq):
        raise MusesynthError(f"the melody {source} starts after {over[1]:g} beats of silence; harmonize keeps "
                             f"at most {MAX_SILENCE_BEATS} before the first note (trim the lead-in)")
    if over is not None:
        raise MusesynthError(f"the melody {source} has {over[1]:g} beats in which no note starts or ends "
                             f"(from beat {over[0]:g}); harmonize keeps at most {MAX_SILENCE_BEATS}, a "
                             f"longer rest or note would move or shorten melody notes")
    q = enc.quantize(score)
    on, du = q["onset"], q["duration"]
    if not on.size:
        raise MusesynthError(f"the melody {source} has no notes")
    clash = np.flatnonzero(on[1:] < on[:-1] + du[:-1])
    if clash.size:  # beats from the file's time 0, as the other messages count them (quantize shifts a pickup)
        beat = (on[clash[0] + 1] - on[0]) / enc.resolution + float(raw.onset.min()) / raw.tpq
        order = np.argsort(raw.onset, kind="stable")
        t, d = raw.onset[order], raw.duration[order]
        if (t[1:] > t[:-1]).all() and (t[:-1] + d[:-1] <= t[1:]).all():  # apart in the file: the grid joins them
            raise MusesynthError(f"the melody {source} has notes closer together than the model's grid of 1/"
                                 f"{enc.resolution} beat (first at beat {beat:g}), which would sound at once: "
                                 f"harmonize needs one note at a time")
        raise MusesynthError(f"the melody {source} has chords or overlapping notes (first at beat {beat:g}): "
                             f"harmonize needs one note at a time (--top-line takes the highest)")
    roles = layout(enc, voice, voices)
    part = int(np.flatnonzero(roles == voice)[0])
    sung = np.flatnonzero(np.isin(roles, [voice, *voices]))
    q = {**q, "part": np.full(on.size, part, np.int64), "role": roles, "program": np.zeros(roles.size, np.int64)}
    ids = enc.encode_quantized(q)
    if key is not None:
        ids = enc.set_key(ids, *parse_key(key))
    d = enc.decode_quantized(ids)
    offset, pickup = int(d["offset"]), d["pickup"]
    first = int(np.rint(score.tracks[0].notes.numpy()["time"].min() * enc.resolution
                        / score.ticks_per_quarter))
    if d["onset"][0] == first != d["onset"][0] - offset:
        offset, pickup = 0, None  # a rest opening a full first bar, which decoding drops: kept, so onsets stay
    return Skeleton(ids, roles, part, sung, offset, pickup, d["onset"], d["pitch"], full_durations(enc, score, d),
                    off_grid(raw, enc.resolution), legato)


def layout(enc: Parts, voice: int, voices: list[int]) -> np.ndarray:
    """The SATB roles of the piece the model writes: all four where it knows four parts, even when fewer voices
    are asked for (the others are written too, then dropped: ``harmonized``). A part's NOTE tokens name its place
    in the header, not its role, and the model learnt the place: laid out as Soprano and Bass alone, the bass sang
    in the alto's register (median MIDI 65 against 49 with all four; with Alto and Bass, 59). Laid out as four with
    the voices not asked for kept silent, the model, waiting for them, left the bass alone at 79 notes under 313
    melody notes and wrote a tenor down to MIDI 24."""
    if enc.max_parts >= len(VOICES):
        return np.arange(len(VOICES), dtype=np.int64)
    return np.array(sorted([voice, *voices]), np.int64)


def trim_legato(score: symusic.Score, resolution: int) -> tuple[symusic.Score, int]:
    """The one-track melody with each note that sounds on into the next onset by at most ``LEGATO_BEATS`` cut where
    that onset is, and how many were cut. Notes that start together (a chord, a doubled note) or overlap more (two
    lines) are left for the check that refuses them; an overlap that rounding onto the grid of ``resolution`` steps
    per beat removes anyway is left alone (and not counted)."""
    track = score.tracks[0]
    n = track.notes.numpy()
    order = np.lexsort((n["pitch"], n["time"]))
    t, d = n["time"][order].astype(np.int64), n["duration"][order].astype(np.int64)
    later = np.searchsorted(t, t, side="right")  # the next onset after each note's own
    nxt = np.r_[t, np.iinfo(np.int64).max][later]
    over = t + d - nxt
    scale = resolution / score.ticks_per_quarter
    heard = np.rint((t + d) * scale) > np.rint(np.minimum(nxt, t + d) * scale)  # still overlaps on the grid
    cut = (over > 0) & (over <= LEGATO_BEATS * score.ticks_per_quarter) & heard
    if not cut.any():
        return score, 0
    out = score.copy()
    out.tracks[0].notes = symusic.Note.from_numpy(time=t, duration=np.where(cut, nxt - t, d),
                                                  pitch=n["pitch"][order], velocity=n["velocity"][order])
    return out, int(np.unique(np.c_[t, n["pitch"][order]][cut], axis=0).shape[0])  # a doubled note counts once


def off_grid(n: Notes, resolution: int) -> tuple[int, float]:
    """How many notes start or end between the encoding's grid steps (a 32nd or a quintuplet on a grid of 12 per
    beat), and the first one's beat: quantising moves them, so the melody comes out as given except for these."""
    steps = np.r_[[n.onset, n.onset + n.duration]] * (resolution / n.tpq)
    # by more than half a file tick where file ticks are finer than the grid (1000 per beat: a twelfth is 83.3 ticks,
    # on the grid); where they are coarser (10 per beat), any move is one the file could not make
    tol = 0.5 * resolution / n.tpq if n.tpq > resolution else 1e-9
    moved = (np.abs(steps - np.rint(steps)) > tol).any(0)
    return int(moved.sum()), float(n.onset[moved].min() / n.tpq) if moved.any() else 0.0


def full_durations(enc: Parts, score: symusic.Score, d: dict[str, Any]) -> np.ndarray:
    """The melody's durations on the grid, also those longer than a DUR token holds (``max_duration_beats``,
    where the tokens cap them): the melody comes out as given, and the voices may sound under all of it."""
    dur = d["duration"].copy()
    n = score.tracks[0].notes.numpy()
    scale = enc.resolution / score.ticks_per_quarter
    on = np.rint(n["time"] * scale).astype(np.int64)
    end = np.rint((n["time"] + n["duration"]) * scale).astype(np.int64)
    starts = np.unique(on)
    if starts.size == dur.size:  # one grid note per onset, in order (a melody with no chords)
        longest = np.maximum.reduceat(end[np.argsort(on, kind="stable")] , np.searchsorted(np.sort(on), starts))
        capped = dur >= enc.max_dur
        dur[capped] = np.maximum(dur, longest - starts)[capped]
    return dur


def melody_constraint(enc: Parts, sk: Skeleton, batch: int) -> VoiceConstraint:
    """Every melody note and fermata as given, the other voices free under it (from its first note: in a 3/4 tune
    entering on beat 3 the voices sang beats 1 and 2 alone, as no chorale's do), bars and meter as the melody's."""
    fixed = Fixed.of(enc, sk.onset, np.full(sk.onset.size, sk.melody_part), sk.pitch, sk.duration)
    free = [p for p in range(sk.roles.size) if p != sk.melody_part]  # all: the ones not asked for are dropped after
    start = max(sk.offset, int(sk.onset.min())) if sk.onset.size else sk.offset
    frame = Frame(sk.ids, 0, int((sk.ids == enc.bar_id).sum()), opened=True, timesigs=True, start=start,
                  end=int((sk.onset + sk.duration).max()), min_bars=0, close_id=enc.eos_id,
                  phrases=enc.decode_quantized(sk.ids)["phrase_step"],
                  final=int(sk.onset.max()) if sk.onset.size else None)
    return VoiceConstraint(enc, frame, fixed, free, batch)


def harmonized(enc: Parts, sk: Skeleton, piece: np.ndarray) -> dict[str, Any]:
    """The written piece with its melody part replaced by the melody as read (same notes when the budget sufficed),
    and nothing outside the asked-for parts: only their tracks, renumbered in SATB order."""
    q0, q = enc.decode_quantized(sk.ids), enc.decode_quantized(piece)
    keep = (q["part"] != sk.melody_part) & np.isin(q["part"], sk.sung) & (q["onset"] >= sk.offset)
    on = np.r_[q["onset"][keep], sk.onset]
    pi = np.r_[q["pitch"][keep], sk.pitch]
    du = np.r_[q["duration"][keep], sk.duration]
    if sk.onset.size:  # the final chord is held with the melody's last note (its fermata read as at most 8 beats)
        last, end, k = int(sk.onset.max()), int((sk.onset + sk.duration).max()), int(keep.sum())
        final = (on[:k] <= last) & (on[:k] + du[:k] > last)  # a voice's note sounding at the last onset
        du[:k] = np.where(final, np.maximum(du[:k], end - on[:k]), du[:k])
    pa = np.searchsorted(sk.sung, np.r_[q["part"][keep], np.full(sk.onset.size, sk.melody_part)])
    order = enc.note_order(on, pa, pi)
    return {**q0, "offset": sk.offset, "pickup": sk.pickup, "onset": on[order], "pitch": pi[order],
            "duration": du[order], "part": pa[order],
            "role": sk.roles[sk.sung], "program": np.zeros(sk.sung.size, np.int64)}


def moved_key(key: tuple[int, str], semitones: int) -> tuple[int, str]:
    """(tonic, mode) ``semitones`` higher."""
    return (key[0] + semitones) % 12, key[1]


def moved_back(q: dict[str, Any], shift: int) -> dict[str, Any]:
    """The harmonisation written ``shift`` semitones from the melody, moved back: the melody as given, the key with
    it, and a voice note that would leave MIDI's 0-127 (a voice crossing above a melody near the top) by octaves."""
    if not shift:
        return q
    pitch = q["pitch"] - shift
    pitch = np.where(pitch > 127, pitch - 12 * ((pitch - 116) // 12), pitch)
    pitch = np.where(pitch < 0, pitch % 12, pitch)
    key = q.get("key")
    if key is not None and np.size(key) == 2 and int(key[0]) >= 0:
        key = np.array([(int(key[0]) - shift) % 12, int(key[1])], np.int64)
    return {**q, "pitch": pitch, "key": key}


def check_parts_model(enc: Encoding, path: str) -> Parts:
    """``enc`` as the parts encoding harmonize needs, else a one-line error naming the checkpoint."""
    parts = enc.parts()
    if parts is None:
        raise MusesynthError(f"{path} was trained on the '{enc.name}' encoding, which does not know parts; harmonize "
                             f"needs a model trained on a dataset made with `musesynth data --encoding parts`")
    return parts


class Harmonization(WrittenScore):
    """A harmonised melody: its score (one named track per voice), the tokens the model wrote (the melody prompt
    included), what its JSON sidecar holds, and the file name it is written under (without a suffix)."""


@dataclass
class Melody:
    """The melody as harmonize writes under it: its skeleton (moved by ``shift`` semitones), its voice, the voices
    to write, its name, and what ``--top-line`` did to it (None without it)."""

    sk: Skeleton
    voice: int
    voices: list[int]
    source: str
    shift: int
    top_line: dict[str, int] | None
    voice_from: str = "name"  # where its voice came from: "option", "name" or "register"
    program: int = 0  # the melody track's General MIDI program (a violin's 40), kept on its track
    tempos: tuple[np.ndarray, np.ndarray, int] | None = None  # the file's tempo map: ticks, quarter-note BPM, tpq


def read_melody(opt: HarmonizeOptions, parts: Parts, ckpt: str) -> Melody:
    """The melody of ``opt`` read, checked, reduced to its top line if asked, and moved into its voice's range."""
    score, voice, origin = (chorale_score(opt.chorale, opt.part, opt.melody_voice) if opt.chorale
                            else melody_score(opt.melody, opt.part, opt.melody_voice))
    if score.note_num() > MAX_MELODY_NOTES:  # bounds the work before the melody is quantised (a MIDI bomb)
        raise MusesynthError(f"the melody has {score.note_num():,} notes; harmonize takes at most "
                             f"{MAX_MELODY_NOTES:,} (a chorale melody has 40-80)")
    voices = parse_voices(opt.voices, voice)
    if len(voices) + 1 > parts.max_parts:
        raise MusesynthError(f"{ckpt} knows at most {parts.max_parts} parts")
    source = opt.chorale or os.fsdecode(Path(opt.melody).name)
    top, legato = None, 0
    if opt.top_line:  # a played legato is cut first: it is one line, not a note under another
        score, legato = trim_legato(score, parts.resolution)
        score, dropped, cut = top_line(score)
        top = {"dropped": dropped, "cut": cut}
        if not score.tracks[0].note_num():
            raise MusesynthError(f"the melody {source} has no notes of any length")
    check_no_zero_length(score, source)
    given = score.tracks[0].notes.numpy()["pitch"].astype(np.int64)
    shift = melody_shift(given, voice, opt.transpose)
    check_range(given, shift, opt.transpose, source)
    key = opt.key
    if shift:  # the key as given, or as the file has it (its notes and key signature), moved with the melody
        if key is not None:
            found: tuple[int, str] | None = parse_key(key)
        else:
            tonic, mode = (int(x) for x in parts.quantize(score)["key"])
            found = (tonic, MODES[mode]) if tonic >= 0 else None
        key = key_name(*moved_key(found, shift)) if found else None
    sk = melody_skeleton(parts, score.shift_pitch(shift), voice, voices, key, source)  # check_range: in MIDI
    sk.legato += legato
    tm = score.tempos.numpy()
    tempos = (tm["time"].astype(np.int64), np.asarray(tm["mspq"], np.float64), score.ticks_per_quarter)
    return Melody(sk, voice, voices, source, shift, top, origin, int(score.tracks[0].program), tempos)


def with_tempos(score: symusic.Score, tempos: tuple[np.ndarray, np.ndarray, int] | None) -> symusic.Score:
    """``score`` (on the melody's beats) with the melody file's own tempo map: the encoding keeps tempos in bins
    (100 BPM came back as 100.91, 150 as 151.2), so the voices drifted against the user's track in a DAW."""
    if tempos is None or not tempos[0].size:
        return score
    time, mspq, tpq = tempos
    score.tempos = symusic.Tempo.from_numpy(time=np.rint(time * score.ticks_per_quarter / tpq).astype(np.int32),
                                            mspq=mspq.astype(np.int32))
    return score


def check_no_zero_length(score: symusic.Score, source: str) -> None:
    """A note of no length cannot come out as given (the grid's shortest note is 1/12 beat): refused, naming the
    first, where ``--top-line`` would drop it."""
    n = score.tracks[0].notes.numpy()
    zero = n["duration"] <= 0
    if zero.any():
        beat = float(n["time"][zero].min()) / score.ticks_per_quarter
        raise MusesynthError(f"the melody {source} has {int(zero.sum())} note(s) of no length (first at beat "
                             f"{beat:g}), which cannot come out as given (--top-line drops them)")


def harmonizations(opt: HarmonizeOptions, progress: Callable[[float], None] | None = None,
                   loaded: tuple[torch.nn.Module, Encoding, CheckpointMeta] | None = None) -> list[Harmonization]:
    """``num_samples`` harmonisations of the melody, in memory (``loaded``: a model already loaded, else
    ``opt.checkpoint``'s). ``progress`` (the studio's bar) hears the share of the token budget drawn, in [0, 1]."""
    opt.validate()
    seed = fresh_seed() if opt.seed is None else opt.seed
    ckpt = checkpoint_or_shipped(opt.checkpoint, parts=True) if loaded is None else loaded[2].path
    model, enc, meta = load_model(ckpt, pick_device(opt.device)) if loaded is None else loaded
    parts = check_parts_model(enc, ckpt)
    if meta.key_frames:
        raise MusesynthError(f"{ckpt} reads pieces in a key-relative frame (train --key-relative): harmonize does "
                             f"not support such models yet")
    opt.sampling.validate(len(enc.vocab))
    mel = read_melody(opt, parts, ckpt)
    sk, voice, voices, source, shift = mel.sk, mel.voice, mel.voices, mel.source, mel.shift
    e = parts
    head = int(np.flatnonzero(sk.ids == e.bar_id)[0]) + 1
    melody = melody_prompt(enc, sk.ids, sk.melody_part)  # as training showed it (data.melody_first)
    prompt = np.r_[melody, sk.ids[:head]]  # the whole melody, EOS, then the piece to write up to its first BAR
    body = sk.ids.size - head
    budget = opt.max_tokens or body * (2 * sk.roles.size - 1) + 64  # a NOTE and a DUR per note of each voice
    drawn = opt.num_samples * opt.particles
    constraint = melody_constraint(parts, sk, drawn)
    hook = model.register_forward_hook(call_counter(progress, budget + 1)) if progress is not None else None
    t0 = time.perf_counter()
    try:
        # no ending ramp: the melody decides where the piece ends
        spec = DecodeSpec(enc.grammar(), enc.eos_id, meta.model_config.seq_len, keys=enc.key_spec())
        rows, sampling = np.tile(prompt, (drawn, 1)), replace(opt.sampling, ending=0.0)
        if opt.particles > 1:  # SMC: each harmonisation is the heaviest of its population of particles
            seqs, _ = decode_particles(model, rows, spec, sampling, seed, budget, constraint, opt.num_samples,
                                       key_source=sk.ids[None])
        else:
            seqs = decode(model, rows, spec, sampling, seed, budget, constraint, key_source=sk.ids[None])
    finally:
        if hook is not None:
            hook.remove()
    dt = time.perf_counter() - t0
    stem = Path(source).stem if opt.chorale is None else source.removeprefix("bach/").removesuffix(".mid")
    names = "".join(VOICES[v][0] for v in voices)
    out = []
    for i, seq in enumerate(seqs):
        piece = np.asarray(seq[melody.size :], np.int64)
        q = moved_back(harmonized(parts, sk, piece), shift)
        q["program"][np.searchsorted(sk.sung, sk.melody_part)] = mel.program  # the melody sounds as given
        res = e.resolution
        found = e.key_of(sk.ids)
        info = {"melody": opt.chorale or os.fsdecode(opt.melody), "melody_voice": VOICES[voice],
                "melody_voice_from": mel.voice_from,
                "voices": [VOICES[v] for v in voices], "checkpoint": meta.path, "model": meta.family,
                "key": key_name(*moved_key(found, -shift)) if found else None,
                "melody_shift": shift, "transpose": opt.transpose,
                "melody_notes": int(sk.onset.size), "melody_off_grid": sk.off_grid[0],
                "melody_off_grid_first_beat": sk.off_grid[1], "melody_legato_cut": sk.legato,
                "melody_top_line": mel.top_line,
                "notes": int(q["onset"].size),
                "empty_voices": [VOICES[v] for v in voices if not (q["role"][q["part"]] == v).any()],
                "most_sounding": most_sounding(q["onset"], q["duration"]),
                "complete": bool(piece.size and piece[-1] == e.eos_id), "prompt_tokens": int(prompt.size),
                "generated_tokens": int(seq.size - prompt.size),
                "beats": float((q["onset"] + q["duration"]).max() - q["offset"]) / res,
                "sampling": {**asdict(opt.sampling), "seed": seed, "num_samples": opt.num_samples,
                             "particles": opt.particles},
                "generation_seconds": round(dt, 3), "encoding": enc.name}
        written = with_tempos(e.score_of(q), mel.tempos)
        info["seconds"] = seconds_of(written)
        s = opt.sampling
        title = f"{meta.family} | {source} harmonized ({names}) | T={s.temperature} k={s.top_k} p={s.top_p} " \
                f"seed={seed}"
        out.append(Harmonization(written, np.asarray(seq, np.int64), info,
                                 f"{stem}_harmonized{names}_{meta.family}_seed{seed}_{i}", title))
    return out


def run_harmonize(opt: HarmonizeOptions, progress: Callable[[float], None] | None = None,
                  names: Callable[[str], str] | None = None) -> list[dict[str, Any]]:
    """Write ``num_samples`` harmonisations of the melody (MIDI with one track per voice, WAV, PNG, JSON).
    ``progress`` (the studio's bar) hears the share of the token budget drawn, in [0, 1]. Errors name the CLI's
    flags, or the fields as ``names`` spells them (the core, `harmonizations`, names the API's keywords)."""
    with flags(names=names):
        opt.validate()
        out_dir = check_writable_dir(opt.out_dir, "-o/--out-dir")  # before any work
        return write_scores(harmonizations(opt, progress), out_dir, opt)


def summarize(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        done = "" if r["complete"] else " (cut by the token budget: --max-tokens)"
        lines.append(f"{r['midi']}  ({r['melody_notes']} melody notes, {r['notes']} notes in "
                     f"{', '.join([r['melody_voice'], *r['voices']])}{done})")
        if r.get("melody_voice_from") == "register" and r["melody_voice"] != VOICES[0]:
            lines.append(f"  the melody lies as low as a bass sings and its track names no voice, so it is the "
                         f"{r['melody_voice']} (--melody-voice S to have it on top)")
        if r.get("melody_legato_cut"):
            lines.append(f"  {r['melody_legato_cut']} melody note(s) sounded on into the next (legato, at most "
                         f"{LEGATO_BEATS:g} beat) and were cut where it starts")
        if r.get("empty_voices"):
            lines.append(f"  warning: the model wrote no notes for {', '.join(r['empty_voices'])} (a melody far "
                         f"outside a choir's range leaves it no room: try --transpose)")
        if r.get("melody_top_line"):
            t = r["melody_top_line"]
            lines.append(f"  --top-line: {t['dropped']} melody note(s) under a higher one dropped, {t['cut']} cut "
                         f"where the next starts; every other melody note is as given")
        if r.get("melody_shift"):
            k = r["melody_shift"]
            auto = r.get("transpose") == "auto"
            voice = r["melody_voice"].lower()
            why = f"the melody lies outside the {voice}'s range, so " if auto else f"--transpose {k}: "
            lines.append(f"  {why}the voices were written {moved_by(k)} and "
                         f"moved back with the melody: the melody is as given, the other voices sound "
                         f"{'lower' if k > 0 else 'higher'} than a choir's")
        if r.get("melody_off_grid"):
            lines.append(f"  {r['melody_off_grid']} melody note(s) start or end between the model's grid steps (first "
                         f"at beat {r['melody_off_grid_first_beat']:g}) and were moved onto the grid; every other "
                         f"melody note is exact")
        if r["wav"] or r.get("wav_skipped"):
            lines.append(f"  wav: {r['wav'] or 'not written - ' + r['wav_skipped']}")
        if r["png"]:
            lines.append(f"  png: {r['png']}")
    return "\n".join(lines)
