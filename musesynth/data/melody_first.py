"""Melody-first training windows for the parts encoding, so a model learns to harmonise a melody it has read whole.

A share ``rate`` of the windows that hold a piece's start (its BOS) is rewritten as::

    [melody of the piece, without its BOS]  BOS header BAR ... (the piece as it was) ...

where the melody is the piece's own tokens (its header, bars, positions, tempo and fermatas) with the notes of
one part only (``melody_only``) and ends with EOS: the separator is the piece boundary the model already knows,
so no token is added to the vocabulary. The melody has **no BOS** (``melody_prompt``): a piece the model starts
from BOS is always a whole piece. (With its BOS, a model trained so wrote a melody alone, one part and no
harmony, in 5 of 12 unconditioned pieces.) The part is the first one (the soprano of a chorale) half
of the time, else any part with notes: `musesynth harmonize` puts a melody in its own voice. The window keeps
its length (the end is cut, or tokens before the piece fill in what the melody did not). Every token stays a
training target.

`musesynth harmonize` prompts a model with exactly this form: ``melody_prompt`` of the melody laid in its part,
then the header of the piece to write, so the model reads the whole melody before writing a note under it.
"""

from __future__ import annotations

import numpy as np

from musesynth.tokenize.base import Encoding, Parts
from musesynth.tokenize.meter import T_BAR, T_BOS, T_DUR, T_EOS, T_NOTE, T_PHRASE, T_POS, T_REPEAT, T_RUN, T_TEMPO
from musesynth.tokenize.parts import T_CHORD


def parts_of_encoding(enc: Encoding) -> Parts:
    """``enc`` as the parts encoding it must be here (a meter model has no parts to keep apart)."""
    parts = enc.parts()
    if parts is None:
        raise ValueError(f"melody-first windows need the parts encoding, not '{enc.name}'")
    return parts


def melody_prompt(enc: Encoding, piece: np.ndarray, part: int) -> np.ndarray:
    """``melody_only`` without its BOS: how melody-first windows and `musesynth harmonize` show a melody."""
    out = melody_only(enc, piece, part)
    return out[1:] if out.size and out[0] == enc.bos_id else out


def melody_only(enc: Encoding, piece: np.ndarray, part: int) -> np.ndarray:
    """``piece`` (from its BOS) with only ``part``'s notes: other parts' NOTE DUR pairs, repeat marks, CHORD
    tokens (they name the harmony the melody is to get) and onsets left empty (no note, no tempo change) go; an
    EOS closes it."""
    e = parts_of_encoding(enc)
    piece = np.asarray(piece, np.int64)
    typ = e.token_type[piece]
    other = (typ == T_NOTE) & (e.part_of[piece] != part)
    drop = other | np.r_[False, other[:-1] & (typ[1:] == T_DUR)] | np.isin(typ, (T_REPEAT, T_RUN, T_CHORD))
    group = np.cumsum(np.isin(typ, (T_POS, T_BAR, T_EOS, T_BOS)))  # one onset (or bar line) per group
    filled = np.zeros(group[-1] + 1 if group.size else 1, bool)
    filled[group[~drop & np.isin(typ, (T_NOTE, T_TEMPO))]] = True
    drop |= np.isin(typ, (T_POS, T_PHRASE)) & ~filled[group]
    out = piece[~drop]
    return out if out.size and out[-1] == enc.eos_id else np.r_[out, enc.eos_id]


class MelodyFirst:
    """``(window, rng) -> window`` of the same length, melody first with probability ``rate`` (see the module)."""

    def __init__(self, enc: Encoding, rate: float = 0.25) -> None:
        self.enc, self.parts, self.rate = enc, parts_of_encoding(enc), float(rate)

    def __call__(self, window: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.rate:
            return window
        e = self.enc
        bos = np.flatnonzero(window == e.bos_id)
        if not bos.size:
            return window
        b = int(bos[0])
        eos = np.flatnonzero(window[b:] == e.eos_id)
        piece = window[b : b + int(eos[0]) + 1] if eos.size else window[b:]
        part = self.parts.part_of[piece]
        parts = np.unique(part[part >= 0])
        if parts.size < 2:
            return window
        k = 0 if parts[0] == 0 and rng.random() < 0.5 else int(rng.choice(parts))
        out = np.r_[melody_prompt(e, piece, k), window[b:]]
        short = window.size - out.size
        if short > 0:
            out = np.r_[window[b - short : b], out]
        return out[: window.size]
