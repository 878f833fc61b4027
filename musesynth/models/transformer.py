"""Decoder-only Transformer with rotary position embeddings (relative positions, so it runs past its
training length) and PyTorch's fused scaled_dot_product_attention.

Generation keeps a KV cache. A whole-sequence call (training, a prefill) returns the cheap legacy state
``{"pos": next position, "kv": [(k, v) per layer]}`` (views, nothing copied); the first one-token call
turns it into a ``KVCache``: one preallocated tensor written in place, a ring of ``seq_len + 1`` slots,
so a step allocates no cache and copies no history (``torch.cat`` made each step O(context) in copies).
Past ``seq_len`` tokens the cache is a sliding window: a new token attends to itself and the last
``seq_len`` tokens before it, as before; keys carry their absolute rotary position, so the ring's slot
order does not matter to attention.

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


def rotary_angles(pos: torch.Tensor, d: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (T, d/2) of the rotary angles at absolute positions ``pos`` (T,), fp32."""
    inv_freq = base ** (-torch.arange(0, d, 2, device=pos.device, dtype=torch.float32) / d)
    ang = pos.to(torch.float32)[:, None] * inv_freq[None, :]
    return ang.cos(), ang.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of channels of ``x`` (B, H, T, D) by the angles whose cos/sin (T, D/2) are given."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


