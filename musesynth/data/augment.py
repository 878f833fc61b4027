"""Load-time augmentation (never stored): random transposition and tempo shifts by token-table lookup,
so a window is augmented with one vectorised gather."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musesynth.tokenize.base import Encoding


@dataclass
class Augmenter:
    transpose: int = 0  # up to +/- this many semitones
    tempo: int = 0  # up to +/- this many tempo bins

    def tables(self, enc: Encoding) -> tuple[np.ndarray, np.ndarray]:
        tr = np.stack([enc.transpose_table(k) for k in range(-self.transpose, self.transpose + 1)])
        te = np.stack([enc.tempo_table(k) for k in range(-self.tempo, self.tempo + 1)])
        return tr, te


class WindowAugmenter:
    """Applies a random transposition (skipped if it would push a note out of range) and tempo shift."""

    def __init__(self, enc: Encoding, aug: Augmenter) -> None:
        self.transpose_tables, self.tempo_tables = aug.tables(enc)

    def __call__(self, window: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        t = self.transpose_tables[rng.integers(len(self.transpose_tables))]
        moved = t[window]
        if (moved >= 0).all():
            window = moved
        return self.tempo_tables[rng.integers(len(self.tempo_tables))][window]
