"""Rewriting bars of a primer (``musesynth infill`` in the page): the request's mode and bars, checked before a
job is queued, so a span past the piece's end or a model without infill tokens is one line in the page
instead of a failed job."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from musesynth.errors import MusesynthError
from musesynth.generate.infill import InfillOptions
from musesynth.studio.jobs import FieldError, number, sampling_from_request, seed_from_request, text
from musesynth.studio.uploads import encode_within_budget
from musesynth.tokenize import Encoding

MODES = ("continue", "rewrite")
INFILL_HELP = "pick a model trained on a dataset made with `musesynth data --encoding meter --infill`"


def bars_from_request(body: dict[str, Any]) -> tuple[int, int] | None:
    """The bars to rewrite, counted from 1 (first, last), or None to continue the primer."""
    mode = text(body, "mode") or "continue"
    if mode not in MODES:
        raise FieldError("mode", f"mode must be 'continue' or 'rewrite' (got {mode!r})")
    if mode == "continue":
        return None
    first = number(body, "bars_first", int, None)
    if first is None:
        raise FieldError("bars_first", "rewrite: give the first bar to rewrite (bars count from 1)")
    last = number(body, "bars_last", int, first)
    if first < 1 or last < first:
        raise FieldError("bars_first", f"bars {first}-{last}: bars count from 1 and the last may not come before "
                         f"the first")
    return first, last


def check_rewrite(body: dict[str, Any], enc: Encoding, model_id: str, primer: Path | None, primer_name: str,
                  bars: tuple[int, int]) -> None:
    """Everything the infill job would refuse, said now: no primer, no infill tokens, controls the piece keeps,
    bars past its end (counted with the model's own encoding, as the job counts them)."""
    if primer is None:
        raise FieldError("primer", "rewriting bars needs a primer: upload a MIDI file or pick a corpus piece")
    inf = enc.bar_infill()
    if inf is None:
        raise FieldError("model", f"{model_id} was not trained for infilling (it has no FILL tokens); {INFILL_HELP}")
    chosen = [name for name in ("key", "composer", "tempo") if body.get(name) not in (None, "")]
    if chosen:
        raise FieldError(chosen[0], f"{' and '.join(chosen)} cannot be chosen when rewriting bars: the piece keeps "
                         f"its own")
    try:
        ids = encode_within_budget(primer, enc)
    except MusesynthError as exc:
        raise FieldError("primer", f"{primer_name}: {exc}") from None
    count = int((ids == inf.bar_id).sum())
    if bars[1] > count:
        raise FieldError("bars_last", f"bars {bars[0]}-{bars[1]}: {primer_name} has only {count} bars")


def infill_options_from_request(body: dict[str, Any], bars: tuple[int, int], base: InfillOptions) -> InfillOptions:
    """The page's seed and sampling dials for an infill job (its token budget is the CLI's default)."""
    opt = replace(base, bars=f"{bars[0]}-{bars[1]}", seed=seed_from_request(body),
                  sampling=sampling_from_request(body), num_samples=1)
    opt.validate()
    return opt
