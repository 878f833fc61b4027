"""Key guidance: a piece asked for in a key should stay in it.

The KEY token alone does not hold a piece in its key: a 600-token piece from the shipped LSTM ends
up, by the Krumhansl-Schmuckler estimate, in the key asked for 21% of the time (mostly the dominant
or an unrelated major instead). So, as a sampling dial like temperature, notes whose pitch class lies
outside the key's scale get ``strength`` log-odds less. The scale is the major scale, or for minor
the natural minor with the raised sixth and seventh (melodic / harmonic minor), so a leading tone
costs nothing. Chromatic notes stay possible: at strength 1 (odds / e) a chromatic note the model
rates 3x as likely as the best in-key note still wins. Each sample is guided by the key in its own header.
"""

from __future__ import annotations

import numpy as np

from musesynth.tokenize.base import KeySpec

# scale degrees (semitones above the tonic) that are in the key
IN_KEY = {
    0: (0, 2, 4, 5, 7, 9, 11),  # major
    1: (0, 2, 3, 5, 7, 8, 9, 10, 11),  # minor: natural, plus the raised 6th and 7th
}


def in_key_mask(key: int) -> np.ndarray:
    """(12,) bool over pitch classes for key index ``mode * 12 + tonic``."""
    mode, tonic = divmod(int(key), 12)
    mask = np.zeros(12, bool)
    mask[(np.asarray(IN_KEY[mode]) + tonic) % 12] = True
    return mask


def row_key(spec: KeySpec, row: np.ndarray) -> int | None:
    keys = spec.key_of[np.asarray(row, np.int64)]
    found = np.flatnonzero(keys >= 0)
    return int(keys[found[0]]) if found.size else None


def key_bias(spec: KeySpec | None, rows: np.ndarray, strength: float) -> np.ndarray | None:
    """(B, V) float32 log-odds to add to the logits: ``-strength`` on each row's out-of-key notes;
    None when there is nothing to guide (no key tokens, strength 0, or no row with a key)."""
    if spec is None or not strength:
        return None
    rows = np.atleast_2d(np.asarray(rows, np.int64))
    bias = np.zeros((rows.shape[0], spec.pitch_class.size), np.float32)
    is_note = spec.pitch_class >= 0
    guided = False
    for b, row in enumerate(rows):  # one lookup per sample, not per token
        key = row_key(spec, row)
        if key is None:
            continue
        out = is_note & ~in_key_mask(key)[np.maximum(spec.pitch_class, 0)]
        bias[b, out] = -strength
        guided = True
    return bias if guided else None