def rotary(x: torch.Tensor, pos: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotate pairs of channels of ``x`` (B, H, T, D) by angles proportional to absolute ``pos`` (T,)."""
    return apply_rotary(x, *rotary_angles(pos, x.shape[-1], base))


class KVCache:
    """Keys/values of every layer in one preallocated tensor ``kv`` (L, B, 2, H, cap, D), written in place.

    ``cap = seq_len + 1`` slots form a ring: position p lives in slot ``p % cap``; the keys are stored
    rotated, so attention over the filled slots needs no order. ``pos`` is the next absolute position.
    """

    def __init__(self, kv: torch.Tensor, pos: int) -> None:
        self.kv, self.pos = kv, pos
        self.weights: list[tuple[torch.Tensor, ...]] | None = None  # the model's, packed for one-token steps

    @property
    def cap(self) -> int:
        return self.kv.shape[4]

    @classmethod
    def empty(cls, num_layers: int, batch: int, heads: int, cap: int, head_dim: int, device: torch.device,
              dtype: torch.dtype) -> KVCache:
        return cls(torch.zeros(num_layers, batch, 2, heads, cap, head_dim, device=device, dtype=dtype), 0)

    @classmethod
    def from_legacy(cls, state: dict[str, Any], cap: int) -> KVCache:
        """The ring holding a whole-sequence call's keys/values (the last ``len`` of them, len <= cap)."""
        k0 = state["kv"][0][0]
        b, h, _, d = k0.shape
        cache = cls.empty(len(state["kv"]), b, h, cap, d, k0.device, k0.dtype)
        cache.pos = state["pos"] - k0.shape[2]
        cache.write_all([torch.stack(kv, 1) for kv in state["kv"]])
        cache.pos = state["pos"]
        return cache

    def write_all(self, kvs: list[torch.Tensor]) -> None:
        """Store each layer's new keys/values (B, 2, H, T, D) for positions ``pos .. pos+T-1`` (pos unchanged)."""
        t = kvs[0].shape[3]
        keep = min(t, self.cap)
        slots = torch.arange(self.pos + t - keep, self.pos + t, device=self.kv.device) % self.cap
        for i, kv in enumerate(kvs):  # self.kv[i], not an unbind: in-place writes must work under autograd
            self.kv[i].index_copy_(3, slots, kv[:, :, :, t - keep :])

    def ordered(self, layer: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The last ``n`` (<= filled slots) keys and values of ``layer`` in position order, (B, H, n, D) each."""
        slots = torch.arange(self.pos - n, self.pos, device=self.kv.device) % self.cap
        kv = self.kv[layer].index_select(3, slots)
        return kv[:, 0], kv[:, 1]


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        assert cfg.embed_dim % cfg.num_heads == 0, "embed_dim must be divisible by num_heads"
        self.h = cfg.num_heads
        self.qkv = nn.Linear(cfg.embed_dim, 3 * cfg.embed_dim)
        self.out = nn.Linear(cfg.embed_dim, cfg.embed_dim)
        self.window = cfg.seq_len

    def forward(self, x: torch.Tensor, rot: tuple[torch.Tensor, torch.Tensor],
                cache: tuple | None) -> tuple[torch.Tensor, tuple]:
        """Whole sequences, or a chunk after ``cache`` = (past k, past v) in position order."""
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.h, c // self.h).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, *rot), apply_rotary(k, *rot)
        new = (k, v)
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
        if cache is not None:  # KVCache callers store only the new keys/values
            return self.out(y), new
        return self.out(y), (k[:, :, -self.window :], v[:, :, -self.window :])

    def step(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, kv: torch.Tensor,
             slot: int | torch.Tensor, n: int | torch.Tensor) -> torch.Tensor:
        """One token (B, 1, C), eval mode: rotate q and k with the precomputed tables, write k and v into
        the ring ``kv`` (B, 2, H, cap, D) at ``slot``, attend over its first ``n`` slots. Few kernels.
        With ``slot`` a (1,) device tensor and ``n`` a (1, cap) mask of the written slots, every shape is
        fixed (a CUDA graph can hold the step)."""
        b, _, c = x.shape
        qkv = self.qkv(x).view(b, 3, self.h, c // self.h)
        d = qkv.shape[-1]
        swapped = qkv.view(b, 3, self.h, d // 2, 2).flip(-1).view(b, 3, self.h, d)
        qkv = torch.addcmul(qkv * cos, swapped, sin)  # v's rows of the tables are cos 1, sin 0
        if isinstance(slot, int):
            kv[:, :, :, slot] = qkv[:, 1:]
            y = F.scaled_dot_product_attention(qkv[:, 0, :, None], kv[:, 0, :, :n], kv[:, 1, :, :n])
        else:
            kv.index_copy_(3, slot, qkv[:, 1:, :, None])
            y = F.scaled_dot_product_attention(qkv[:, 0, :, None], kv[:, 0], kv[:, 1], attn_mask=n)
        return self.out(y.view(b, 1, c))


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

    def forward(self, x: torch.Tensor, rot: tuple[torch.Tensor, torch.Tensor],
                cache: tuple | None) -> tuple[torch.Tensor, tuple]:
        a, cache = self.attn(self.ln1(x), rot, cache)
        x = x + self.drop(a)
        return x + self.mlp(self.ln2(x)), cache

    def step(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, kv: torch.Tensor,
             slot: int | torch.Tensor, n: int | torch.Tensor) -> torch.Tensor:
        """``forward`` for one token in eval mode (no dropout calls) on the in-place cache."""
        x = x + self.attn.step(self.ln1(x), cos, sin, kv, slot, n)
        fc, act, proj = self.mlp[0], self.mlp[1], self.mlp[2]
        return x + proj(act(fc(self.ln2(x))))


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
        # decoding tables (cos, sin per position for q, k, v), grown on demand; not part of the state dict
        self.register_buffer("rot_cos", torch.empty(0), persistent=False)
        self.register_buffer("rot_sin", torch.empty(0), persistent=False)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    @property
    def head_dim(self) -> int:
        return self.cfg.embed_dim // self.cfg.num_heads

    def forward(self, tokens: torch.Tensor, state: dict[str, Any] | KVCache | None = None
                ) -> tuple[torch.Tensor, dict | KVCache]:
        if state is not None:
            cache = state if isinstance(state, KVCache) else KVCache.from_legacy(state, self.cfg.seq_len + 1)
            if tokens.shape[1] == 1 and not self.training:
                return self.decode_step(tokens, cache), cache
            return self._chunk(tokens, cache), cache
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        rot = rotary_angles(pos, self.head_dim)  # once per call, shared by every layer
        x = self.drop(self.embed(tokens))
        new = []
        for block in self.blocks:
            x, c = block(x, rot, None)
            new.append(c)
        return self.head(self.ln(x)), {"pos": tokens.shape[1], "kv": new}

    def _chunk(self, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Tokens after a ``KVCache`` (training mode, or several at once): the reference computation on the
        last ``seq_len`` cached tokens, then the new keys/values written into the ring."""
        t, n = tokens.shape[1], min(cache.pos, self.cfg.seq_len)
        pos = torch.arange(cache.pos, cache.pos + t, device=tokens.device)
        rot = rotary_angles(pos, self.head_dim)
        x = self.drop(self.embed(tokens))
        new = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, rot, cache.ordered(i, n))
            new.append(torch.stack(kv, 1))
        cache.write_all(new)
        cache.pos += t
        return self.head(self.ln(x))

    def step_tables(self, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (T, 3, 1, D) at positions ``pos`` (T,), laid out for ``Attention.step``: channel pairs
        (2i, 2i+1) share an angle, sin carries the sign of the rotation, and the v rows are cos 1, sin 0.
        ``rotary_angles``' arithmetic, so the rotated keys are the same numbers as a full pass's."""
        cos, sin = rotary_angles(pos, self.head_dim)
        cos = cos.repeat_interleave(2, -1)
        sin = torch.stack((-sin, sin), -1).flatten(-2)
        cos = torch.stack((cos, cos, torch.ones_like(cos)), 1)[:, :, None]
        return cos, torch.stack((sin, sin, torch.zeros_like(sin)), 1)[:, :, None]

    def rotary_tables(self, upto: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``step_tables`` for positions < P, P >= ``upto``: computed once, grown by doubling."""
        if self.rot_cos.shape[0] < upto:
            p = max(upto, 2 * self.rot_cos.shape[0], self.cfg.seq_len + 1)
            self.rot_cos, self.rot_sin = self.step_tables(torch.arange(p, device=self.embed.weight.device))
        return self.rot_cos, self.rot_sin

    def packed_weights(self) -> list[tuple[torch.Tensor, ...]]:
        """Per layer (ln1 w, b, qkv W^T, b, out W^T, b, ln2 w, b, fc W^T, b, proj W^T, b), then (ln w, b,
        head W^T): the one-token step's weights, transposed once per decoding session (a ``KVCache``)
        so each matmul is one ``addmm`` on a contiguous (in, out) matrix, called without nn.Module
        dispatch (docs/benchmarks.md). Copies, so they belong to the session: a cache must not outlive a
        change of the weights or move to another model."""
        def t(w: torch.Tensor) -> torch.Tensor:
            return w.detach().t().contiguous()

        layers = []
        for b in self.blocks:
            fc, proj = b.mlp[0], b.mlp[2]
            layers.append((b.ln1.weight, b.ln1.bias, t(b.attn.qkv.weight), b.attn.qkv.bias, t(b.attn.out.weight),
                           b.attn.out.bias, b.ln2.weight, b.ln2.bias, t(fc.weight), fc.bias, t(proj.weight), proj.bias))
        return [*layers, (self.ln.weight, self.ln.bias, t(self.head.weight))]

    def decode_step(self, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """One token per row (B, 1) -> logits (B, 1, V), eval mode, keys/values written in place. The
        arithmetic of ``Block.step`` written out on packed weights (logits agree to ~1e-6, so tokens agree
        except at near-ties): batch-1 decoding on a CPU pays per call, not only per FLOP."""
        if cache.weights is None:
            cache.weights = self.packed_weights()
        p = cache.pos
        cos_t, sin_t = self.rotary_tables(p + 1)
        cos, sin = cos_t[p].to(cache.kv.dtype), sin_t[p].to(cache.kv.dtype)
        slot, n = p % cache.cap, min(p + 1, cache.cap)
        x = F.embedding(tokens[:, 0], self.embed.weight)
        b, c = x.shape
        h = self.cfg.num_heads
        d = c // h
        shape = (c,)
        for i, (l1w, l1b, wqkv, bqkv, wo, bo, l2w, l2b, w1, b1, w2, b2) in enumerate(cache.weights[:-1]):
            kv = cache.kv[i]
            qkv = torch.addmm(bqkv, F.layer_norm(x, shape, l1w, l1b), wqkv).view(b, 3, h, d)
            swapped = qkv.view(b, 3, h, d // 2, 2).flip(-1).view(b, 3, h, d)
            qkv = torch.addcmul(qkv * cos, swapped, sin)  # v's rows of the tables are cos 1, sin 0
            kv[:, :, :, slot] = qkv[:, 1:]
            y = F.scaled_dot_product_attention(qkv[:, 0, :, None], kv[:, 0, :, :n], kv[:, 1, :, :n])
            x = torch.addmm(x, y.view(b, c), wo).add_(bo)
            hid = F.gelu(torch.addmm(b1, F.layer_norm(x, shape, l2w, l2b), w1))
            x = torch.addmm(x, hid, w2).add_(b2)
        lw, lb, head = cache.weights[-1]
        cache.pos = p + 1
        return torch.mm(F.layer_norm(x, shape, lw, lb), head)[:, None]

    def decode_step_static(self, tokens: torch.Tensor, cache: KVCache, pos: torch.Tensor) -> torch.Tensor:
        """``decode_step`` with fixed shapes and the position a (1,) device tensor, for CUDA graphs: the
        tables come from ``pos`` in the graph, attention reads every slot with the unwritten ones masked.
        Leaves ``cache.pos`` to the caller (a replay cannot advance a Python int)."""
        cos, sin = self.step_tables(pos)
        cos, sin = cos[0].to(cache.kv.dtype), sin[0].to(cache.kv.dtype)
        written = (torch.arange(cache.cap, device=pos.device) <= pos)[None]  # (1, cap); full once pos >= cap - 1
        slot = pos % cache.cap
        x = self.embed(tokens)
        for i, block in enumerate(self.blocks):
            x = block.step(x, cos, sin, cache.kv[i], slot, written)
        return self.head(self.ln(x))

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Forward FLOPs per token: weight matmuls plus attention scores/values over ``seq_len``."""
        n = sum(p.numel() for n, p in self.named_parameters() if p.dim() == 2 and "embed" not in n)
        t = seq_len or self.cfg.seq_len
        return 2.0 * n + 2.0 * self.cfg.num_layers * t * self.cfg.embed_dim
