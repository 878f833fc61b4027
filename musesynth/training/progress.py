"""What a run has done so far (saved in every checkpoint) and what it reports when it ends."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class Progress:
    """Everything besides weights, optimizer and RNG that ``--resume`` needs to continue exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    tokens: int = 0
    best_val: float = math.inf
    bad_epochs: int = 0
    elapsed: float = 0.0
    val_history: list[list[float]] = field(default_factory=list)  # [step, tokens, val loss]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["best_val"] = None if math.isinf(self.best_val) else self.best_val  # JSON has no Infinity
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Progress:
        names = {f.name for f in fields(cls)}
        p = cls(**{k: v for k, v in d.items() if k in names})
        if p.best_val is None:
            p.best_val = math.inf
        return p


@dataclass
class TrainSummary:
    """The result of ``train()``, also written as summary.json in the run folder."""

    run_dir: str
    best_val_loss: float | None
    last_val_loss: float | None
    steps: int
    tokens: int
    elapsed_s: float
    stop_reason: str
    num_params: int
    tokens_per_s: float
    val_history: list[list[float]]
    dataset_dir: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainSummary:
        return cls(**{k: d[k] for k in (f.name for f in fields(cls))})
