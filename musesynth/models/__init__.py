"""Three model families behind one interface: ``forward(tokens, state=None) -> (logits, state)``."""

from __future__ import annotations

from torch import nn

from musesynth.errors import MusesynthError
from musesynth.models.config import FAMILIES, ModelConfig
from musesynth.models.rnn import RNNModel
from musesynth.models.transformer import TransformerModel


def build_model(cfg: ModelConfig) -> nn.Module:
    if cfg.family not in FAMILIES:
        raise MusesynthError(f"unknown model '{cfg.family}' (choose from: {', '.join(FAMILIES)})")
    return TransformerModel(cfg) if cfg.family == "transformer" else RNNModel(cfg)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


__all__ = ["FAMILIES", "ModelConfig", "build_model", "count_params"]
