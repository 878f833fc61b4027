"""(input, target) windows of ``seq_len`` tokens over a split.

Training: one window per ``seq_len`` tokens, each started at a random offset redrawn every epoch
(``set_epoch``), so every epoch sees new cuts of the music; windows may cross piece boundaries (pieces
are delimited by BOS/EOS, as in nanoGPT-style training). With ``piece_starts`` > 0 that share of the
windows (drawn anew each epoch) starts at a random piece's BOS instead: generation always starts
there, and only such windows show a model its header tokens (key, meter) with the music they govern
and the opening bars a later repeat refers to.
Evaluation: fixed, non-overlapping windows that cover every token of the split exactly once; the last
window is padded and padded targets are ignored (target = PAD), so a loss over them is the exact
per-token loss of the whole split.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset

from musesynth.data.augment import WindowAugmenter
from musesynth.errors import MusesynthError


class WindowDataset(Dataset):
    def __init__(
        self,
        tokens: np.ndarray,
        seq_len: int,
        train: bool,
        pad_id: int = 0,
        seed: int = 0,
        augment: WindowAugmenter | None = None,
        piece_starts: float = 0.0,
        bos_id: int | None = None,
    ) -> None:
        self.tokens = tokens
        self.seq_len = seq_len
        self.train = train
        self.pad_id = pad_id
        self.seed = seed
        self.augment = augment if train else None
        n = len(tokens)
        self.piece_starts = piece_starts
        self.bos_at = np.zeros(0, np.int64)
        if piece_starts > 0 and bos_id is not None:
            at = np.flatnonzero(np.asarray(tokens) == bos_id)
            self.bos_at = at[at <= n - seq_len - 1]
        if train:
            if n < seq_len + 1:
                raise MusesynthError(
                    f"seq_len {seq_len} is larger than the training data ({n} tokens); use a smaller --seq-len"
                )
            self.n_windows = (n - 1) // seq_len
        else:
            self.n_windows = max(0, -(-(n - 1) // seq_len))
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.train:
            rng = np.random.default_rng([self.seed, epoch])
            jitter = rng.integers(0, self.seq_len, self.n_windows)
            last = len(self.tokens) - self.seq_len - 1
            self.starts = np.minimum(np.arange(self.n_windows) * self.seq_len + jitter, last)
            if self.bos_at.size:
                chosen = rng.random(self.n_windows) < self.piece_starts
                self.starts[chosen] = rng.choice(self.bos_at, int(chosen.sum()))
        else:
            self.starts = np.arange(self.n_windows) * self.seq_len

    def __len__(self) -> int:
        return self.n_windows

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        a = int(self.starts[i])
        chunk = np.asarray(self.tokens[a : a + self.seq_len + 1], dtype=np.int64)
        if chunk.size < self.seq_len + 1:
            chunk = np.concatenate([chunk, np.full(self.seq_len + 1 - chunk.size, self.pad_id, np.int64)])
        if self.augment is not None:
            chunk = self.augment(chunk, np.random.default_rng([self.seed, self.epoch, i]))
        x = torch.from_numpy(chunk[:-1].copy())
        y = torch.from_numpy(chunk[1:].copy())
        return x, y


class DeviceBatches:
    """A training ``WindowDataset``'s batches cut on the device itself: the whole split is copied there once
    and each batch is one gather (start + 0..seq_len), so a step has no DataLoader collation, no worker
    and no host-to-device copy. Same windows, same order, as a DataLoader over ``sampler`` (no augmentation:
    that path keeps the DataLoader)."""

    def __init__(self, ds: WindowDataset, sampler: Iterable[int], batch_size: int, device: torch.device) -> None:
        if ds.augment is not None or not ds.train:
            raise ValueError("DeviceBatches serves un-augmented training windows only")
        self.ds, self.sampler, self.batch_size, self.device = ds, sampler, batch_size, device
        self.tokens = torch.as_tensor(np.asarray(ds.tokens, dtype=np.int64)).to(device)
        self.offsets = torch.arange(ds.seq_len + 1, device=device)

    def epoch(self, skip: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This epoch's (x, y) batches from batch ``skip`` on (call after ``set_epoch`` on ds and sampler)."""
        order = np.fromiter(iter(self.sampler), dtype=np.int64)
        starts = torch.as_tensor(self.ds.starts[order]).to(self.device)
        for a in range(skip * self.batch_size, len(order), self.batch_size):
            w = self.tokens[starts[a : a + self.batch_size, None] + self.offsets]
            yield w[:, :-1], w[:, 1:]
