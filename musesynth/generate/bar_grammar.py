"""Free generation in an encoding of bars and positions (meter, parts): the rules its one-step grammar cannot
state. Before the first BAR only the header (no position, note or repeat mark); within a bar, positions move
forward and stay inside it.

The grammar says what may follow a token, so it lets a model write ``POS_36 ... POS_12`` in one bar, ``POS_156``
in a bar of 48 steps, or notes straight after the time signature. Decoding reads the first as notes starting
before the ones already written (overlapping notes in one voice) and drops the second (``valid`` in
``MeterEncoding._timeline``); no training piece has any of them (the chorales' 410 pieces: every one opens with
its header, then a BAR; no position goes back or past its bar). The shipped meter model wrote one backward
position in four unconditioned pieces; the parts model continuing a trio of instruments (a header it never saw)
wrote 6 backward and 10 past the bar in eight. Infill's middle has had the position rule since it was written
(``infill.FillConstraint``)."""

from __future__ import annotations

import numpy as np
import torch

from musesynth.models.state import RowState
from musesynth.tokenize.meter import T_BAR, T_DUR, T_NOTE, T_PHRASE, T_POS, T_REPEAT, T_RUN, T_TIMESIG, MeterEncoding

BAR_CONTENT = (T_POS, T_NOTE, T_DUR, T_PHRASE, T_REPEAT, T_RUN)  # what only comes inside a bar


class BarGrammar(RowState):
    """Inside a bar only after the first BAR; a POS only after the bar's last one and before the bar's end (its
    time signature's length)."""

    ROWS = ("pos", "bar_len", "started")  # the per-sample state

    def __init__(self, enc: MeterEncoding, rows: np.ndarray, device: torch.device) -> None:
        typ = enc.token_type
        t = lambda a: torch.as_tensor(np.asarray(a), device=device)  # noqa: E731
        self.is_pos, self.is_bar, self.is_ts = t(typ == T_POS), t(typ == T_BAR), t(typ == T_TIMESIG)
        self.in_bar = t(np.isin(typ, BAR_CONTENT) | enc.is_note)  # a parts model's notes have their own type
        self.pos_of = t(np.where(typ == T_POS, enc.pos_of, -1))
        self.ts_len = t(np.where(typ == T_TIMESIG, enc.ts_len[enc.ts_of], 0))
        self.pos, self.bar_len, self.started = (t(x) for x in prompt_state(enc, np.atleast_2d(np.asarray(rows,
                                                                                                         np.int64))))

    def allowed(self, allowed: torch.Tensor | None, prev: torch.Tensor) -> torch.Tensor | None:
        pos = self.pos_of[None, :]
        bad = self.is_pos[None, :] & ((pos <= self.pos[:, None]) | (pos >= self.bar_len[:, None]))
        bad |= self.in_bar[None, :] & ~self.started[:, None]
        if allowed is None:
            return ~bad
        narrowed = allowed & ~bad
        return torch.where(narrowed.any(1, keepdim=True), narrowed, allowed)  # never leave a sample nothing

    def advance(self, tok: torch.Tensor) -> None:
        bar = self.is_bar[tok]
        self.started |= bar
        self.bar_len = torch.where(self.is_ts[tok], self.ts_len[tok], self.bar_len)
        self.pos = torch.where(bar, -1, torch.where(self.is_pos[tok], self.pos_of[tok], self.pos))


def prompt_state(enc: MeterEncoding, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's last position in its last bar (-1: none yet), that bar's length and whether a bar has begun,
    read from the prompt at once (a bar's TIMESIG follows its BAR; the header's sets the first bar's)."""
    typ, at = enc.token_type[rows], np.arange(len(rows))
    col = np.arange(rows.shape[1])[None, :]
    last_bar = np.where(typ == T_BAR, col, -1).max(1)
    at_pos = np.where((typ == T_POS) & (col > last_bar[:, None]), col, -1).max(1)
    pos = np.where(at_pos >= 0, enc.pos_of[rows[at, np.maximum(at_pos, 0)]], -1)
    at_ts = np.where(typ == T_TIMESIG, col, -1).max(1)
    length = np.where(at_ts >= 0, enc.ts_len[enc.ts_of[rows[at, np.maximum(at_ts, 0)]]], enc.ts_len[enc.default_ts])
    return pos.astype(np.int64), length.astype(np.int64), last_bar >= 0


def bar_grammar(enc: object, rows: np.ndarray, device: torch.device) -> BarGrammar | None:
    """The rules for an encoding of bars and positions (None for others: chord, performance)."""
    return BarGrammar(enc, rows, device) if isinstance(enc, MeterEncoding) else None
