"""Unigram and bigram baselines fitted on the train split, scored on the same targets as a model
(every token of the split but its first), so a model's NLL has a reference."""

from __future__ import annotations

import numpy as np

from musesynth.models.likelihood import LossStats


def unigram(train: np.ndarray, vocab_size: int, alpha: float = 1.0) -> np.ndarray:
    counts = np.bincount(np.asarray(train, np.int64), minlength=vocab_size).astype(np.float64)
    return (counts + alpha) / (counts.sum() + alpha * vocab_size)


def bigram(train: np.ndarray, vocab_size: int, beta: float = 1.0) -> np.ndarray:
    """P(b | a) with a Dirichlet prior towards the unigram: (c(a,b) + beta * p(b)) / (c(a) + beta)."""
    t = np.asarray(train, np.int64)
    counts = np.zeros((vocab_size, vocab_size))
    np.add.at(counts, (t[:-1], t[1:]), 1.0)
    p_uni = unigram(t, vocab_size)
    return (counts + beta * p_uni[None, :]) / (counts.sum(1, keepdims=True) + beta)


def score_unigram(p: np.ndarray, tokens: np.ndarray) -> LossStats:
    y = np.asarray(tokens, np.int64)[1:]
    return LossStats(float(-np.log(p[y]).sum()), int(y.size), int((y == p.argmax()).sum()))


def score_bigram(p: np.ndarray, tokens: np.ndarray) -> LossStats:
    t = np.asarray(tokens, np.int64)
    x, y = t[:-1], t[1:]
    return LossStats(float(-np.log(p[x, y]).sum()), int(y.size), int((p.argmax(1)[x] == y).sum()))
