"""Decoder-only Transformer with rotary position embeddings (relative positions, so it runs past its
training length) and PyTorch's fused scaled_dot_product_attention.

Generation keeps a KV cache: ``state = {"pos": next position, "kv": [(k, v) per layer]}``. Past
``seq_len`` tokens the cache becomes a sliding window: each layer keeps the keys/values of the last
``seq_len`` tokens, so a new token attends to at most ``seq_len`` predecessors and costs O(seq_len).

Dropout acts on the embeddings, the residual branches and the MLP, not on the attention weights: without
a dropout mask SDPA runs its fused kernels (measured 1.4x faster training on CPU at 512 tokens).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from musesynth.models.config import ModelConfig


def rotary(x: torch.Tensor, pos: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotate pairs of channels of ``x`` (B, H, T, D) by angles proportional to absolute ``pos`` (T,)."""
    d = x.shape[-1]
    inv_freq = base ** (-torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d)
    ang = pos.to(torch.float32)[:, None] * inv_freq[None, :]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        assert cfg.embed_dim % cfg.num_heads == 0, "embed_dim must be divisible by num_heads"
        self.h = cfg.num_heads
        self.qkv = nn.Linear(cfg.embed_dim, 3 * cfg.embed_dim)
        self.out = nn.Linear(cfg.embed_dim, cfg.embed_dim)
        self.window = cfg.seq_len

    def forward(self, x: torch.Tensor, pos: torch.Tensor, cache: tuple | None) -> tuple[torch.Tensor, tuple]:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.h, c // self.h).permute(2, 0, 3, 1, 4)
        q, k = rotary(q, pos), rotary(k, pos)
        past = 0
        if cache is not None:
            past = cache[0].shape[2]
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1)
        elif t == 1:
            y = F.scaled_dot_product_attention(q, k, v)
        else:  # a chunk after a cache: query i sees all past keys and new keys up to itself
            mask = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).reshape(b, t, c)
        return self.out(y), (k[:, :, -self.window :], v[:, :, -self.window :])


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.embed_dim)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.embed_dim)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.embed_dim, cfg.hidden_dim), nn.GELU(), nn.Linear(cfg.hidden_dim, cfg.embed_dim),
            nn.Dropout(cfg.dropout),
        )
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, cache: tuple | None) -> tuple[torch.Tensor, tuple]:
        a, cache = self.attn(self.ln1(x), pos, cache)
        x = x + self.drop(a)
        return x + self.mlp(self.ln2(x)), cache


class TransformerModel(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.ln = nn.LayerNorm(cfg.embed_dim)
        self.head = nn.Linear(cfg.embed_dim, cfg.vocab_size, bias=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2 style scaled init of residual projections
            if name.endswith(("attn.out.weight", "mlp.2.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.num_layers))
        if cfg.tie_weights:
            self.head.weight = self.embed.weight

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def forward(self, tokens: torch.Tensor, state: dict[str, Any] | None = None) -> tuple[torch.Tensor, dict]:
        start = 0 if state is None else state["pos"]
        caches = [None] * len(self.blocks) if state is None else state["kv"]
        pos = torch.arange(start, start + tokens.shape[1], device=tokens.device)
        x = self.drop(self.embed(tokens))
        new = []
        for block, cache in zip(self.blocks, caches):
            x, c = block(x, pos, cache)
            new.append(c)
        return self.head(self.ln(x)), {"pos": start + tokens.shape[1], "kv": new}

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Forward FLOPs per token: weight matmuls plus attention scores/values over ``seq_len``."""
        n = sum(p.numel() for n, p in self.named_parameters() if p.dim() == 2 and "embed" not in n)
        t = seq_len or self.cfg.seq_len
        return 2.0 * n + 2.0 * self.cfg.num_layers * t * self.cfg.embed_dim
