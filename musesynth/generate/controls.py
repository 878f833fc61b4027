"""Composer and tempo control (meter encoding): the header tokens a model was trained to condition on.

``--composer NAME`` puts ``COMPOSER_<name>`` right after BOS (the names the checkpoint's vocabulary
knows; any other is a one-line error listing them). ``--tempo BPM`` sets the header's TEMPO token to the
bin nearest BPM: in a primer's header it is replaced; without a primer the model writes its header
(key, meter) and the sampler forces the TEMPO right after the header's time signature, so the model
still picks the meter but plays it at the tempo asked for.
"""

from __future__ import annotations

import numpy as np
import torch

from musesynth.errors import MusesynthError
from musesynth.tokenize import Encoding


def check_controls(enc: Encoding, composer: str | None, tempo: float | None) -> int | None:
    """Validate the requests against the checkpoint's vocabulary; the forced tempo token (or None)."""
    if (composer is not None or tempo is not None) and not hasattr(enc, "set_composer"):
        raise MusesynthError(f"--composer and --tempo need a model trained on the meter encoding (this one is "
                             f"'{enc.name}')")
    if composer is not None:
        enc.composer_token_id(composer)  # type: ignore[attr-defined]
    return enc.tempo_token_id(tempo) if tempo is not None else None  # type: ignore[attr-defined]


def apply_controls(enc: Encoding, rows: np.ndarray, composer: str | None, tempo: float | None) -> np.ndarray:
    """Primer rows with the composer inserted and a header tempo (if the primer has one) replaced."""
    if composer is None and tempo is None:
        return rows
    out = [np.asarray(r, np.int64) for r in rows]
    if composer is not None:
        out = [enc.set_composer(r, composer) for r in out]  # type: ignore[attr-defined]
    if tempo is not None:
        out = [enc.set_tempo(r, tempo) for r in out]  # type: ignore[attr-defined]
    return np.stack(out)


class HeaderTempo:
    """Forces ``token`` right after the header's time signature, in rows whose primer has no tempo yet."""

    def __init__(self, enc: Encoding, token: int, rows: np.ndarray, device: torch.device) -> None:
        typ = enc.token_type  # type: ignore[attr-defined]
        self.after = torch.as_tensor(typ == typ[enc.ts0], device=device)  # type: ignore[attr-defined]
        self.token = token
        has_tempo = (typ[np.asarray(rows)] == typ[token]).any(1)
        self.pending = torch.as_tensor(~has_tempo, device=device)

    def allowed(self, allowed: torch.Tensor | None, prev: torch.Tensor) -> torch.Tensor | None:
        force = self.pending & self.after[prev]
        if allowed is None or not bool(force.any()):
            return allowed
        only = torch.zeros_like(allowed)
        only[:, self.token] = True
        return torch.where(force[:, None], only, allowed)

    def advance(self, tok: torch.Tensor) -> None:
        self.pending &= tok != self.token  # forced once, right after the header's time signature
