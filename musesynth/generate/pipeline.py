"""Generation as one pipeline: a ``GenerationRequest`` in, ``GeneratedPiece``s out.

request.validate() -> resolved seed -> ``build_prompt`` -> ``decode`` (a ``DecodeSpec`` from the encoding) ->
each sequence as a DAW-ready score with its ``PieceInfo`` (the .json sidecar is ``asdict(piece.info)``). The CLI,
the API, the studio, `evaluate` and the control benchmark only build requests and use what comes out."""

from __future__ import annotations

import copy
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import symusic

from musesynth.atomic import atomic_write
from musesynth.errors import BadRequest, MusesynthError
from musesynth.generate.bar_grammar import bar_grammar
from musesynth.generate.key_guide import row_key
from musesynth.generate.midi_out import daw_ready, seconds_of
from musesynth.generate.model import Model
from musesynth.generate.particles import decode_particles
from musesynth.generate.prompt import Prompt, build_prompt
from musesynth.generate.request import GenerationRequest
from musesynth.generate.sampling import DecodeSpec, Sampling, chain, decode, ending_ramp
from musesynth.generate.voices import OneNotePerVoice
from musesynth.tokenize import Encoding


@dataclass
class PieceInfo:
    """What is known of a generated piece: its .json sidecar is ``asdict`` of this. ``sampling`` holds every
    dial as used (the ending strength resolved), the seed, the batch size and whether the cache was used."""

    checkpoint: str
    model: str
    encoding: str
    primer: str | None
    primer_tokens: int
    generated_tokens: int
    notes: int
    seconds: float
    sampling: dict[str, Any]
    generation_seconds: float
    key: str | None = None  # the header's, for encodings with one (meter: also composer, meter, tempo)
    composer: str | None = None
    time_signature: str | None = None
    tempo: float | None = None
    shift: int = 0  # semitones the model read the primer at, its notes moved back (``ranges.piece_shift``)
    midi: str | None = None  # the files, once written
    wav: str | None = None
    png: str | None = None
    wav_skipped: str | None = None  # why no WAV was written


