"""Key guidance: a piece asked for in a key should stay in it.

The KEY token alone does not hold a piece in its key (measurements: docs/pretrained-notes.md, "Sampling
defaults"). So, as a sampling dial like temperature, notes whose pitch class lies
outside the key's scale get ``strength`` log-odds less. The scale is the major scale, or for minor
the natural minor with the raised sixth and seventh (melodic / harmonic minor), so a leading tone
costs nothing. Chromatic notes stay possible: at strength 1 (odds / e) a chromatic note the model
rates 3x as likely as the best in-key note still wins. Each sample is guided by the key in its own header.
"""

from __future__ import annotations

import numpy as np
import torch

from musesynth.models.state import RowState
from musesynth.theory import FULL_CHORD, IN_KEY
from musesynth.tokenize.base import KeySpec


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


class TonicBass(RowState):
    """Which samples' latest onset is a close in the header's key, step by step on the device.

    Chorales close on the tonic chord; a model drawn to an end (``Sampling.ending``) also closes on a half
    cadence or in the key it drifted to (docs/pretrained-notes.md, "Endings"). The ending ramp is given only
    where the latest onset stands on the tonic and has struck a full chord (at least ``FULL`` notes, or as
    many as the fullest chord so far where the texture is thinner), so a piece stops at a close in its own
    key and never before its chord is struck (its bass, the lowest note, may come first or last: the parts
    encoding writes the soprano first); elsewhere EOS keeps the model's own odds.
    Rows without a key (``keyed`` False) are never closed: the decoder gives them the plain ramp."""

    FULL = FULL_CHORD
    ROWS = ("tonic", "keyed", "low", "notes", "fullest")  # the per-sample state

    def __init__(self, spec: KeySpec, rows: np.ndarray, device: torch.device) -> None:
        assert spec.onset is not None and spec.pitch is not None
        tonic = [row_key(spec, row) for row in np.atleast_2d(np.asarray(rows, np.int64))]  # once per sample
        self.tonic = torch.tensor([-1 if k is None else k % 12 for k in tonic], device=device)
        self.keyed = self.tonic >= 0
        self.onset = torch.as_tensor(spec.onset, device=device)
        self.pitch = torch.as_tensor(spec.pitch, device=device)
        self.low = torch.full_like(self.tonic, -1)  # the lowest pitch struck at the latest onset (-1: none yet)
        self.notes = torch.zeros_like(self.tonic)  # notes struck at the latest onset
        self.fullest = torch.zeros_like(self.tonic)


    def advance(self, tok: torch.Tensor) -> None:
        pitch, onset = self.pitch[tok], self.onset[tok]
        lower = (pitch >= 0) & ((self.low < 0) | (pitch < self.low))
        self.low = torch.where(onset, torch.full_like(self.low, -1), torch.where(lower, pitch, self.low))
        self.notes = torch.where(onset, torch.zeros_like(self.notes), self.notes + (pitch >= 0).long())
        self.fullest = torch.maximum(self.fullest, self.notes)

    def closed(self) -> torch.Tensor:
        """(B,) bool: the latest onset is a full chord on the row's tonic (False for a row without a key)."""
        full = self.notes >= torch.clamp(self.fullest, max=self.FULL)
        return self.keyed & (self.low >= 0) & (self.low % 12 == self.tonic) & full & (self.notes > 0)
