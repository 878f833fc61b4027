"""Self-describing checkpoints: weights, optimizer, scheduler, RNG states, progress, config and vocabulary
in one file, written atomically and loaded with ``torch.load(weights_only=True)``: loading never runs
code. Everything that is not a tensor travels as a JSON string."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from musesynth.atomic import atomic_write
from musesynth.data.key_frame import frame_tonics
from musesynth.errors import MusesynthError
from musesynth.models import ModelConfig, build_model
from musesynth.tokenize import Encoding, Vocabulary, encoding_from_vocab
from musesynth.training.progress import Progress

FORMAT = "musesynth-checkpoint-v1"


@dataclass
class CheckpointMeta:
    """What a checkpoint says about itself besides tensors (stored as JSON inside the file)."""

    model_config: ModelConfig
    vocab: Vocabulary
    train_config: dict[str, Any] = field(default_factory=dict)
    dataset: str = ""
    num_params: int = 0
    world_size: int = 1
    progress: Progress = field(default_factory=Progress)
    key_prior: list[float] | None = None  # share of each KEY token in the training data (keyed encodings)
    composer_prior: list[float] | None = None  # share of each COMPOSER token in the training data
    path: str = ""  # where it was loaded from (not stored)

    @property
    def family(self) -> str:
        return self.model_config.family

    @property
    def key_frames(self) -> tuple[int, ...]:
        """The frame tonics a key-relative model reads pieces on (``train --key-relative N``, ``data.key_frame``);
        () for a model of written keys."""
        return frame_tonics(int(self.train_config.get("key_relative", 0)))

    def to_json(self) -> str:
        return json.dumps({
            "model_config": self.model_config.to_dict(), "vocab": self.vocab.to_dict(),
            "vocab_fingerprint": self.vocab.fingerprint, "train_config": self.train_config,
            "dataset": self.dataset, "num_params": self.num_params, "world_size": self.world_size,
            "progress": self.progress.to_dict(), "key_prior": self.key_prior,
            "composer_prior": self.composer_prior,
        })

    @classmethod
    def from_json(cls, text: str, path: str) -> CheckpointMeta:
        try:
            d = json.loads(text)
            return cls(
                model_config=ModelConfig.from_dict(d["model_config"]), vocab=Vocabulary.from_dict(d["vocab"]),
                train_config=dict(d.get("train_config", {})), dataset=str(d.get("dataset", "")),
                num_params=int(d.get("num_params", 0)), world_size=int(d.get("world_size", 1)),
                progress=Progress.from_dict(d.get("progress", {})), key_prior=d.get("key_prior"),
                composer_prior=d.get("composer_prior"), path=path,
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MusesynthError(f"damaged checkpoint {path}: bad metadata ({type(exc).__name__}: {exc})") from None


def save_checkpoint(path: str | Path, model: nn.Module, meta: CheckpointMeta,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
                    scaler: torch.amp.GradScaler | None = None) -> Path:
    """Everything ``--resume`` needs to continue exactly: weights, optimizer, schedule, the fp16 loss scale
    and every RNG (CPU, Python, NumPy and each CUDA device's)."""
    state: dict[str, Any] = {
        "format": FORMAT,
        "model": model.state_dict(),
        "meta": meta.to_json(),
        "rng_torch": torch.get_rng_state(),
        "rng_python": json.dumps(random.getstate()),
        "rng_numpy": json.dumps(np.random.get_state(legacy=False), default=_np_default),
    }
    if torch.cuda.is_available():
        state["rng_cuda"] = torch.cuda.get_rng_state_all()
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    if scaler is not None and scaler.is_enabled():
        state["scaler"] = scaler.state_dict()
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def _np_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.integer):
        return int(o)
    raise TypeError(type(o))


def resolve_path(path: str | Path) -> Path:
    """A run folder means its best checkpoint (else last); a file is itself."""
    p = Path(path)
    if p.is_dir():
        for name in ("best.pt", "last.pt"):
            if (p / name).is_file():
                return p / name
        raise MusesynthError(f"no checkpoint (best.pt or last.pt) in {p}")
    if not p.is_file():
        raise MusesynthError(f"checkpoint not found: {p}")
    return p


