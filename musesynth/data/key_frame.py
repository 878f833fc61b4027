"""Key-relative models (``musesynth train --key-relative``): every piece is learnt with its tonic on C.

A model trained on pieces in their written keys has to learn each key from the pieces written in it
(the 410 chorales put 8 to 45 pieces in each of their 20 keys), and its KEY token barely holds the music:
the shipped recipe's LSTM wrote 15% of its pieces in the key asked for (Krumhansl-Schmuckler). Trained on
the same chorales moved to C major / C minor, the same recipe wrote 73% in C, the key it was asked for,
next to 81% for Bach's own pieces cut to the same length: every piece now teaches the one tonal frame.

- **Training** (and validation, and `musesynth evaluate`'s test NLL): each piece moves by the interval from
  its key's tonic to C, the smaller way (``tonic_offset``: -5..+6 semitones, so a piece in G rises a fourth
  and one in D falls a tone), its KEY token with it. Notes that would leave the piano range fold by an
  octave (none of the chorales has one). Transposition augmentation still applies on top.
- **Generation**: a prompt moves the same way into C (its key: the one asked for, the primer's own or one
  drawn from the corpus' key distribution, which is counted before the move), the model writes in C, and
  the new tokens move back by the opposite interval, so a piece asked in G sits where the corpus' G pieces
  sit. The primer's own tokens are kept as they were. Same seed, same piece: in another key it is the
  same music transposed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from musesynth.errors import MusesynthError
from musesynth.tokenize import Encoding
from musesynth.tokenize.meter import tonic_offset


def check_keyed(enc: Encoding) -> None:
    if not hasattr(enc, "transpose_ids"):
        raise MusesynthError(f"--key-relative needs a dataset with key tokens (this one is '{enc.name}'; "
                             f"make it with `musesynth data --encoding meter`)")


def to_c_shift(enc: Encoding, ids: np.ndarray) -> int:
    """Semitones that move a piece (or prompt) with these tokens to a tonic of C; 0 without a KEY token."""
    key = enc.key_of(ids)  # type: ignore[attr-defined]
    return -tonic_offset(key[0]) if key is not None else 0


def pieces_to_c(enc: Encoding, tokens: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """A split's tokens (pieces at ``offsets``) with every piece moved to a tonic of C, in ``tokens``' dtype."""
    check_keyed(enc)
    offsets = np.asarray(offsets, np.int64)
    tokens = np.asarray(tokens)
    shifts = np.array([to_c_shift(enc, tokens[a : min(b, a + 16)]) for a, b in zip(offsets[:-1], offsets[1:])],
                      np.int64)  # the KEY sits in the header
    per_token = np.repeat(shifts, np.diff(offsets))
    return enc.transpose_ids(tokens, per_token).astype(tokens.dtype)  # type: ignore[attr-defined]


@dataclass
class KeyFrame:
    """A model's key frame around sampling: ``to_model`` moves prompt rows into it, ``to_user`` moves the
    sampled sequences back to each row's key. The identity for models trained in written keys."""

    enc: Encoding
    relative: bool
    shifts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rows: np.ndarray | None = None

    def to_model(self, rows: np.ndarray) -> np.ndarray:
        rows = np.atleast_2d(np.asarray(rows, np.int64))
        self.rows = rows
        if not self.relative:
            return rows
        self.shifts = np.array([to_c_shift(self.enc, r) for r in rows], np.int64)
        return np.stack([self.enc.transpose_ids(r, s) for r, s in zip(rows, self.shifts)])  # type: ignore

    def to_user(self, seqs: list[np.ndarray]) -> list[np.ndarray]:
        """Each sequence in its row's key: the row (the user's primer) as it was, the new tokens moved back."""
        if not self.relative or self.rows is None:
            return seqs
        n = self.rows.shape[1]
        return [np.r_[row, self.enc.transpose_ids(s[n:], -shift)]  # type: ignore[attr-defined]
                for row, s, shift in zip(self.rows, seqs, self.shifts)]
