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
        y, state = self._layerwise(x, state) if self._torch_dropout(x) else self.rnn(x, state)
        return self.head(self.proj(self.drop(y))), state

    def _torch_dropout(self, x: torch.Tensor) -> bool:
        """cuDNN draws the dropout between layers from a generator of its own that no checkpoint holds (and that
        one process shares between runs), so a resumed CUDA run would draw other masks than the run it continues.
        With deterministic kernels asked for (`train --deterministic`), each layer runs alone and torch's
        generator, saved with the run, draws the masks between them, as PyTorch's own CPU kernel does."""
        return (self.training and self.rnn.num_layers > 1 and self.rnn.dropout > 0 and x.is_cuda
                and torch.are_deterministic_algorithms_enabled())

    def _layerwise(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """The stacked RNN one layer at a time, with dropout on every layer's output but the last: the same
        computation as ``self.rnn(x, state)`` (bit for bit on CPU, where PyTorch draws the same masks)."""
        rnn, lstm = self.rnn, isinstance(self.rnn, nn.LSTM)
        if state is None:
            zeros = x.new_zeros(rnn.num_layers, x.size(0), rnn.hidden_size)
            state = (zeros, zeros) if lstm else zeros
        weights = rnn._flat_weights
        per = len(weights) // rnn.num_layers
        hs, cs = [], []
        for layer in range(rnn.num_layers):
            w = weights[layer * per : (layer + 1) * per]
            if lstm:
                x, h, c = torch._VF.lstm(x, (state[0][layer : layer + 1], state[1][layer : layer + 1]), w,
                                         rnn.bias, 1, 0.0, True, False, True)
                cs.append(c)
            else:
                x, h = torch._VF.gru(x, state[layer : layer + 1], w, rnn.bias, 1, 0.0, True, False, True)
            hs.append(h)
            if layer < rnn.num_layers - 1:
                x = torch.nn.functional.dropout(x, rnn.dropout, True)
        h = torch.cat(hs)
        return x, ((h, torch.cat(cs)) if lstm else h)

    def flops_per_token(self) -> float:
        """Forward FLOPs per token (2 x multiply-adds of the weight matrices)."""
        return 2.0 * sum(p.numel() for n, p in self.named_parameters() if p.dim() == 2 and "embed" not in n)
