"""Where a parts model expects each voice: the layout a piece of fewer SATB voices is read in.

A part's NOTE tokens name its place in the header (``NOTE_67_P1``: the second part), not its role, and a model
trained on four-voice chorales learnt the places: the second part sings like an alto whatever the header names
it. So a trio of Soprano, Alto and Bass, read as three parts, had its bass written in the tenor's place and
register. ``satb_places`` lays such a piece out as four parts with the missing voice's place empty; the callers
let the model write that voice as it learnt to (in harmonize, infill and continuations) and drop it unless it
was asked for."""

from __future__ import annotations

import numpy as np

from musesynth.tokenize import Encoding
from musesynth.tokenize.midi_io import OTHER, VOICES


def satb_places(enc: Encoding, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The piece (token ids, natural order) laid out in the SATB places of a model of four parts, and the places
    added (empty): the same notes in the same order, each in its voice's place (the shipped model's infill of 10
    chorales without their tenor, ``--parts B``: the bass at median MIDI 59 read as three parts, 52 laid out as
    four, as Bach's). Only a piece of SATB voices alone, fewer than four, is laid out again; any other comes back
    as it is (no place added)."""
    parts = enc.parts()
    none = np.zeros(0, np.int64)
    if parts is None or parts.max_parts < len(VOICES):
        return ids, none
    q = parts.decode_quantized(ids)
    role = np.asarray(q["role"], np.int64)
    if not 0 < role.size < len(VOICES) or (role >= OTHER).any() or np.unique(role).size != role.size:
        return ids, none
    program = np.zeros(len(VOICES), np.int64)
    program[role] = np.asarray(q["program"], np.int64)
    q = {**q, "part": role[np.asarray(q["part"], np.int64)], "role": np.arange(len(VOICES), dtype=np.int64),
         "program": program}
    return parts.encode_quantized(q), np.setdiff1d(np.arange(len(VOICES)), role)


def declared_parts(enc: Encoding, ids: np.ndarray) -> int | None:
    """How many parts the piece's header declares (None: an encoding without parts)."""
    parts = enc.parts()
    return None if parts is None else int(parts.parts_of(ids)[0].size)
