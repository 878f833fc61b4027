"""Voice leading of a set of pieces, the way a harmony teacher marks a chorale, beside held-out Bach.

Voices: a piece with two or more parts (``Piece.part``: its tracks; the parts encoding writes Soprano, Alto,
Tenor, Bass first) is read part by part, part k being voice k, for its first four parts (the instruments
after them double the voices: their parallel octaves are no voice-leading errors). A piece without parts
(one track: the chord, meter and performance encodings) has its voices **derived by pitch order**: at each
instant the k-th highest sounding pitch is voice k (a unison is one voice), so such voices never cross,
and a voice that rests takes the next note down (which adds parallels: the same Bach reads differently
by parts and by pitch order). The report says which reading each set got.

The music is looked at on its onsets (every instant where a note starts); a **chord change** is a step from
one onset to the next. For every set the counts are pooled over its pieces:

- ``parallels_per_100``: parallel fifths and octaves (unisons included; compound intervals too) between any
  two voices per 100 chord changes: both voices sound at two consecutive onsets, both move, in the same
  direction, and the interval between them is a perfect fifth (octave) at both.
- ``crossings``: the share of onsets where a voice sounds below the next lower voice (adjacent voices).
- ``out_of_range``: the share of notes of the top four voices outside their SATB range (Soprano C4-A5,
  Alto F3-D5, Tenor C3-A4, Bass D2-D4: textbook ranges widened by a step or two, as Bach writes them), a
  note counted at its onset.
- ``wide_upper``: the share of onsets (where both sound) with soprano and alto, or alto and tenor, more than
  an octave apart.
- ``over_four``: the share of sounding time with more than four distinct pitches sounding (counted from all
  the notes, whatever the voices; two parts in unison are one pitch, as the merged encodings write them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from musesynth import theory
from musesynth.evaluate.music_stats import Piece

MAX_PARTS = 4  # the voices of a piece with parts: its first four
SATB_RANGES = np.array(theory.SATB_RANGES)  # MIDI pitch, lowest and highest
_EPS = 1e-6


def has_parts(p: Piece) -> bool:
    part = p.part
    return part is not None and part.size > 0 and int(part.max()) >= 1


def voice_grid(p: Piece) -> tuple[np.ndarray, np.ndarray]:
    """Onset times (T,) and the note sounding in each voice at each (T x V indices into the piece's
    notes, -1: the voice is silent), by parts when the piece has them, else by pitch order."""
    onset, end = p.onset, p.onset + p.duration
    times = np.unique(np.round(onset, 6))
    if onset.size == 0:
        return times, np.zeros((0, 0), np.int64)
    if has_parts(p):
        part = np.asarray(p.part, np.int64)
        cols = []
        for v in range(min(int(part.max()) + 1, MAX_PARTS)):
            idx = np.flatnonzero(part == v)
            idx = idx[np.lexsort((p.pitch[idx], onset[idx]))]  # at one onset the highest note is taken
            k = np.searchsorted(onset[idx], times + _EPS, side="right") - 1
            note = idx[np.maximum(k, 0)] if idx.size else np.zeros(times.size, np.int64)
            ok = (k >= 0) & (end[note] > times + _EPS) if idx.size else np.zeros(times.size, bool)
            cols.append(np.where(ok, note, -1))
        return times, np.stack(cols, 1)
    sounding = (onset[None, :] <= times[:, None] + _EPS) & (end[None, :] > times[:, None] + _EPS)  # T x N
    key = np.where(sounding, p.pitch[None, :], -1)
    order = np.argsort(-key, axis=1, kind="stable")
    high = np.take_along_axis(key, order, 1)  # pitches from the top down
    high[:, 1:] = np.where(high[:, 1:] == high[:, :-1], -1, high[:, 1:])  # a unison is one voice
    again = np.argsort(-high, axis=1, kind="stable")
    order, live = np.take_along_axis(order, again, 1), np.take_along_axis(high, again, 1) >= 0
    width = int(live.sum(1).max())
    return times, np.where(live[:, :width], order[:, :width], -1)


def _over_four_time(p: Piece) -> tuple[float, float]:
    """Time with more than four distinct pitches sounding, and time with any, in beats."""
    if p.onset.size == 0:
        return 0.0, 0.0
    end = p.onset + p.duration
    t = np.unique(np.round(np.r_[p.onset, end], 6))
    live = np.zeros((t.size, 128), np.int64)  # notes of each pitch sounding from each boundary on
    pitch = np.asarray(p.pitch, np.int64) % 128
    np.add.at(live, (np.searchsorted(t, np.round(p.onset, 6)), pitch), 1)
    np.add.at(live, (np.searchsorted(t, np.round(end, 6)), pitch), -1)
    count = (np.cumsum(live, 0)[:-1] > 0).sum(1)
    span = np.diff(t)
    return float(span[count > 4].sum()), float(span[count > 0].sum())


def piece_counts(p: Piece) -> dict[str, float]:
    """The counts behind the report for one piece (summed over a set by ``voice_leading``)."""
    times, note = voice_grid(p)
    over, sounding_time = _over_four_time(p)
    c = {"changes": 0.0, "parallels": 0.0, "fifths": 0.0, "octaves": 0.0, "onsets": float(times.size),
         "crossed": 0.0, "notes_top4": 0.0, "out_of_range": 0.0, "upper_pairs": 0.0, "wide_upper": 0.0,
         "over_four_time": over, "sounding_time": sounding_time}
    if note.size == 0:
        return c
    on = note >= 0
    pitch = np.where(on, p.pitch[np.maximum(note, 0)], 0)
    c["changes"] = float(max(times.size - 1, 0))
    if times.size >= 2 and note.shape[1] >= 2:
        i, j = np.triu_indices(note.shape[1], 1)
        both = on[:-1][:, i] & on[:-1][:, j] & on[1:][:, i] & on[1:][:, j]
        di, dj = pitch[1:][:, i] - pitch[:-1][:, i], pitch[1:][:, j] - pitch[:-1][:, j]
        similar = (di != 0) & (dj != 0) & (np.sign(di) == np.sign(dj))
        a, b = np.abs(pitch[:-1][:, i] - pitch[:-1][:, j]) % 12, np.abs(pitch[1:][:, i] - pitch[1:][:, j]) % 12
        fifths = both & similar & (a == 7) & (b == 7)
        octaves = both & similar & (a == 0) & (b == 0)
        c["fifths"], c["octaves"] = float(fifths.sum()), float(octaves.sum())
        c["parallels"] = c["fifths"] + c["octaves"]
    if note.shape[1] >= 2:
        adj = on[:, :-1] & on[:, 1:]
        c["crossed"] = float((adj & (pitch[:, :-1] < pitch[:, 1:])).any(1).sum())
        upper = min(note.shape[1] - 1, 2)  # soprano-alto and alto-tenor
        pair = on[:, :upper] & on[:, 1 : upper + 1]
        c["upper_pairs"] = float(pair.sum())
        c["wide_upper"] = float((pair & (pitch[:, :upper] - pitch[:, 1 : upper + 1] > 12)).sum())
    top = min(note.shape[1], 4)
    starts = on[:, :top] & (np.abs(p.onset[np.maximum(note[:, :top], 0)] - times[:, None]) < _EPS)
    low, high = SATB_RANGES[:top, 0], SATB_RANGES[:top, 1]
    c["notes_top4"] = float(starts.sum())
    c["out_of_range"] = float((starts & ((pitch[:, :top] < low) | (pitch[:, :top] > high))).sum())
    return c


def _ratio(a: float, b: float, scale: float = 1.0) -> float:
    return scale * a / b if b else float("nan")


def voice_leading(pieces: list[Piece]) -> dict[str, Any]:
    """The pooled report of one set of pieces (see the module docstring)."""
    keys = list(piece_counts(Piece(np.zeros(0), np.zeros(0), np.zeros(0, np.int64))))
    total = dict.fromkeys(keys, 0.0)
    for p in pieces:
        for k, v in piece_counts(p).items():
            total[k] += v
    with_parts = sum(has_parts(p) for p in pieces)
    return {
        "voices": "parts" if pieces and with_parts == len(pieces) else "pitch order" if not with_parts else "mixed",
        "pieces": len(pieces),
        "parallels_per_100": _ratio(total["parallels"], total["changes"], 100),
        "fifths_per_100": _ratio(total["fifths"], total["changes"], 100),
        "octaves_per_100": _ratio(total["octaves"], total["changes"], 100),
        "crossings": _ratio(total["crossed"], total["onsets"]),
        "out_of_range": _ratio(total["out_of_range"], total["notes_top4"]),
        "wide_upper": _ratio(total["wide_upper"], total["upper_pairs"]),
        "over_four": _ratio(total["over_four_time"], total["sounding_time"]),
        "chord_changes": int(total["changes"]),
    }


def voice_leading_report(generated: list[Piece], held_out: list[Piece]) -> dict[str, dict[str, Any]]:
    """Generated pieces beside held-out ones (evaluate's ``musicality["voice_leading"]``)."""
    return {"generated": voice_leading(generated), "held_out": voice_leading(held_out)}


def format_voice_leading(r: dict[str, dict[str, Any]]) -> list[str]:
    g, h = r["generated"], r["held_out"]
    return [
        f"voice leading (generated: voices by {g['voices']}; held-out: by {h['voices']}):",
        f"  parallel fifths + octaves per 100 chord changes {g['parallels_per_100']:.2f} (held-out "
        f"{h['parallels_per_100']:.2f}); fifths {g['fifths_per_100']:.2f} / {h['fifths_per_100']:.2f}, octaves "
        f"{g['octaves_per_100']:.2f} / {h['octaves_per_100']:.2f}",
        f"  onsets with crossed voices {g['crossings']:.1%} (held-out {h['crossings']:.1%}); notes outside the SATB "
        f"ranges {g['out_of_range']:.1%} ({h['out_of_range']:.1%}); upper voices more than an octave apart "
        f"{g['wide_upper']:.1%} ({h['wide_upper']:.1%}); time with more than four notes sounding "
        f"{g['over_four']:.1%} ({h['over_four']:.1%})",
    ]
