"""Key-relative models (``musesynth train --key-relative N``): pieces are learnt moved to one of N tonics.

A model trained on pieces in their written keys has to learn each key from the pieces written in it (the 410
chorales put 8 to 45 pieces in each of their 20 keys), and its KEY token barely holds the music: the shipped
recipe's LSTM wrote 29% of its pieces in the key asked for (Krumhansl-Schmuckler). Moved to one tonic, every
piece teaches the same tonal frame.

The model's view of a piece (its *frame*) has two KEY tokens::

    BOS [COMPOSER] KEY_C_minor KEY_E_minor TIMESIG ... notes moved from E to C ...

- the **frame key** (first): the tonic the notes are written on, in the piece's mode;
- the **piece's key** (second): where the piece really sits, so the model can place its voices where pieces
  in that key sit (chorale voices keep their ranges whatever the key: moved to C without it, a G major
  piece came back 5 semitones low).

Each piece moves to the nearest frame tonic (``frame_tonics(N)``: C; C and F#; ... evenly spread), the
smaller way (``tonic_offset``: with one frame -6..+5 semitones, so a piece in G rises a fourth; with two,
at most a minor third). The fewer the frames, the more pieces share one and the firmer the model holds a
key; the more, the less a piece moves and the surer its register. Notes that would leave the piano range
fold by an octave (no chorale has one). Transposition augmentation then moves notes and both keys alike, as
for any model, so the frame key always names the notes' tonic. The training and validation splits, and
`musesynth evaluate`'s test split, are read this way.

Generation: a prompt (its key: the one asked for, the primer's own or one drawn from the corpus' key
distribution, counted from the pieces' own keys) is moved into its frame, the model writes, and the new notes
move back by the opposite interval; the user's primer and header come back as they were. Key guidance reads
the frame key, so it favours the frame's scale, the asked key's once moved back. Same seed, same piece: asked
in another key of the same frame, it is the same music, transposed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from musesynth.errors import MusesynthError
from musesynth.tokenize import Encoding
from musesynth.tokenize.base import Keyed
from musesynth.tokenize.meter import T_KEY, tonic_offset

HEADER = 16  # tokens in which a piece's KEY token is looked for


def frame_tonics(n: int) -> tuple[int, ...]:
    """The tonics of ``n`` frames, evenly spread from C: 1 (C), 2 (C, F#), 3 (C, E, G#), 4 (C, D#, F#, A);
    0: none (a model of written keys)."""
    return tuple(12 * i // n for i in range(n)) if n else ()


def frame_move(tonic: int, frames: tuple[int, ...]) -> tuple[int, int]:
    """(frame tonic, semitones) that move a piece on ``tonic`` to its frame: the nearest of ``frames``, the
    smaller way (``tonic_offset``)."""
    _, frame, shift = min((abs(tonic_offset(tonic - f)), f, -tonic_offset(tonic - f)) for f in frames)
    return frame, shift


def check_keyed(enc: Encoding) -> Keyed:
    """``enc`` as the keyed encoding a key-relative frame needs, else a one-line error."""
    keyed = enc.keyed()
    if keyed is None:
        raise MusesynthError(f"--key-relative needs a dataset with key tokens (this one is '{enc.name}'; "
                             f"make it with `musesynth data --encoding meter`)")
    return keyed


def first_key(enc: Keyed, ids: np.ndarray) -> int | None:
    """Index of the first KEY token among the first ``HEADER`` tokens, None without one."""
    head = np.asarray(ids[:HEADER], np.int64)
    at = np.flatnonzero(enc.token_type[np.clip(head, 0, enc.token_type.size - 1)] == T_KEY)
    return int(at[0]) if at.size else None


def to_frame(enc: Encoding, ids: np.ndarray, frames: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """A piece or prompt as a key-relative model reads it (notes on the frame tonic, the frame key before its
    own), and the shift its notes took. Without a KEY token (or an encoding without keys): unchanged, shift 0."""
    keyed = enc.keyed()
    at = None if keyed is None else first_key(keyed, ids)
    if keyed is None or at is None:
        return np.asarray(ids, np.int64), 0
    key = keyed.key_of(ids[at : at + 1])
    assert key is not None  # first_key found a KEY token there
    tonic, mode = key
    frame, shift = frame_move(tonic, frames)
    moved = keyed.transpose_ids(ids, shift, keys=False)
    return np.insert(moved, at, keyed.key_token_id(frame, mode)), shift


def pieces_to_frame(enc: Encoding, tokens: np.ndarray, offsets: np.ndarray,
                    frames: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A split's tokens (pieces at ``offsets``) in the key-relative frame, in ``tokens``' dtype, and the new
    offsets (each piece with a KEY gains its frame key)."""
    keyed = check_keyed(enc)
    offsets, tokens = np.asarray(offsets, np.int64), np.asarray(tokens)
    n = offsets.size - 1
    shift, gained, at, frame = np.zeros(n, np.int64), np.zeros(n, np.int64), [], []
    for i, (a, b) in enumerate(zip(offsets[:-1], offsets[1:])):
        k = first_key(keyed, tokens[a:b])
        if k is not None:
            key = keyed.key_of(tokens[a + k : a + k + 1])
            assert key is not None  # first_key found a KEY token there
            tonic, mode = key
            f, shift[i] = frame_move(tonic, frames)
            gained[i] = 1
            at.append(a + k)
            frame.append(keyed.key_token_id(f, mode))
    moved = keyed.transpose_ids(tokens, np.repeat(shift, np.diff(offsets)), keys=False)
    out = np.insert(moved, np.array(at, np.int64), np.array(frame, np.int64)).astype(tokens.dtype)
    return out, offsets + np.r_[0, np.cumsum(gained)]


@dataclass
class KeyFrame:
    """A model's key frame around sampling: ``to_model`` moves prompt rows into it, ``to_user`` brings the
    sampled sequences back to each row's key. The identity for models trained in written keys. ``register``:
    semitones the rows move first (``generate.ranges.piece_shift``: a flute duet's primer read an octave down,
    where the model learnt voices), the new notes moving back with the frame's shift."""

    enc: Encoding
    frames: tuple[int, ...]  # the model's frame tonics (``CheckpointMeta.key_frames``); () for written keys
    register: int = 0
    shifts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rows: np.ndarray | None = None
    model_len: int = 0  # tokens of a row in the frame

    def to_model(self, rows: np.ndarray) -> np.ndarray:
        rows = np.atleast_2d(np.asarray(rows, np.int64))
        self.rows, self.model_len = rows, rows.shape[1]
        self.shifts = np.zeros(rows.shape[0], np.int64)
        moved = check_keyed(self.enc).transpose_ids(rows, self.register) if self.register else rows
        if not self.frames:
            return moved
        framed = [to_frame(self.enc, r, self.frames) for r in moved]
        self.shifts = np.array([s for _, s in framed], np.int64)
        out = np.stack([f for f, _ in framed])
        self.model_len = out.shape[1]
        return out

    def to_user(self, seqs: list[np.ndarray]) -> list[np.ndarray]:
        """Each sequence in its row's key: the row (the user's primer and header) as it was, the new tokens'
        notes moved back."""
        if not (self.frames or self.register) or self.rows is None:
            return seqs
        keyed = check_keyed(self.enc)
        return [np.r_[row, keyed.transpose_ids(s[self.model_len :], -(shift + self.register), keys=False)]
                for row, s, shift in zip(self.rows, seqs, self.shifts)]
