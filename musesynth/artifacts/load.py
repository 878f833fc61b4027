"""One ``load_model`` for every kind of saved model: a run folder, a checkpoint file or a shipped folder."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from musesynth.artifacts.checkpoint import build_checked, load_raw
from musesynth.artifacts.meta import CheckpointMeta
from musesynth.artifacts.shipped import is_shipped, load_shipped
from musesynth.tokenize import Encoding


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Encoding, CheckpointMeta]:
    """Model (eval mode) + the encoding it was trained with + metadata, every part checked (digest, config,
    dtypes, shapes, finiteness): a damaged file is a one-line ``MusesynthError``."""
    if is_shipped(path):
        weights, meta = load_shipped(path)
    else:
        state = load_raw(path, map_location="cpu")
        weights, meta = state["model"], state["meta"]
    model, enc = build_checked(weights, meta)
    return model.to(device).eval(), enc, meta
