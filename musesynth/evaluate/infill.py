"""Infill NLL against continuation NLL for the same tokens: how much seeing the future helps.

For spans of ``span_bars`` bars at 1/4, 1/2 and 3/4 of each piece (pieces with room for them), the
span's tokens are scored twice by the same model:

- **continuation**: ``prefix middle`` - the middle after the prefix, as when continuing a primer;
- **infill**: ``HOLE suffix FILL prefix middle FILL_END`` - the middle after the suffix *and* the prefix.

The prefix is the same tail of the piece in both, and prefix + suffix are cut to fit the model's context
exactly as `musesynth infill` cuts them, so the difference is only what the suffix tells the model.
``FILL_END`` (where the span stops) is scored separately and left out of the comparison.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from musesynth.generate.infill import find_span, infill_prompt, infilling
from musesynth.models.likelihood import next_token_logprobs
from musesynth.tokenize import Encoding

POSITIONS = (0.25, 0.5, 0.75)


def _nll(model: nn.Module, seq: np.ndarray, first: int, count: int) -> np.ndarray:
    """NLL (nats) of ``seq[first : first + count]``, each given the tokens before it."""
    return -next_token_logprobs(model, seq)[first - 1 : first - 1 + count]


@torch.no_grad()
def infill_vs_continuation(model: nn.Module, enc: Encoding, pieces: list[np.ndarray], seq_len: int,
                           span_bars: int = 4) -> dict[str, Any]:
    inf = infilling(enc)
    was_training = model.training
    model.eval()
    infill, cont, end = [], [], []
    for ids in pieces:
        ids = np.asarray(ids, np.int64)
        n_bars = int((ids == inf.bar_id).sum())
        if n_bars < span_bars + 2:
            continue
        for first in sorted({max(1, round(f * (n_bars - span_bars))) for f in POSITIONS}):
            span = find_span(enc, ids, first, first + span_bars)
            middle = ids[span.s : span.m]
            if middle.size + 8 > seq_len // 2:
                continue
            prompt = infill_prompt(enc, span, seq_len, middle.size + 1)
            prefix = prompt[int(np.flatnonzero(prompt == inf.fill_id)[0]) + 1 :]
            if prefix.size == 0:
                continue
            fim = np.r_[prompt, middle, inf.fill_end_id]
            a = _nll(model, fim, prompt.size, middle.size + 1)
            infill.append(a[:-1])
            end.append(a[-1])
            cont.append(_nll(model, np.r_[prefix, middle], prefix.size, middle.size))
    model.train(was_training)
    tokens = int(sum(x.size for x in infill))
    low, high = gain_interval(infill, cont)
    return {
        "span_bars": span_bars, "spans": len(infill), "tokens": tokens,
        "infill_nll": float(np.concatenate(infill).mean()) if tokens else float("nan"),
        "continuation_nll": float(np.concatenate(cont).mean()) if tokens else float("nan"),
        "gain_95": [low, high],
        "fill_end_nll": float(np.mean(end)) if end else float("nan"),
    }


def gain_interval(infill: list[np.ndarray], cont: list[np.ndarray], draws: int = 2000,
                  seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval (spans resampled) of the per-token gain, continuation NLL minus infill NLL:
    an interval above 0 says the bars after the span help, beyond the spread between spans."""
    if not infill:
        return float("nan"), float("nan")
    gain = np.array([float((c - i).sum()) for i, c in zip(infill, cont)])
    size = np.array([i.size for i in infill], float)
    pick = np.random.default_rng(seed).integers(0, gain.size, (draws, gain.size))
    means = gain[pick].sum(1) / size[pick].sum(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def format_infill(r: dict[str, Any]) -> str:
    low, high = r.get("gain_95", (float("nan"), float("nan")))
    return (f"infilling ({r['spans']} spans of {r['span_bars']} bars, {r['tokens']:,} tokens): NLL "
            f"{r['infill_nll']:.4f} seeing the bars after the span, {r['continuation_nll']:.4f} continuing "
            f"(same tokens, same prefix; gain {r['continuation_nll'] - r['infill_nll']:+.4f}, 95% interval "
            f"{low:+.4f} to {high:+.4f} over spans); FILL_END {r['fill_end_nll']:.4f}")
