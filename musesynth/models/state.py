"""A model's generation state, row by row: what resampling a batch of samples (``generate.particles``) needs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from musesynth.models.transformer import KVCache


def select_state(state: Any, idx: torch.Tensor) -> Any:
    """A model's generation state with its batch rows taken in the order ``idx`` (rows may repeat): an RNN's
    hidden tensors (layers, B, H), a Transformer's ring cache (in place: a captured CUDA graph keeps its buffers)
    or the whole-sequence cache of its first call."""
    if state is None:
        return None
    if isinstance(state, KVCache):
        state.kv.copy_(state.kv.index_select(1, idx))
        return state
    if isinstance(state, dict):
        return {**state, "kv": [tuple(t.index_select(0, idx) for t in kv) for kv in state["kv"]]}
    if isinstance(state, (tuple, list)):
        return type(state)(select_state(s, idx) for s in state)
    return state.index_select(1, idx)


def take_rows(obj: Any, names: Iterable[str], idx: np.ndarray | torch.Tensor) -> None:
    """Resampling for a decoding helper (a constraint, the bar copier): its per-sample attributes ``names``, each a
    tensor or array with one row per sample, taken in the row order ``idx`` (rows may repeat)."""
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, torch.Tensor):
            setattr(obj, name, value[torch.as_tensor(idx, device=value.device)])
        else:
            setattr(obj, name, np.asarray(value)[np.asarray(idx)].copy())


class RowState:
    """A decoding helper (a constraint, the bar copier) whose per-sample state is the attributes ``ROWS`` names, one
    row per sample: SMC's resampling (``generate.particles``) takes them in a new row order with ``reindex``."""

    ROWS: tuple[str, ...] = ()

    def reindex(self, idx: np.ndarray | torch.Tensor) -> None:
        """Take the samples in the row order ``idx`` (rows may repeat)."""
        take_rows(self, self.ROWS, idx)
