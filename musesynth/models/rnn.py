"""GRU and LSTM language models: the hidden state is the generation cache (O(1) work per token)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from musesynth.models.config import ModelConfig


class RNNModel(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        rnn_cls = {"gru": nn.GRU, "lstm": nn.LSTM}[cfg.family]
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.rnn = rnn_cls(
            cfg.embed_dim, cfg.hidden_dim, cfg.num_layers, batch_first=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
        )
        out_dim = cfg.embed_dim if cfg.tie_weights else cfg.hidden_dim
        self.proj = nn.Linear(cfg.hidden_dim, out_dim) if out_dim != cfg.hidden_dim else nn.Identity()
        self.head = nn.Linear(out_dim, cfg.vocab_size)
        if cfg.tie_weights:
            self.head.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        x = self.drop(self.embed(tokens))
        y, state = self.rnn(x, state)
        return self.head(self.proj(self.drop(y))), state

    def flops_per_token(self) -> float:
        """Forward FLOPs per token (2 x multiply-adds of the weight matrices)."""
        return 2.0 * sum(p.numel() for n, p in self.named_parameters() if p.dim() == 2 and "embed" not in n)
