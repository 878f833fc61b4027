"""Exact repeats while sampling: when a model writes ``REPEAT_k RUN_n`` after a bar line, the n bars that
start k bars back are copied into the new bars token by token, and the copy is closed by a bar line (or
the end).

Why: a sampled repeat is only as exact as the product of its token probabilities, so at temperature 1 a
phrase of 100 tokens copied with 99% confidence each comes out intact one time in three, and music's
most audible form, the literal repeat, is lost. The encoding (``tokenize.meter``) marks the passages a
composer repeats; the model decides *whether* and *what* to repeat in one choice, this module makes the
repeat *exact*. The copy reads the decoder's own history, so it may overlap the bars it writes (k < n:
a bar repeated n times), and it leaves out the source's marks (the encoder writes none inside a run).
Everything is batched tensor arithmetic on the decoder's device, a few small operations per step.
"""

from __future__ import annotations

import torch

from musesynth.models.state import RowState
from musesynth.tokenize.base import RepeatSpec


class BarCopier(RowState):
    """Per-sample copy state over the decoder's token history ``hist`` (B, capacity)."""

    # the per-sample state; on resampling its positions stay valid, as the history's rows are taken in the same order
    ROWS = ("bar_pos", "n_bars", "pending_k", "src", "bars_left", "closing")

    def __init__(self, spec: RepeatSpec, hist: torch.Tensor, length: int) -> None:
        dev = hist.device
        self.bars_back = torch.as_tensor(spec.bars_back, device=dev)
        self.run_bars = torch.as_tensor(spec.run_bars, device=dev)
        self.is_bar = torch.as_tensor(spec.is_bar, device=dev)
        self.is_mark = torch.as_tensor(spec.is_mark, device=dev)
        self.skip = torch.as_tensor(spec.skip, device=dev)
        self.after_copy = torch.as_tensor(spec.after_copy, device=dev)
        b = hist.shape[0]
        self.rows = torch.arange(b, device=dev)
        self.bar_pos = torch.zeros_like(hist)  # positions of each sample's BAR tokens, in order
        # the primer's bars (marks inside a primer copy nothing: the primer is taken as it is)
        is_bar = self.is_bar[hist[:, :length]]
        r, c = is_bar.nonzero(as_tuple=True)
        self.bar_pos[r, (is_bar.long().cumsum(1) - 1)[r, c]] = c
        self.n_bars = is_bar.sum(1)
        zeros = torch.zeros(b, dtype=torch.long, device=dev)
        self.pending_k = zeros.clone()  # REPEAT_k written, RUN_n awaited
        self.src = zeros.clone()  # next history position to copy
        self.bars_left = zeros.clone()  # bars of the passage still to copy (0: not copying)
        self.closing = torch.zeros(b, dtype=torch.bool, device=dev)  # copy done: the passage must end now


    def grow(self, capacity: int) -> None:
        extra = capacity - self.bar_pos.shape[1]
        if extra > 0:
            self.bar_pos = torch.cat([self.bar_pos, self.bar_pos.new_zeros(self.bar_pos.shape[0], extra)], 1)

    @property
    def copying(self) -> torch.Tensor:
        return self.bars_left > 0

    def allowed(self, allowed: torch.Tensor | None) -> torch.Tensor | None:
        """The grammar mask, narrowed to bar line / end for samples whose copied passage is complete."""
        if allowed is None or not bool(self.closing.any()):
            return allowed
        return torch.where(self.closing[:, None], allowed & self.after_copy[None, :], allowed)

    def force(self, sampled: torch.Tensor, hist: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
        """The token each sample writes: the next copied one while copying, else the sampled one. ``allowed`` (B, V):
        a constraint's mask (one line per voice, no parallels): a copy that would break it is given up there, and
        the sample writes on from its sampled token (drawn under the mask), so a repeat never breaks the rules the
        rest of the piece keeps."""
        copied = hist[self.rows, self.src.clamp(max=hist.shape[1] - 1)]
        copying = self.copying
        if allowed is not None:
            broken = copying & ~allowed[self.rows, copied]
            if bool(broken.any()):
                self.bars_left = torch.where(broken, 0, self.bars_left)
                self.closing &= ~broken
                copying = copying & ~broken
        return torch.where(copying, copied, sampled)

    def _skip(self, src: torch.Tensor, hist: torch.Tensor, t: int, table: torch.Tensor, times: int) -> torch.Tensor:
        for _ in range(times):
            src = torch.where(table[hist[self.rows, src.clamp(max=t)]] & (src < t), src + 1, src)
        return src

    def advance(self, tok: torch.Tensor, hist: torch.Tensor, t: int) -> None:
        """Update after ``tok`` was written at position ``t`` of ``hist``."""
        was_copying = self.copying
        bar = self.is_bar[tok]
        self.bar_pos[self.rows, self.n_bars] = torch.where(bar, t, self.bar_pos[self.rows, self.n_bars])
        self.n_bars += bar.long()
        # a copied BAR opens the next bar of the passage
        self.bars_left = torch.where(was_copying & bar, self.bars_left - 1, self.bars_left)
        src = self._skip(self.src + 1, hist, t, self.is_mark, 2)
        # the passage ends where its source's next bar would begin
        ends = was_copying & (self.is_bar[hist[self.rows, src.clamp(max=t)]] & (self.bars_left == 1))
        self.src = torch.where(was_copying, src, self.src)
        self.bars_left = torch.where(ends, 0, self.bars_left)
        self.closing = ends
        self._start(tok, hist, t, was_copying)

    def _start(self, tok: torch.Tensor, hist: torch.Tensor, t: int, was_copying: torch.Tensor) -> None:
        """REPEAT_k is remembered; the RUN_n after it starts the copy of bars (current - k) onwards."""
        k, n = self.bars_back[tok], self.run_bars[tok]
        free = ~was_copying
        start = free & (n > 0) & (self.pending_k > 0)
        src_bar = self.n_bars - 1 - self.pending_k  # the current bar is n_bars - 1
        start &= src_bar >= 0
        first = self.bar_pos[self.rows, src_bar.clamp(min=0)] + 1
        first = self._skip(first, hist, t, self.skip, 3)  # the source bar's own TIMESIG and marks
        self.src = torch.where(start, first, self.src)
        self.bars_left = torch.where(start, n, self.bars_left)
        self.pending_k = torch.where(free & (k > 0), k, torch.where(free & (n > 0), 0, self.pending_k))