@dataclass
class GeneratedPiece:
    """A new piece: its tokens (prompt included), a DAW-ready score, its ``info`` and where its primer ends (beats;
    None without a primer)."""

    tokens: np.ndarray
    score: symusic.Score
    info: PieceInfo = field(repr=False)
    boundary: float | None = None

    @property
    def primer_tokens(self) -> int:
        return self.info.primer_tokens

    @property
    def seed(self) -> int:
        return int(self.info.sampling["seed"])

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the piece as a MIDI file (atomically); an existing file is kept unless ``overwrite``."""
        if Path(path).exists() and not overwrite:
            raise MusesynthError(f"{os.fsdecode(path)} exists; pass overwrite=True to replace it")
        return atomic_write(path, lambda tmp: self.score.dump_midi(tmp))


def generate_pieces(model: Model, request: GenerationRequest) -> list[GeneratedPiece]:
    """The pieces of ``request`` (validated here; without a seed, a fresh one, recorded in each piece's info)."""
    request = request.validate().resolved()
    prompt = build_prompt(request, model)
    t0 = time.perf_counter()
    seqs = decode_prompt(model, prompt, request)
    dt = time.perf_counter() - t0
    return [finish(model, request, prompt, row, seq, dt) for row, seq in zip(prompt.rows, seqs)]


def decode_prompt(model: Model, prompt: Prompt, request: GenerationRequest) -> list[np.ndarray]:
    """Each sample's tokens (the prompt in the user's frame, then the new ones)."""
    assert request.seed is not None
    spec = DecodeSpec.of(model.encoding, model.seq_len, request.exact_repeats, request.use_cache)
    parts = model.encoding.parts()
    n = request.particles
    require_voices(model.encoding, n)
    rows = prompt.model_rows if n == 1 else np.repeat(prompt.model_rows, n, axis=0)
    voices = OneNotePerVoice(parts, rows, model.device) if parts is not None else None
    tempo = copy.deepcopy(prompt.tempo)  # decoding moves its state: the prompt's stays fresh for another decode
    if tempo is not None and n > 1:
        tempo.reindex(np.repeat(np.arange(len(prompt.model_rows)), n))
    constraint = chain(tempo, bar_grammar(model.encoding, rows, model.device), voices)
    if n == 1:
        seqs = decode(model.net, rows, spec, request.sampling, request.seed, request.length, constraint)
    else:  # each piece the heaviest of its n particles, resampled by how well they keep the voice rules
        seqs, _ = decode_particles(model.net, rows, spec, request.sampling, request.seed, request.length,
                                   constraint, len(prompt.model_rows))
    return prompt.frame.to_user(seqs)


def require_voices(enc: Encoding, particles: int) -> None:
    """Particles for free pieces weigh them by a parts model's voice rules: a model without voices is refused."""
    if particles > 1 and enc.parts() is None:
        raise BadRequest("particles", "weighs pieces by the voice rules of a parts model (this one has none): "
                                      "leave {particles} at 1")


def finish(model: Model, request: GenerationRequest, prompt: Prompt, row: np.ndarray, seq: np.ndarray,
           dt: float) -> GeneratedPiece:
    enc, path = model.encoding, request.primer.path
    meter_source = None if enc.writes_meter else path  # an encoding that writes its meter keeps it
    score = named(without_tracks(enc.decode(seq), prompt.added), prompt.names)
    boundary = first_new_beat(score, without_tracks(enc.decode(row), prompt.added), prompt.boundary)
    score = daw_ready(in_file_order(score, prompt.tracks) if enc.parts() is not None else score, meter_source,
                      boundary)
    used = {**asdict(request.sampling), "ending": resolved_ending(request.sampling, enc, row),
            "seed": request.seed, "num_samples": request.num_samples, "cache": request.use_cache,
            "particles": request.particles}
    header = {k: v for k, v in enc.header_info(seq).items() if k in PieceInfo.__dataclass_fields__}
    info = PieceInfo(
        checkpoint=model.meta.path, model=model.meta.family, encoding=enc.name,
        primer=os.fsdecode(path) if path is not None else None, primer_tokens=int(row.size),
        generated_tokens=int(seq.size - row.size), notes=int(score.note_num()),
        seconds=seconds_of(score), sampling=used,
        generation_seconds=round(dt, 3), shift=prompt.frame.register, **header)
    return GeneratedPiece(seq, score, info, boundary)


def first_new_beat(score: symusic.Score, primer: symusic.Score, primer_end: float | None) -> float | None:
    """Where the generated music starts (beats): the first onset of a note that is not the primer's (``score`` and
    ``primer`` decoded alike), else ``primer_end`` (the primer's last onset; None without a primer). The marker
    and the piano roll's line stood at the primer's last onset, its chord drawn as generated, and a primer of one
    onset at beat 0 had none."""
    if primer_end is None:
        return None

    def keys(s: symusic.Score) -> np.ndarray:
        n = [t.notes.numpy() for t in s.tracks if len(t.notes)]
        return np.concatenate([a["time"].astype(np.int64) * 128 + a["pitch"] for a in n]) if n else np.zeros(0, int)

    full, n = np.unique(keys(score), return_counts=True)
    old, count = np.unique(keys(primer), return_counts=True)
    had = np.zeros(full.size, np.int64)  # how many of each (onset, pitch) the primer holds
    if old.size:
        at = np.minimum(np.searchsorted(old, full), old.size - 1)
        had = np.where(old[at] == full, count[at], 0)
    new = full[n > had]
    return max(float(new.min() // 128) / score.ticks_per_quarter, primer_end) if new.size else primer_end


def without_tracks(score: symusic.Score, parts: np.ndarray) -> symusic.Score:
    """``score`` without the tracks of ``parts`` (a parts encoding writes one track per declared part, in order):
    the voices a primer lacked, which the model wrote beside its own (``generate.layout``)."""
    if parts.size:
        gone = set(parts.tolist())
        score.tracks = [t for i, t in enumerate(score.tracks) if i not in gone]
    return score


def named(score: symusic.Score, names: list[str]) -> symusic.Score:
    """``score`` (a parts model's piece, its tracks in part order) with its primer's track names, where there was
    a name and the piece has as many tracks (a quartet's Violin I, not "Part 1")."""
    if len(names) == len(score.tracks):
        for track, name in zip(score.tracks, names, strict=True):
            if name.strip():
                track.name = name
    return score


def in_file_order(score: symusic.Score, tracks: list[int]) -> symusic.Score:
    """``score`` (a parts model's continuation, its tracks in part order: top voice first) with its tracks in the
    primer file's order (``tracks``: each part's track index in the file; a quartet listed Cello first came back
    Violin I first). By index, not name: four tracks named "Strings" listed from the cello came back top first."""
    if len(tracks) == len(score.tracks):
        score.tracks = [score.tracks[i] for i in np.argsort(np.asarray(tracks), kind="stable")]
    return score


def resolved_ending(sampling: Sampling, enc: Encoding, prompt: np.ndarray) -> float:
    """The ending strength the sampler used for this piece: gated where the Decoder gates (a key in its prompt)."""
    spec = enc.key_spec()
    gated = spec is not None and spec.onset is not None and row_key(spec, prompt) is not None
    return ending_ramp(sampling, gated)[0]


def with_files(piece: GeneratedPiece, **files: str | None) -> GeneratedPiece:
    """The piece with its written files recorded in its info."""
    return replace(piece, info=replace(piece.info, **files))
