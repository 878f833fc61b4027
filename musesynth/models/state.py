"""A model's generation state, row by row: what resampling a batch of samples (``generate.particles``) needs."""

from __future__ import annotations

from typing import Any

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
