"""Model hyper-parameters, shared by the three families (defaults: the reference design)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from musesynth.errors import MusesynthError

FAMILIES = ("gru", "lstm", "transformer")
# Per-family sizes chosen so the three defaults have similar parameter counts (~3-4M).
FAMILY_DEFAULTS: dict[str, dict[str, int]] = {
    "gru": {"num_layers": 2, "hidden_dim": 512},
    "lstm": {"num_layers": 2, "hidden_dim": 512},
    "transformer": {"num_layers": 4, "hidden_dim": 1024},  # hidden_dim = feed-forward width
}
# What a saved config may say (far above any model musesynth trains), so a damaged one is refused before
# it allocates: the inclusive range of each integer field, and a bound on the parameter count.
LIMITS: dict[str, tuple[int, int]] = {"vocab_size": (4, 1 << 20), "embed_dim": (1, 1 << 14),
                                      "hidden_dim": (1, 1 << 16), "num_layers": (1, 256), "num_heads": (1, 1024),
                                      "seq_len": (1, 1 << 20)}
MAX_PARAMS = 2_000_000_000


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
        """A saved config, checked (``validate``): a bad value is a one-line ``MusesynthError``."""
        if not isinstance(d, dict):
            raise MusesynthError(f"model config is a {type(d).__name__}, not an object")
        names = {f.name for f in fields(cls)}
        d = {("seq_len" if k == "context" else k): v for k, v in d.items()}  # checkpoints before 0.2
        if "family" not in d or "vocab_size" not in d:
            raise MusesynthError("model config has no family or vocab_size")
        cfg = cls(**{k: v for k, v in d.items() if k in names})
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Every value a model can be built from: known family, sizes in range, heads that divide the width."""
        if self.family not in FAMILIES:
            raise MusesynthError(f"model config: unknown family {self.family!r} (known: {', '.join(FAMILIES)})")
        for name, (lo, hi) in LIMITS.items():
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise MusesynthError(f"model config: {name} is {v!r}, not a whole number in {lo}..{hi}")
        if not isinstance(self.dropout, (int, float)) or isinstance(self.dropout, bool) or not 0 <= self.dropout < 1:
            raise MusesynthError(f"model config: dropout is {self.dropout!r}, not a number in [0, 1)")
        if not isinstance(self.tie_weights, bool):
            raise MusesynthError(f"model config: tie_weights is {self.tie_weights!r}, not true/false")
        if self.family == "transformer" and (self.embed_dim % self.num_heads or (self.embed_dim // self.num_heads) % 2):
            raise MusesynthError(f"model config: embed_dim {self.embed_dim} does not split into {self.num_heads} heads "
                                 f"of an even width")
        e, h, n = self.embed_dim, self.hidden_dim, self.num_layers
        per_layer = 4 * e * e + 2 * e * h if self.family == "transformer" else 4 * h * (e + 2 * h)
        if self.vocab_size * (e + h) + n * per_layer > MAX_PARAMS:
            raise MusesynthError(f"model config: {self.vocab_size} tokens x {e}/{h} wide x {n} layers is over "
                                 f"{MAX_PARAMS:,} parameters (damaged?)")
