"""Device selection, shared by training, generation and evaluation (so none imports another's)."""

from __future__ import annotations

import torch

from musesynth.errors import MusesynthError

DEVICE_HELP = "auto (CUDA when present, else CPU), cpu, cuda or cuda:N"


def pick_device(name: str = "auto") -> torch.device:
    """The device a user asked for, checked up front: a bad name or a missing GPU is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise MusesynthError(f"unknown device '{name}' (use {DEVICE_HELP})") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MusesynthError(f"--device {name} asked, but CUDA is not available on this machine")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise MusesynthError(f"--device {name}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
    elif device.type != "cpu":
        raise MusesynthError(f"unsupported device '{name}' (use {DEVICE_HELP})")
    return device
