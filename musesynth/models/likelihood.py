"""Exact per-token likelihood of a model over a whole split, with fixed non-overlapping windows.

Training validates with it and `musesynth evaluate` reports it, so both measure the same number."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from musesynth.data.loader import WindowDataset


@torch.no_grad()
def next_token_logprobs(model: nn.Module, seq: np.ndarray) -> np.ndarray:
    """``log p(seq[t + 1] | seq[: t + 1])`` for every t, in one pass: the scores of one sequence's own tokens
    (a harmonisation's melody notes, a reference's lower voices)."""
    x = torch.as_tensor(np.asarray(seq, np.int64)[None], device=next(model.parameters()).device)
    logits, _ = model(x[:, :-1])
    return torch.log_softmax(logits.float(), -1)[0].gather(1, x[0, 1:, None])[:, 0].cpu().numpy()


@dataclass
class LossStats:
    nll_sum: float = 0.0
    tokens: int = 0
    correct: int = 0

    @property
    def nll(self) -> float:
        return self.nll_sum / max(1, self.tokens)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll)

    @property
    def accuracy(self) -> float:
        return self.correct / max(1, self.tokens)


@torch.no_grad()
def split_loss(
    model: nn.Module, tokens: np.ndarray, seq_len: int, batch_size: int, device: torch.device,
    pad_id: int, rank: int = 0, world: int = 1, autocast_dtype: torch.dtype | None = None,
) -> LossStats:
    """Sum of NLL (nats), count and correct top-1 predictions over every token of ``tokens``.

    Windows start every ``seq_len`` tokens and the model starts each from an empty state, so a
    token's context is the tokens before it in its window (0..seq_len-1 tokens). Under DDP each rank
    takes every ``world``-th window; sum the fields across ranks for the total.
    """
    was_training = model.training
    model.eval()
    ds = WindowDataset(tokens, seq_len, train=False, pad_id=pad_id)
    idx = list(range(rank, len(ds), world))
    loader = DataLoader(torch.utils.data.Subset(ds, idx), batch_size=batch_size, shuffle=False)
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # nll, tokens, correct: read once at the end
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits, _ = model(x)
        logits = logits.float()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=pad_id,
                               reduction="sum")
        mask = y != pad_id
        sums += torch.stack([loss.double(), mask.sum().double(), ((logits.argmax(-1) == y) & mask).sum().double()])
    nll, count, correct = sums.tolist()
    stats = LossStats(nll, int(count), int(correct))
    model.train(was_training)
    return stats
