"""Self-describing checkpoints: weights, optimizer, scheduler, RNG states, step, config and vocabulary
in one file, written atomically and loaded with ``torch.load(weights_only=True)``: loading never runs
code. Everything that is not a tensor travels as a JSON string."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from musesynth.atomic import atomic_write
from musesynth.errors import MusesynthError
from musesynth.models import ModelConfig, build_model
from musesynth.tokenize import Encoding, encoding_from_vocab

FORMAT = "musesynth-checkpoint-v1"


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict[str, Any],
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None) -> Path:
    state: dict[str, Any] = {
        "format": FORMAT,
        "model": model.state_dict(),
        "meta": json.dumps(meta),
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


def load_raw(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    p = resolve_path(path)
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise MusesynthError(f"cannot read checkpoint {p}: {str(exc).splitlines()[0]}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise MusesynthError(f"{p} is not a musesynth checkpoint")
    state["meta"] = json.loads(state["meta"])
    state["path"] = str(p)
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


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Encoding, dict[str, Any]]:
    """Model (eval mode) + the encoding it was trained with + metadata, from a run folder or file."""
    state = load_raw(path, map_location="cpu")
    meta = state["meta"]
    cfg = ModelConfig.from_dict(meta["model_config"])
    model = build_model(cfg)
    model.load_state_dict(state["model"])
    enc = encoding_from_vocab(meta["vocab"])
    meta["path"] = state["path"]
    return model.to(device).eval(), enc, meta


def check_compatible(meta: dict[str, Any], family: str, vocab_fingerprint: str, vocab_desc: str) -> None:
    """Resuming needs the same model family and vocabulary; say which differs."""
    ck_family = meta["model_config"]["family"]
    if ck_family != family:
        raise MusesynthError(f"checkpoint is a {ck_family} model, but -m {family} was asked")
    ck_fp = meta["vocab_fingerprint"]
    if ck_fp != vocab_fingerprint:
        v = meta["vocab"]
        raise MusesynthError(
            f"checkpoint vocabulary ({v['encoding']}, {len(v['tokens'])} tokens, {ck_fp}) differs from the "
            f"dataset's ({vocab_desc}, {vocab_fingerprint})"
        )
