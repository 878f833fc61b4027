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


def run_left(p: Progress, total_steps: int, max_time: float) -> str:
    """The whole run's share done and time left, e.g. "38% of the run, about 4 min left": a progress bar per
    epoch only tells when its epoch ends. The run stops at its first budget (scheduled steps or --max-time),
    so the larger share and the sooner end count; early stopping may still end it sooner."""
    shares, lefts = [], []
    if total_steps:
        shares.append(p.step / total_steps)
        if p.step:
            lefts.append(p.elapsed / p.step * max(total_steps - p.step, 0))
    if max_time:
        shares.append(p.elapsed / max_time)
        lefts.append(max(max_time - p.elapsed, 0.0))
    share = min(max(shares, default=0.0), 1.0)
    if not lefts:
        return f"{share:.0%} of the run"
    left = min(lefts)
    return f"{share:.0%} of the run, about {_duration(left)} left"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
