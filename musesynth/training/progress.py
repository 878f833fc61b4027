"""What a run has done so far (saved in every checkpoint) and what it reports when it ends."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from musesynth.artifacts.progress import Progress

__all__ = ["Progress", "TrainSummary"]


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
