"""Rewriting bars of a primer (``musesynth infill`` in the page, optionally only some voices) and harmonising a
melody (``musesynth harmonize``): the request's mode, bars, voices and melody, checked before a job is queued,
so a span past the piece's end or a model without infill tokens or parts is one line in the page instead of a
failed job."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from musesynth.errors import BadRequest, MusesynthError
from musesynth.generate.harmonize import HarmonizeOptions, melody_score, parse_voices
from musesynth.generate.infill import InfillOptions, file_labels, parse_parts
from musesynth.generate.layout import satb_layout
from musesynth.generate.run import flags
from musesynth.studio.jobs import (
    FieldError,
    json_type,
    number,
    page_name,
    sampling_from_request,
    seed_from_request,
    text,
)
from musesynth.studio.uploads import encode_within_budget
from musesynth.tokenize import Encoding
from musesynth.tokenize.midi_io import load_score, voice_role

MODES = ("continue", "rewrite", "harmonize")
INFILL_HELP = "pick a model trained on a dataset made with `musesynth data --infill` (the shipped bach-parts model)"
PARTS_HELP = "pick a model that knows parts (the shipped bach-parts model)"


def mode_from_request(body: dict[str, Any]) -> str:
    mode = text(body, "mode") or "continue"
    if mode not in MODES:
        raise FieldError("mode", f"mode must be 'continue', 'rewrite' or 'harmonize' (got {mode!r})")
    return mode


def bars_from_request(body: dict[str, Any]) -> tuple[int, int] | None:
    """The bars to rewrite, counted from 1 (first, last), or None to continue the primer."""
    if mode_from_request(body) != "rewrite":
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
    voices = text(body, "voices")
    if voices is not None:
        parts = enc.parts()
        if parts is None:
            raise FieldError("voices", f"{model_id} does not know parts, so it rewrites every voice: {PARTS_HELP}")
        try:
            lay = satb_layout(enc, ids)  # as infill reads it: a trio may add its tenor, parts named as in the file
            parse_parts(voices, parts, lay.ids, lay.added, file_labels(enc, load_score(primer), lay))
        except BadRequest as exc:  # the page's field for the parts is "voices"
            raise FieldError("voices", exc.worded(page_name)) from None


def check_harmonize(enc: Encoding, model_id: str, info: dict[str, Any]) -> None:
    if not info["parts"]:
        why = "reads pieces in a key-relative frame" if enc.parts() is not None else "does not know parts"
        raise FieldError("model", f"{model_id} {why}, so it cannot harmonise a melody; {PARTS_HELP}")


def harmonize_options_from_request(body: dict[str, Any], base: HarmonizeOptions, melody_voice: int = 0
                                   ) -> HarmonizeOptions:
    """The page's voices, top line, seed and sampling dials for a harmonize job (its token budget is the CLI's
    default); ``melody_voice``: the melody's own voice (an upload's, from ``upload_melody_voice``; else the Soprano)."""
    voices = text(body, "voices")
    top = body.get("top_line", False)
    if not isinstance(top, bool):
        got = repr(top) if isinstance(top, str) else json_type(top)
        raise FieldError("top_line", f"top line must be true or false (got {got})")
    opt = replace(base, voices=voices, seed=seed_from_request(body),
                  sampling=sampling_from_request(body, base.sampling), num_samples=1,
                  particles=number(body, "particles", int, base.particles), top_line=top)
    with flags(names=page_name):
        opt.validate()
    try:
        parse_voices(voices, melody_voice if base.part is None else voice_role(base.part))
    except BadRequest as exc:
        raise FieldError("voices", exc.worded(page_name)) from None
    return opt


def upload_melody_voice(path: Path, name: str) -> int:
    """An uploaded melody's voice (its track's SATB name; else by its register), read before the job is queued, so
    an upload with several tracks and no Soprano is a field error on the page, not a failed job."""
    try:
        return melody_score(str(path), None)[1]
    except BadRequest as exc:
        if exc.field == "part":
            raise FieldError("primer", f"{name} has several tracks with notes and none named Soprano: upload the "
                             f"melody alone, or a score whose top voice is named Soprano") from None
        raise FieldError("primer", exc.worded(page_name)) from None
    except MusesynthError as exc:
        raise FieldError("primer", str(exc)) from None


def infill_options_from_request(body: dict[str, Any], bars: tuple[int, int], base: InfillOptions) -> InfillOptions:
    """The page's seed and sampling dials for an infill job (its token budget is the CLI's default)."""
    opt = replace(base, bars=f"{bars[0]}-{bars[1]}", seed=seed_from_request(body),
                  sampling=sampling_from_request(body), num_samples=1, parts=text(body, "voices"),
                  particles=number(body, "particles", int, base.particles))
    with flags(names=page_name):
        opt.validate()
    return opt
