"""Model hyper-parameters, shared by the three families (defaults: the reference design)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

FAMILIES = ("gru", "lstm", "transformer")
# Per-family sizes chosen so the three defaults have similar parameter counts (~3-4M).
FAMILY_DEFAULTS: dict[str, dict[str, int]] = {
    "gru": {"num_layers": 2, "hidden_dim": 512},
    "lstm": {"num_layers": 2, "hidden_dim": 512},
    "transformer": {"num_layers": 4, "hidden_dim": 1024},  # hidden_dim = feed-forward width
}


@dataclass
class ModelConfig:
    family: str
    vocab_size: int
    embed_dim: int = 256
    hidden_dim: int | None = None  # RNN state size / Transformer feed-forward width
    num_layers: int | None = None
    num_heads: int = 4
    dropout: float = 0.1
    tie_weights: bool = True
    seq_len: int = 100  # the training window: tokens a model conditions on when generating

    def __post_init__(self) -> None:
        d = FAMILY_DEFAULTS.get(self.family, {})
        if self.hidden_dim is None:
            self.hidden_dim = d.get("hidden_dim", 512)
        if self.num_layers is None:
            self.num_layers = d.get("num_layers", 2)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        names = {f.name for f in fields(cls)}
        d = {("seq_len" if k == "context" else k): v for k, v in d.items()}  # checkpoints before 0.2
        return cls(**{k: v for k, v in d.items() if k in names})
