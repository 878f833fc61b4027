"""Cutting a primer by seconds without losing its meter or tempo map.

symusic's ``score.to("second").clip(...)`` drops every time signature and the tempo in force at the cut's
start (so a 3/4 primer at 90 BPM came back as 4/4 at 120 BPM): the cut is made in ticks instead, at the
tick the tempo map puts ``seconds`` at."""

from __future__ import annotations

import symusic

DEFAULT_MSPQ = 500_000  # 120 BPM: MIDI's tempo before the first tempo event


def tick_at(score: symusic.Score, seconds: float) -> int:
    """The tick reached after ``seconds`` of playing, following the score's tempo changes."""
    tpq = score.ticks_per_quarter
    changes = sorted((int(t.time), int(t.mspq)) for t in score.tempos)
    if not changes or changes[0][0] > 0:
        changes.insert(0, (0, DEFAULT_MSPQ))
    elapsed, tick, mspq = 0.0, 0, changes[0][1]
    for time, next_mspq in changes[1:]:
        span = (time - tick) * mspq / 1e6 / tpq
        if elapsed + span >= seconds:
            break
        elapsed, tick, mspq = elapsed + span, time, next_mspq
    return tick + int(round((seconds - elapsed) * 1e6 * tpq / mspq))


def clip_seconds(score: symusic.Score, seconds: float) -> symusic.Score:
    """The notes starting in the first ``seconds``, with the time signatures, keys and tempos kept (seconds past the
    end: the whole piece; the tick is bounded so that symusic's 32-bit clip takes it)."""
    return score.clip(0, min(tick_at(score, seconds), int(score.end()) + 1))
