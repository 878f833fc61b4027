"""What a run has done so far: saved in every checkpoint, and what ``--resume`` continues from."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

_COUNTS = ("step", "epoch", "batch_in_epoch", "tokens", "bad_epochs")


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
        """Read and check a saved progress: a wrong type or a negative count is a ``ValueError`` naming it."""
        if not isinstance(d, dict):
            raise ValueError(f"progress is a {type(d).__name__}, not an object")
        names = {f.name for f in fields(cls)}
        p = cls(**{k: v for k, v in d.items() if k in names})
        if p.best_val is None:
            p.best_val = math.inf
        for name in _COUNTS:
            v = getattr(p, name)
            if not _is_int(v) or not 0 <= v <= 2**53:  # 1e30 steps: --resume took the run as long finished
                raise ValueError(f"progress {name} is {str(v)[:40]}, not a count")
        if not _is_number(p.best_val) or math.isnan(p.best_val) or not _is_number(p.elapsed) or p.elapsed < 0:
            raise ValueError(f"progress best_val/elapsed are {p.best_val!r}/{p.elapsed!r}, not numbers")
        rows = p.val_history
        if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == 3 and all(map(_is_number, r))
                                                 for r in rows):
            raise ValueError("progress val_history is not a list of [step, tokens, loss] rows")
        return p


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
