"""One-token Transformer decoding as a CUDA graph: the whole step (about 15 kernels per layer) replayed
with one launch, for batch-1 decoding on a GPU, where launching kernels, not computing them, is the cost.

``GraphedDecoding(model)`` stands in for the model wherever ``Decoder`` takes one (``sampling.py`` is
unchanged: it calls ``model(tokens, state)``): whole-sequence calls (the prefill) go to the model; each
one-token call copies the token and position into static buffers and replays the graph, captured on
the first call for that cache. On CPU (or ``graphs=False``) the same fixed-shape step runs eagerly,
which is what the tests check against the ordinary path.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from musesynth.models.transformer import KVCache, TransformerModel


class GraphedDecoding(nn.Module):
    def __init__(self, model: TransformerModel, graphs: bool | None = None) -> None:
        super().__init__()
        self.model = model
        device = model.embed.weight.device
        self.graphs = device.type == "cuda" if graphs is None else graphs
        self.cache: KVCache | None = None
        self.graph: Any = None

    @property
    def blocks(self) -> nn.ModuleList:  # Decoder recognises a Transformer by its blocks
        return self.model.blocks

    def forward(self, tokens: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        if state is None or tokens.shape[1] != 1 or self.model.training:
            return self.model(tokens, state)
        cache = state if isinstance(state, KVCache) else KVCache.from_legacy(state, self.model.cfg.seq_len + 1)
        if cache is not self.cache:
            self._prepare(tokens, cache)
        self.tok.copy_(tokens)
        self.pos.fill_(cache.pos)
        if self.graph is not None:
            self.graph.replay()
        else:
            self.out = self.model.decode_step_static(self.tok, cache, self.pos)
        cache.pos += 1
        return self.out.clone(), cache

    def _prepare(self, tokens: torch.Tensor, cache: KVCache) -> None:
        """Static input buffers for this cache, and on CUDA the captured step (after warm-up runs on a side
        stream, as CUDA graphs need; they write the slot of ``cache.pos``, which the real step rewrites)."""
        self.cache, self.graph = cache, None
        self.tok = torch.zeros_like(tokens)
        self.pos = torch.zeros(1, dtype=torch.long, device=tokens.device)
        self.tok.copy_(tokens)
        self.pos.fill_(cache.pos)
        if not self.graphs:
            return
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.no_grad():
            for _ in range(2):
                self.model.decode_step_static(self.tok, cache, self.pos)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.no_grad():
            self.out = self.model.decode_step_static(self.tok, cache, self.pos)
