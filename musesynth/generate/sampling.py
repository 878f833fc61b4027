"""Sampling from a model, one token at a time with its cache (RNN hidden state / Transformer KV cache).

Each step: logits / temperature, grammar mask (tokens that cannot follow the previous one are
removed, so every sequence decodes), top-k, nucleus top-p, then a categorical draw from a seeded
generator (same seed, same piece). Samples are generated as one batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class Sampling:
    temperature: float = 1.0
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1: off


def filter_logits(logits: torch.Tensor, s: Sampling, allowed: torch.Tensor | None = None) -> torch.Tensor:
    """(B, V) logits -> logits with disallowed / filtered tokens at -inf."""
    logits = logits.float() / max(s.temperature, 1e-6)
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    if s.top_k and s.top_k < logits.shape[-1]:
        kth = torch.topk(logits, s.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if s.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(-1)
        # drop a token when the mass before it already reaches top_p (the top token always stays)
        drop = probs.cumsum(-1) - probs >= s.top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


@torch.no_grad()
def generate(
    model: nn.Module,
    primer: list[int] | np.ndarray,
    num_tokens: int,
    num_samples: int = 1,
    sampling: Sampling | None = None,
    grammar: np.ndarray | None = None,
    eos_id: int | None = None,
    seed: int = 0,
    use_cache: bool = True,
    context: int | None = None,
) -> list[np.ndarray]:
    """Continue ``primer`` by up to ``num_tokens`` tokens per sample (stopping a sample at EOS).

    ``use_cache=False`` is the naive reference: every step re-runs the model over the whole prefix
    (the last ``context`` tokens for a Transformer), as a model without a cache would.
    """
    sampling = sampling or Sampling()
    device = next(model.parameters()).device
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    g = torch.as_tensor(grammar, device=device) if grammar is not None else None
    seq = torch.as_tensor(np.asarray(primer, np.int64), device=device).unsqueeze(0).repeat(num_samples, 1)
    finished = torch.zeros(num_samples, dtype=torch.bool, device=device)
    is_transformer = hasattr(model, "blocks")
    out = [seq]
    logits, state = model(seq)
    last = logits[:, -1]
    prev = seq[:, -1]
    for _ in range(num_tokens):
        allowed = g[prev] if g is not None else None
        probs = filter_logits(last, sampling, allowed).softmax(-1)
        tok = torch.multinomial(probs, 1, generator=gen).squeeze(1)
        if eos_id is not None:
            tok = torch.where(finished, torch.full_like(tok, eos_id), tok)
            finished |= tok == eos_id
        out.append(tok[:, None])
        prev = tok
        if bool(finished.all()):
            break
        if use_cache:
            logits, state = model(tok[:, None], state)
        else:
            full = torch.cat(out, 1)
            if is_transformer and context:
                full = full[:, -context:]
            logits, _ = model(full)
        last = logits[:, -1]
    result = torch.cat(out, 1).cpu().numpy()
    seqs = []
    for row in result:
        if eos_id is not None:
            stop = np.flatnonzero(row[len(primer):] == eos_id)
            if stop.size:
                row = row[: len(primer) + stop[0] + 1]
        seqs.append(row)
    return seqs
