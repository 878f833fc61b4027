"""The Python API: the same pipeline as the CLI, for notebooks and scripts.

    from musesynth import load_model, generate
    model = load_model()                         # the shipped Bach model (or a run folder / checkpoint)
    pieces = generate(model, length=600, key="D major", num_samples=2, seed=1)
    pieces[0].save("chorale.mid")                # a symusic.Score is in pieces[0].score
    tokens = tokenize("chorale.mid", "meter")    # token ids in a named encoding
    summary = train(dataset="datasets/bach", model="lstm", max_time=600)   # any `musesynth train` option
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import symusic
import torch

from musesynth.artifacts.load import load_model as _load
from musesynth.artifacts.meta import CheckpointMeta
from musesynth.atomic import atomic_write
from musesynth.data.key_frame import KeyFrame
from musesynth.device import pick_device
from musesynth.errors import MusesynthError
from musesynth.generate.controls import HeaderTempo, apply_controls, check_controls
from musesynth.generate.keys import parse_requested_key, primer_rows
from musesynth.generate.midi_out import daw_ready
from musesynth.generate.run import check_fits, check_seed, checkpoint_or_shipped, primer_ids
from musesynth.generate.sampling import Sampling
from musesynth.generate.sampling import generate as _sample
from musesynth.tokenize import Encoding, get_encoding
from musesynth.tokenize.midi_io import load_score
from musesynth.training.config import TrainConfig
from musesynth.training.loop import train as _train
from musesynth.training.progress import TrainSummary


@dataclass
class Model:
    """A trained network with the encoding it reads and writes."""

    net: torch.nn.Module
    encoding: Encoding
    meta: CheckpointMeta


@dataclass
class Piece:
    tokens: np.ndarray
    score: symusic.Score
    primer_tokens: int

    def save(self, path: str | Path) -> Path:
        """Write the piece as a MIDI file (atomically)."""
        return atomic_write(path, lambda tmp: self.score.dump_midi(tmp))


def load_model(path: str | Path | None = None, device: str = "auto") -> Model:
    """A run folder, checkpoint file or shipped model folder; None: the model shipped in the package."""
    net, enc, meta = _load(checkpoint_or_shipped(None if path is None else str(path)), pick_device(device))
    return Model(net, enc, meta)


def generate(model: Model | None = None, primer: str | Path | None = None, length: int = 512, *,
             primer_tokens: int | None = None, primer_seconds: float | None = None, num_samples: int = 1,
             temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0,
             key: str | None = None, composer: str | None = None, tempo: float | None = None,
             repeat_bias: float = Sampling.repeat_bias, key_strength: float = Sampling.key_strength,
             ending: float | None = Sampling.ending) -> list[Piece]:
    """New pieces: each continues ``primer`` (a MIDI file; None: from nothing) by up to ``length`` tokens.
    Scores are DAW-ready like the CLI's: the primer's meter, a piano track, a marker where generation starts.
    ``key``, ``composer``, ``tempo`` (BPM) and ``ending`` are `musesynth generate`'s --key, --composer, --tempo
    and --ending."""
    check_seed(seed)
    if primer_seconds is not None and not primer_seconds > 0:
        raise MusesynthError(f"primer_seconds must be positive (got {primer_seconds})")
    model = model or load_model()
    enc, seq_len = model.encoding, model.meta.model_config.seq_len
    sampling = Sampling(temperature, top_k, top_p, repeat_bias, key_strength, ending).validate(len(enc.vocab))
    path = Path(primer) if primer is not None else None
    ids = primer_ids(enc, path, primer_tokens, primer_seconds, seq_len)
    rows = primer_rows(enc, ids, parse_requested_key(enc, key), model.meta.key_prior, num_samples, seed)
    tempo_token = check_controls(enc, composer, tempo)
    rows = apply_controls(enc, rows, composer, tempo, model.meta.composer_prior, seed)
    frame = KeyFrame(enc, model.meta.key_frames)
    rows_in = check_fits(frame.to_model(rows), seq_len, len(ids))
    device = next(model.net.parameters()).device
    force = HeaderTempo(enc, tempo_token, rows_in, device) if tempo_token is not None else None
    seqs = frame.to_user(_sample(model.net, rows_in, length, num_samples, sampling, enc.grammar(), enc.eos_id, seed,
                                 seq_len=seq_len, repeats=enc.repeat_spec(), keys=enc.key_spec(), constraint=force))
    boundary = enc.end_beats(ids) if path is not None else None
    meter_source = path if enc.name != "meter" else None  # the meter encoding writes the meter it read
    return [Piece(s, daw_ready(enc.decode(s), meter_source, boundary), rows.shape[1]) for s in seqs]


def tokenize(midi: str | Path | symusic.Score, encoding: str = "chord", **params: Any) -> np.ndarray:
    """Token ids (BOS ... EOS) of a MIDI file or score in the named encoding."""
    enc = get_encoding(encoding, **params)
    return enc.encode(midi if isinstance(midi, symusic.Score) else load_score(midi))


def train(**options: Any) -> TrainSummary:
    """Train with any `musesynth train` option as a keyword (``dataset=..., model="lstm", max_time=600``)."""
    return _train(TrainConfig.from_dict(options))
