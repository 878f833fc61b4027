"""MIDI a DAW takes as it is: the primer's meter kept when the encoding has none, and a marker where
the generated music starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import symusic

from musesynth.errors import MidiReadError
from musesynth.tokenize.midi_io import load_score

GENERATED_MARKER = "musesynth: generated from here"


def seconds_of(score: symusic.Score) -> float:
    """The score's length in seconds (to 0.01 s), 0 without notes: what a result's sidecar reports."""
    return round(float(score.to("second").end()) if score.note_num() else 0.0, 2)


def daw_ready(score: symusic.Score, primer: Path | None, boundary_beats: float | None) -> symusic.Score:
    """Mark the primer/generation boundary; without time signatures in the tokens (the chord encoding
    writes 4/4), take the primer's, rescaled to the piece's ticks."""
    tpq = score.ticks_per_quarter
    if primer is not None and _default_meter(score):
        try:
            src = load_score(primer)
        except MidiReadError:
            src = None
        ts = src.time_signatures.numpy() if src is not None else None
        if ts is not None and len(ts["time"]):
            score.time_signatures = symusic.TimeSignature.from_numpy(
                time=np.rint(ts["time"] * tpq / src.ticks_per_quarter).astype(np.int32),
                numerator=ts["numerator"], denominator=ts["denominator"])
    if boundary_beats is not None and boundary_beats > 0:
        score.markers.append(symusic.TextMeta(int(round(boundary_beats * tpq)), GENERATED_MARKER))
    return score


def _default_meter(score: symusic.Score) -> bool:
    ts = score.time_signatures.numpy()
    return len(ts["time"]) == 1 and ts["time"][0] == 0 and (ts["numerator"][0], ts["denominator"][0]) == (4, 4)
