"""Self-describing checkpoints: weights, optimizer, scheduler, RNG states, progress, config and vocabulary
in one file, written atomically and loaded with ``torch.load(weights_only=True)``: loading never runs
code. Everything that is not a tensor travels as a JSON string; the metadata records the weights' SHA-256,
checked on every load."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from musesynth.artifacts.meta import CheckpointMeta
from musesynth.artifacts.weights import check_digest, load_weights, tree_digest, weights_digest
from musesynth.atomic import atomic_write
from musesynth.errors import MusesynthError
from musesynth.models import build_model
from musesynth.tokenize import Encoding, encoding_from_vocab

FORMAT = "musesynth-checkpoint-v1"


def save_checkpoint(path: str | Path, model: nn.Module, meta: CheckpointMeta,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
                    scaler: torch.amp.GradScaler | None = None) -> Path:
    """Everything ``--resume`` needs to continue exactly: weights (with their SHA-256 in the metadata),
    optimizer, schedule, the fp16 loss scale and every RNG (CPU, Python, NumPy and each CUDA device's)."""
    weights = model.state_dict()
    state: dict[str, Any] = {
        "format": FORMAT,
        "model": weights,
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
    state["meta"] = meta.to_json(weights_sha256=weights_digest(weights), state_sha256=resume_digest(state))
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def _np_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.integer):
        return int(o)
    raise TypeError(type(o))


def resume_digest(state: dict[str, Any]) -> str:
    """SHA-256 of everything in a checkpoint but its weights and metadata."""
    return tree_digest({k: v for k, v in state.items() if k not in ("model", "meta")})


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


def _why_unreadable(p: Path, exc: BaseException) -> str:
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


def _ends_cleanly(p: Path) -> bool:
    """A zip checkpoint ends with its end-of-directory record (torch writes no comment): bytes after it are
    not ours (an appended or damaged copy)."""
    try:
        with open(p, "rb") as f:
            if f.read(2) != b"PK":
                return True  # the legacy bare-pickle format has no such record
            f.seek(-22, 2)
            return f.read(4) == b"PK\x05\x06"
    except OSError:
        return False


def load_raw(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint's dict with ``meta`` parsed into a checked ``CheckpointMeta``, the weights and the rest
    checked against their SHA-256s; any damage is a one-line error."""
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
    if not _ends_cleanly(p):
        raise MusesynthError(f"damaged checkpoint {p}: unexpected bytes after the end of the file (a damaged copy?)")
    meta = CheckpointMeta.from_json(state["meta"], str(p))
    check_digest(state["model"], meta.weights_sha256, str(p))
    if meta.state_sha256 and resume_digest(state) != meta.state_sha256:  # a damaged file is refused whole
        raise MusesynthError(f"damaged checkpoint {p}: its optimizer, schedule or RNG state does not match its "
                             f"SHA-256 (changed or corrupted since it was saved); use another copy")
    state["meta"] = meta
    return state


def build_checked(weights: dict[str, Any], meta: CheckpointMeta) -> tuple[nn.Module, Encoding]:
    """The model its config describes with ``weights`` loaded (all checked), and its encoding."""
    try:
        enc = encoding_from_vocab(meta.vocab)
    except MusesynthError as exc:
        raise MusesynthError(f"damaged checkpoint {meta.path}: {exc}") from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, ZeroDivisionError, OverflowError) as exc:
        raise MusesynthError(f"damaged checkpoint {meta.path}: bad vocabulary parameters ({exc})") from None
    meta.check_encoding(enc)
    try:
        model = build_model(meta.model_config)
    except (TypeError, ValueError, RuntimeError, AssertionError) as exc:
        raise MusesynthError(f"damaged checkpoint {meta.path}: bad model config ({exc})") from None
    load_weights(model, weights, meta.path)
    return model, enc
