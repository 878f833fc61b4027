"""The Python API's ``musesynth.train``: here, beside the loop, so the inference API (``musesynth.api``) never
imports training (the layout test checks it)."""

from __future__ import annotations

from typing import Any

from musesynth.training.config import TrainConfig
from musesynth.training.loop import train as _train
from musesynth.training.progress import TrainSummary


def train(**options: Any) -> TrainSummary:
    """Train with any `musesynth train` option as a keyword (``dataset=..., model="lstm", max_time=600``); the
    run's ``TrainSummary`` (``.run_dir``, ``.best_val_loss``)."""
    return _train(TrainConfig.from_dict(options))
