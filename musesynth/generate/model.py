"""A trained network with the encoding it reads and writes: what every generation front end loads."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from musesynth.artifacts.load import load_model as load_checkpoint
from musesynth.artifacts.meta import CheckpointMeta
from musesynth.artifacts.shipped import DEFAULT_MODEL, PARTS_MODEL, is_shipped
from musesynth.device import pick_device
from musesynth.errors import MusesynthError
from musesynth.tokenize import Encoding


@dataclass
class Model:
    """A trained network (eval mode), its encoding and its checkpoint's metadata."""

    net: torch.nn.Module
    encoding: Encoding
    meta: CheckpointMeta

    @property
    def seq_len(self) -> int:
        return self.meta.model_config.seq_len

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @classmethod
    def load(cls, path: str | Path | None = None, device: str | torch.device = "auto",
             note: Callable[[str], None] | None = None) -> Model:
        """A run folder (its best.pt; ``note`` hears when only last.pt is there), checkpoint file or shipped
        model folder; None: the model shipped in the package."""
        where = checkpoint_or_shipped(None if path is None else str(path))
        why = unvalidated(where)
        if why is not None:
            (note or _warn)(why)
        dev = pick_device(device) if isinstance(device, str) else device
        return cls(*load_checkpoint(where, dev))


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def checkpoint_or_shipped(checkpoint: str | None, parts: bool = False) -> str:
    """``checkpoint``, else the shipped model: the parts model (``parts``: harmonize, infill) or the meter one."""
    if checkpoint is not None:
        return checkpoint
    where = PARTS_MODEL if parts else DEFAULT_MODEL
    if not is_shipped(where):
        raise MusesynthError(f"no -c given and the shipped model is missing from {where} (run `make "
                             f"pretrained`, or pass -c RUN_FOLDER)")
    return str(where)


def unvalidated(path: str) -> str | None:
    """The note for a run folder that has a last.pt but no best.pt (a run stopped before its first validation):
    its weights are used, but they were never checked against held-out music."""
    p = Path(path)
    if p.is_dir() and not is_shipped(p) and not (p / "best.pt").is_file() and (p / "last.pt").is_file():
        return f"note: {p} has no best.pt (the run stopped before its first end-of-epoch validation); using its last.pt"
    return None
