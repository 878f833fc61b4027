"""Linear warm-up then cosine decay to ``min_ratio`` of the peak learning rate.

The factor is a callable object (not a closure) so LambdaLR saves its ``total`` in the checkpoint: a run
under a time budget re-sizes ``total`` from its measured speed, and a resumed run keeps that size.
"""

from __future__ import annotations

import math

import torch


class WarmupCosine:
    def __init__(self, warmup: int, total: int, min_ratio: float) -> None:
        self.warmup, self.total, self.min_ratio = warmup, max(1, total), min_ratio

    def __call__(self, step: int) -> float:
        warmup = max(0, min(self.warmup, self.total // 2))
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, self.total - warmup))
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup: int, total: int, min_ratio: float):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(warmup, total, min_ratio))


def resize(scheduler: torch.optim.lr_scheduler.LambdaLR, total: int) -> None:
    """Change the schedule's length mid-run (time budgets); the next step uses it."""
    for f in scheduler.lr_lambdas:
        if isinstance(f, WarmupCosine):
            f.total = max(1, int(total))
