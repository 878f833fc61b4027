"""Rewriting bars of a primer (``musesynth infill`` in the page): the request's mode and bars, checked before a
job is queued, so a span past the piece's end or a model without infill tokens is one line in the page
instead of a failed job."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from musesynth.errors import MusesynthError
from musesynth.generate.infill import InfillOptions
from musesynth.studio.jobs import number, sampling_from_request
from musesynth.tokenize import Encoding
from musesynth.tokenize.midi_io import load_score

MODES = ("continue", "rewrite")
INFILL_HELP = "pick a model trained on a dataset made with `musesynth data --encoding meter --infill`"


def bars_from_request(body: dict[str, Any]) -> tuple[int, int] | None:
    """The bars to rewrite, counted from 1 (first, last), or None to continue the primer."""
    mode = str(body.get("mode") or "continue")
    if mode not in MODES:
        raise MusesynthError(f"mode must be 'continue' or 'rewrite' (got {mode!r})")
    if mode == "continue":
        return None
    first = number(body, "bars_first", int, None)
    if first is None:
        raise MusesynthError("rewrite: give the first bar to rewrite (bars count from 1)")
    last = number(body, "bars_last", int, first)
    if first < 1 or last < first:
        raise MusesynthError(f"bars {first}-{last}: bars count from 1 and the last may not come before the first")
    return first, last


def check_rewrite(body: dict[str, Any], enc: Encoding, model_id: str, primer: Path | None, primer_name: str,
                  bars: tuple[int, int]) -> None:
    """Everything the infill job would refuse, said now: no primer, no infill tokens, controls the piece keeps,
    bars past its end (counted with the model's own encoding, as the job counts them)."""
    if primer is None:
        raise MusesynthError("rewriting bars needs a primer: upload a MIDI file or pick a corpus piece")
    if not getattr(enc, "infill", False):
        raise MusesynthError(f"{model_id} was not trained for infilling (it has no FILL tokens); {INFILL_HELP}")
    chosen = [name for name in ("key", "composer", "tempo") if body.get(name) not in (None, "")]
    if chosen:
        raise MusesynthError(f"{' and '.join(chosen)} cannot be chosen when rewriting bars: the piece keeps its own")
    try:
        ids = enc.encode(load_score(primer))
    except Exception as exc:  # the upload was read once already; a tokenizer bug is still one line
        raise MusesynthError(f"{primer_name}: cannot count its bars ({type(exc).__name__})") from None
    count = int((ids == enc.bar_id).sum())  # type: ignore[attr-defined]
    if bars[1] > count:
        raise MusesynthError(f"bars {bars[0]}-{bars[1]}: {primer_name} has only {count} bars")


def infill_options_from_request(body: dict[str, Any], bars: tuple[int, int], base: InfillOptions) -> InfillOptions:
    """The page's seed and sampling dials for an infill job (its token budget is the CLI's default)."""
    opt = replace(base, bars=f"{bars[0]}-{bars[1]}", seed=number(body, "seed", int, base.seed),
                  sampling=sampling_from_request(body), num_samples=1)
    opt.validate()
    return opt
