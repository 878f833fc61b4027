"""A melody typed on the studio page (``C5 D5 E5:2 r B4:0.5``) as a one-track MIDI file that harmonize reads.

The notation, one note per word: a pitch name (A-G, then ``#`` or ``b`` any number of times, then the octave,
middle C is C4) or ``r`` for a rest, and optionally ``:`` and its length in quarter notes (a number, or a fraction
such as ``1/2``; default 1). Bar lines ``|`` may be typed for reading and are ignored: the bars come from the meter.
Before the first note, ``3/4`` (or any n/2, n/4, n/8) sets the meter and ``bpm=96`` the tempo (default 4/4 at
80 BPM); rests first make a pickup (``3/4 r:2 G4 | ...``: the tune starts on beat 3 of a first bar whose
opening is silent).
"""

from __future__ import annotations

import re
from fractions import Fraction

import symusic

from musesynth.errors import MusesynthError

MAX_NOTES = 512  # a chorale melody has 40-80 notes; a typed tune of more is a paste gone wrong
MAX_BEATS = 16  # one note's length
TPQ = 480
_WORD = re.compile(r"^(?:(?P<rest>[rR])|(?P<step>[A-Ga-g])(?P<acc>(?:#|b)*)(?P<octave>-?\d))"
                   r"(?::(?P<beats>\d+(?:\.\d+)?|\d+/\d+))?$", re.ASCII)
_STEPS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_METER = re.compile(r"^(?P<num>\d{1,2})/(?P<den>\d{1,2})$", re.ASCII)
_BPM = re.compile(r"^bpm=(?P<bpm>\d{1,3}(?:\.\d+)?)$", re.ASCII | re.IGNORECASE)
DEFAULT_METER, DEFAULT_BPM = (4, 4), 80.0


def parse_heading(words: list[str]) -> tuple[tuple[int, int], float, int]:
    """The meter and tempo words before the first note, and how many words they take."""
    meter, bpm, n = DEFAULT_METER, DEFAULT_BPM, 0
    for w in words[:2]:
        if (m := _METER.match(w)) is not None:
            num, den = int(m["num"]), int(m["den"])
            if not (1 <= num <= 16 and den in (2, 4, 8) and num * 4 <= 16 * den):
                raise MusesynthError(f"meter '{w}': the studio takes beats of a half, quarter or eighth note, at "
                                     f"most 16 quarter notes a bar (e.g. 3/4, 2/2, 6/8)")
            meter = (num, den)
        elif (m := _BPM.match(w)) is not None:
            bpm = float(m["bpm"])
            if not 20 <= bpm <= 300:
                raise MusesynthError(f"tempo '{w}': give 20-300 beats per minute")
        else:
            break
        n += 1
    return meter, bpm, n


def parse_melody(text: str) -> tuple[list[tuple[int | None, Fraction]], tuple[int, int], float]:
    """``(MIDI pitch or None for a rest, beats)`` per note word, the meter and the tempo; a one-line error names
    the first bad word."""
    words = [w for w in str(text).replace("|", " ").replace(",", " ").split() if w]
    meter, bpm, heading = parse_heading(words)
    words = words[heading:]
    if not words:
        raise MusesynthError("type a melody: note names with octaves, e.g. C5 D5 E5:2 (':2' is two beats)")
    if len(words) > MAX_NOTES:
        raise MusesynthError(f"a typed melody may have at most {MAX_NOTES} notes (got {len(words)})")
    out: list[tuple[int | None, Fraction]] = []
    for i, w in enumerate(words, 1):
        m = _WORD.match(w)
        if m is None:
            raise MusesynthError(f"note {i} '{w[:20]}': write a pitch and octave (C4 is middle C, F#4, Bb3) or r for "
                                 f"a rest, then optionally :beats (e.g. G4:2, r:1/2)")
        if m["beats"] and "/" in m["beats"] and int(m["beats"].split("/")[1]) == 0:
            raise MusesynthError(f"note {i} '{w[:20]}': a length cannot divide by 0")
        beats = Fraction(m["beats"] or "1")
        if not 0 < beats <= MAX_BEATS:
            raise MusesynthError(f"note {i} '{w[:20]}': a length must be above 0 and at most {MAX_BEATS} beats")
        if m["rest"]:
            out.append((None, beats))
            continue
        acc = m["acc"].count("#") - m["acc"].count("b")
        pitch = 12 * (int(m["octave"]) + 1) + _STEPS[m["step"].lower()] + acc
        if not 21 <= pitch <= 108:
            raise MusesynthError(f"note {i} '{w[:20]}' is outside the piano (A0-C8)")
        out.append((pitch, beats))
    if all(p is None for p, _ in out):
        raise MusesynthError("the typed melody has only rests")
    return out, meter, bpm


def melody_score(notes: list[tuple[int | None, Fraction]], bpm: float = DEFAULT_BPM,
                 meter: tuple[int, int] = DEFAULT_METER) -> symusic.Score:
    """The notes on one track named Soprano, in ``meter`` at ``bpm``."""
    score = symusic.Score(TPQ)
    score.tempos.append(symusic.Tempo(0, bpm))
    score.time_signatures.append(symusic.TimeSignature(0, *meter))
    track = symusic.Track(name="Soprano", program=0)
    t = Fraction(0)
    for pitch, beats in notes:
        if pitch is not None:
            track.notes.append(symusic.Note(int(t * TPQ), int(beats * TPQ), pitch, 80))
        t += beats
    score.tracks.append(track)
    return score


def melody_midi(text: str) -> bytes:
    """The typed melody, in its meter and tempo, as the bytes of a MIDI file (the studio writes it as it writes an
    upload)."""
    notes, meter, bpm = parse_melody(text)
    return bytes(melody_score(notes, bpm, meter).dumps_midi())
