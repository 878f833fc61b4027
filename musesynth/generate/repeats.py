"""Exact repeats while sampling: when a model writes ``REPEAT_k`` after a bar line, the bar k bars back is
copied into the new bar token by token, and the copy is closed by a bar line (or the end).

Why: a sampled repeat is only as exact as the product of its token probabilities, so at temperature 1 a
phrase of 40 tokens copied with 98% confidence each comes out intact one time in two, and music's most
audible form, the literal repeat, is lost. The encoding (``tokenize.meter``) marks the bars Bach
repeats; the model learns *when* to repeat, this module makes the repeat *exact*. Everything is batched
tensor arithmetic on the decoder's device, a few small operations per step.
"""

from __future__ import annotations

import torch

from musesynth.tokenize.base import RepeatSpec


class BarCopier:
    """Per-sample copy state over the decoder's token history ``hist`` (B, capacity)."""

    def __init__(self, spec: RepeatSpec, hist: torch.Tensor, length: int) -> None:
        dev = hist.device
        self.bars_back = torch.as_tensor(spec.bars_back, device=dev)
        self.is_bar = torch.as_tensor(spec.is_bar, device=dev)
        self.skip = torch.as_tensor(spec.skip, device=dev)
        self.after_copy = torch.as_tensor(spec.after_copy, device=dev)
        b = hist.shape[0]
        self.bar_pos = torch.zeros_like(hist)  # positions of each sample's BAR tokens, in order
        self.n_bars = torch.zeros(b, dtype=torch.long, device=dev)
        self.src = torch.zeros(b, dtype=torch.long, device=dev)  # next history position to copy
        self.end = torch.zeros(b, dtype=torch.long, device=dev)  # where the copied bar ends
        self.closing = torch.zeros(b, dtype=torch.bool, device=dev)  # copy done: the bar must end now
        self.rows = torch.arange(b, device=dev)
        # the primer's bars (a REPEAT inside a primer copies nothing: the primer is taken as it is)
        is_bar = self.is_bar[hist[:, :length]]
        r, c = is_bar.nonzero(as_tuple=True)
        self.bar_pos[r, (is_bar.long().cumsum(1) - 1)[r, c]] = c
        self.n_bars = is_bar.sum(1)

    def grow(self, capacity: int) -> None:
        extra = capacity - self.bar_pos.shape[1]
        if extra > 0:
            self.bar_pos = torch.cat([self.bar_pos, self.bar_pos.new_zeros(self.bar_pos.shape[0], extra)], 1)

    def _note_bars(self, tok: torch.Tensor, t: int) -> None:
        bar = self.is_bar[tok]
        self.bar_pos[self.rows, self.n_bars] = torch.where(bar, t, self.bar_pos[self.rows, self.n_bars])
        self.n_bars += bar.long()

    @property
    def copying(self) -> torch.Tensor:
        return self.src < self.end

    def allowed(self, allowed: torch.Tensor | None) -> torch.Tensor | None:
        """The grammar mask, narrowed to bar line / end for samples whose copied bar is complete."""
        if allowed is None or not bool(self.closing.any()):
            return allowed
        return torch.where(self.closing[:, None], allowed & self.after_copy[None, :], allowed)

    def force(self, sampled: torch.Tensor, hist: torch.Tensor) -> torch.Tensor:
        """The token each sample writes: the next copied one while copying, else the sampled one."""
        copying = self.copying
        copied = hist[self.rows, self.src.clamp(max=hist.shape[1] - 1)]
        return torch.where(copying, copied, sampled)

    def advance(self, tok: torch.Tensor, hist: torch.Tensor, t: int) -> None:
        """Update after ``tok`` was written at position ``t`` of ``hist``."""
        was_copying = self.copying
        self.src = torch.where(was_copying, self.src + 1, self.src)
        self.closing = was_copying & ~self.copying
        self._note_bars(tok, t)
        k = self.bars_back[tok]
        # the current bar is n_bars - 1; its source is bar n_bars - 1 - k, which ends where the next bar starts
        src_bar = self.n_bars - 1 - k
        start = (k > 0) & ~was_copying & (src_bar >= 0)
        sb = src_bar.clamp(min=0)
        first = self.bar_pos[self.rows, sb] + 1
        last = self.bar_pos[self.rows, sb + 1]
        for _ in range(2):  # skip the source bar's own TIMESIG / REPEAT marks
            first = torch.where(self.skip[hist[self.rows, first.clamp(max=t)]] & (first < last), first + 1, first)
        self.src = torch.where(start, first, self.src)
        self.end = torch.where(start, last, self.end)
