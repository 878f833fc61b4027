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

from musesynth.errors import BadRequest
from musesynth.models.state import RowState
from musesynth.tokenize import Encoding
from musesynth.tokenize.base import HeaderControls


def check_controls(enc: Encoding, composer: str | None, tempo: float | None) -> int | None:
    """Validate the requests against the checkpoint's vocabulary; the forced tempo token (or None)."""
    if composer is None and tempo is None:
        return None
    ctl = enc.header_controls()
    if ctl is None:
        raise BadRequest("composer", f"and {{tempo}} need a model trained on the meter encoding (this one is "
                         f"'{enc.name}')")
    if composer is not None:
        ctl.composer_token_id(composer)
    return ctl.tempo_token_id(tempo) if tempo is not None else None


def draw_composers(enc: Encoding, rows: np.ndarray, prior: list[float] | None, seed: int) -> list[str | None]:
    """A composer for each row that has none, for models trained with composer tokens (every training piece
    had one, so a header without one is unlike anything the model saw): drawn from the training
    corpus' shares (``prior``; uniform for checkpoints saved without it). None where the row has one or
    the model knows no composers."""
    ctl = enc.header_controls()
    names = ctl.composers if ctl is not None else ()
    if ctl is None or not names:
        return [None] * len(rows)
    p = np.asarray(prior if prior is not None and len(prior) == len(names) else np.ones(len(names)), float)
    drawn = np.random.default_rng([seed, 25]).choice(len(names), size=len(rows), p=p / p.sum())
    return [None if ctl.composer_of(r) is not None else names[d] for r, d in zip(rows, drawn)]


def apply_controls(enc: Encoding, rows: np.ndarray, composer: str | None, tempo: float | None,
                   prior: list[float] | None = None, seed: int = 0) -> np.ndarray:
    """Primer rows with the composer inserted (asked for, or drawn by ``draw_composers``) and a header
    tempo (if the primer has one) replaced."""
    out = [np.asarray(r, np.int64) for r in rows]
    names = [composer] * len(out) if composer is not None else draw_composers(enc, rows, prior, seed)
    ctl = enc.header_controls()
    if ctl is None or (not any(names) and tempo is None):
        return rows
    if any(names):
        out = [ctl.set_composer(r, c) if c else r for r, c in zip(out, names)]
    if tempo is not None:
        out = [ctl.set_tempo(r, tempo) for r in out]
    return np.stack(out)


class HeaderTempo(RowState):
    """Forces ``token`` right after the header's time signature, in rows whose primer has no tempo yet."""

    ROWS = ("pending",)  # the per-sample state

    def __init__(self, enc: HeaderControls, token: int, rows: np.ndarray, device: torch.device) -> None:
        typ = enc.token_type
        self.after = torch.as_tensor(typ == typ[enc.ts0], device=device)
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
