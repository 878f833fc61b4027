"""Weights that verify themselves: a SHA-256 over the state dict in a canonical order (stored in the
metadata when saved, compared when loaded), and checks that hold even for files saved before the hash:
every entry a floating tensor of the shape the model's config builds, finite and of a sane magnitude."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from musesynth.errors import MusesynthError

FLOATS = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
# Trained weights stay far below this (weight decay, layer norm); a flipped exponent bit or a 3e38 is not
# a weight, and fp16 (the shipped form) overflows at 65504.
MAX_ABS = 1e4


def weights_digest(weights: Mapping[str, Any]) -> str:
    """SHA-256 over (name, dtype, shape, bytes) of every tensor, sorted by name: the same weights give the
    same digest wherever they were saved, whatever the dict's order."""
    h = hashlib.sha256()
    for name in sorted(weights, key=str):  # key=str: a damaged file may hold non-string names
        t = weights[name]
        if not torch.is_tensor(t):
            h.update(f"{name}:not-a-tensor:{type(t).__name__}\n".encode())
            continue
        h.update(f"{name}:{str(t.dtype)}:{tuple(t.shape)}\n".encode())
        try:
            t = t.detach().cpu().contiguous().reshape(-1)
            h.update((t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes())
        except (RuntimeError, TypeError):  # a sparse, quantized or meta tensor: never one we saved
            h.update(b"unreadable\n")
    return h.hexdigest()


def tree_digest(obj: Any) -> str:
    """SHA-256 of nested dicts/lists of tensors and plain values (the optimizer, schedule and RNG states),
    keys in sorted order: damage anywhere in what ``--resume`` continues from changes it."""
    h = hashlib.sha256()

    def walk(o: Any, depth: int) -> None:
        if depth > 32:
            h.update(b"too-deep")
        elif isinstance(o, Mapping):
            h.update(b"{")
            for k in sorted(o, key=repr):
                h.update(repr(k).encode() + b":")
                walk(o[k], depth + 1)
            h.update(b"}")
        elif isinstance(o, (list, tuple)):
            h.update(b"[")
            for x in o:
                walk(x, depth + 1)
            h.update(b"]")
        elif torch.is_tensor(o):
            h.update(weights_digest({"t": o}).encode())
        else:
            h.update(f"{type(o).__name__}:{o!r};".encode())

    walk(obj, 0)
    return h.hexdigest()


def check_digest(weights: Mapping[str, Any], expected: str, path: str) -> None:
    """Compare with the digest recorded at save time ("" for files saved before musesynth stored one)."""
    if expected and weights_digest(weights) != expected:
        raise MusesynthError(f"damaged checkpoint {path}: the weights do not match their SHA-256 (changed or "
                             f"corrupted since they were saved); use another copy or an earlier checkpoint")


def check_weights(model: nn.Module, weights: Any, path: str) -> None:
    """The weights fit ``model`` exactly (names, shapes) and are floating, finite and of sane magnitude."""
    if not isinstance(weights, Mapping):
        raise MusesynthError(f"damaged checkpoint {path}: the weights are not a table of tensors")
    expected = model.state_dict()
    missing = [n for n in expected if n not in weights]
    extra = [n for n in weights if n not in expected]
    if missing or extra:
        what = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        raise MusesynthError(f"checkpoint {path} does not fit its model config: {what} "
                             f"({len(missing)} missing, {len(extra)} unexpected)")
    for name, ref in expected.items():
        t = weights[name]
        if not torch.is_tensor(t):
            raise MusesynthError(f"damaged checkpoint {path}: {name} is a {type(t).__name__}, not a tensor")
        if t.dtype not in FLOATS:
            raise MusesynthError(f"damaged checkpoint {path}: {name} is {str(t.dtype).removeprefix('torch.')}, "
                                 f"not floating point")
        if t.layout is not torch.strided or t.is_quantized or t.is_meta or t.is_nested:
            # musesynth saves dense tensors only; a sparse one crashed the checks below with a traceback
            raise MusesynthError(f"damaged checkpoint {path}: {name} is not a dense tensor "
                                 f"({str(t.layout).removeprefix('torch.')})")
        if t.shape != ref.shape:
            raise MusesynthError(f"checkpoint {path} does not fit its model config: {name} is "
                                 f"{tuple(t.shape)}, the config builds {tuple(ref.shape)}")
    bad = _first_bad(weights, expected)
    if bad:
        raise MusesynthError(f"checkpoint {path} has {bad}; use an earlier checkpoint")


def _first_bad(weights: Mapping[str, torch.Tensor], names: Mapping[str, Any]) -> str:
    for name in names:
        t = weights[name]
        if not t.numel():
            continue
        if not bool(t.isfinite().all()):
            return f"NaN/inf weights ({name})"
        peak = float(t.detach().abs().max())
        if peak > MAX_ABS:
            return f"weights of magnitude {peak:.3g} in {name} (over {MAX_ABS:g}: damaged)"
    return ""


def load_weights(model: nn.Module, weights: Any, path: str) -> None:
    """Check then load a state dict into ``model``; every fault is a one-line error naming ``path``."""
    check_weights(model, weights, path)
    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise MusesynthError(f"checkpoint {path} does not fit its model: {first[:200]}") from None