def _why_unreadable(p: Path, exc: Exception) -> str:
    """torch.load's reason in a user's words (its own text runs to paragraphs and suggests unsafe loading)."""
    try:
        with open(p, "rb") as f:
            head = f.read(4)
    except OSError as err:
        return err.strerror or type(err).__name__
    if not head:
        return "the file is empty"
    if not head.startswith((b"PK", b"\x80")):  # torch.save writes a zip; old versions a bare pickle
        return "not a PyTorch checkpoint file (an exported model is a folder: pass the folder)"
    if "weights only" in str(exc).lower() or "weights_only" in str(exc):
        return "it holds Python objects besides tensors, which musesynth never loads (not a musesynth checkpoint)"
    return "the file is damaged or cut short (an incomplete copy?)"


def load_raw(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint's dict with ``meta`` parsed into a ``CheckpointMeta``; any damage is a one-line error."""
    p = resolve_path(path)
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # zero bytes, truncation, a text file, a pickle with code: all one message
        raise MusesynthError(f"cannot read checkpoint {p}: {_why_unreadable(p, exc)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        hint = " (an exported model's weights: pass its folder)" if p.suffix == ".safetensors" else ""
        raise MusesynthError(f"{p} is not a musesynth checkpoint{hint}")
    if not isinstance(state.get("meta"), str) or not isinstance(state.get("model"), dict):
        raise MusesynthError(f"damaged checkpoint {p}: no metadata or weights")
    state["meta"] = CheckpointMeta.from_json(state["meta"], str(p))
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["rng_torch"])
    random.setstate(_tuples(json.loads(state["rng_python"])))
    np_state = json.loads(state["rng_numpy"])
    np_state["state"]["key"] = np.asarray(np_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(np_state)
    if "rng_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])


def _tuples(x: Any) -> Any:
    return tuple(_tuples(i) for i in x) if isinstance(x, list) else x


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor], path: str) -> None:
    """Load a state dict; a shape or name mismatch, or non-finite weights, is a one-line error."""
    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise MusesynthError(f"checkpoint {path} does not fit its model: {first[:200]}") from None
    bad = [n for n, t in weights.items() if torch.is_tensor(t) and t.is_floating_point() and not t.isfinite().all()]
    if bad:
        raise MusesynthError(f"checkpoint {path} has NaN/inf weights ({bad[0]}); use an earlier checkpoint")


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Encoding, CheckpointMeta]:
    """Model (eval mode) + the encoding it was trained with + metadata, from a run folder, a checkpoint file
    or a shipped model folder (safetensors + config.json)."""
    from musesynth.training.shipped import is_shipped, load_shipped  # shipped.py builds on this module

    if is_shipped(path):
        weights, meta = load_shipped(path)
    else:
        state = load_raw(path, map_location="cpu")
        weights, meta = state["model"], state["meta"]
    try:
        model = build_model(meta.model_config)
    except (TypeError, ValueError, RuntimeError, AssertionError) as exc:
        raise MusesynthError(f"damaged checkpoint {meta.path}: bad model config ({exc})") from None
    load_weights(model, weights, meta.path)
    enc = encoding_from_vocab(meta.vocab)
    return model.to(device).eval(), enc, meta


def check_compatible(meta: CheckpointMeta, family: str, vocab: Vocabulary, model_config: ModelConfig) -> None:
    """Resuming needs the same model family, vocabulary and sizes; say which differs."""
    if meta.family != family:
        raise MusesynthError(f"checkpoint is a {meta.family} model, but -m {family} was asked")
    if meta.vocab.fingerprint != vocab.fingerprint:
        raise MusesynthError(
            f"checkpoint vocabulary ({meta.vocab.encoding}, {len(meta.vocab)} tokens, {meta.vocab.fingerprint}) "
            f"differs from the dataset's ({vocab.encoding}, {len(vocab)} tokens, {vocab.fingerprint})"
        )
    old, new = meta.model_config.to_dict(), model_config.to_dict()
    ignore = {"dropout"} | ({"num_heads"} if family != "transformer" else set())  # no effect on the weights
    diff = [k for k in old if k not in ignore and old[k] != new.get(k)]
    if diff:
        k = diff[0]
        raise MusesynthError(f"--resume: the checkpoint has {k}={old[k]}, this run asks {k}={new.get(k)}; "
                             f"use the run's original settings or a new --run-name")
