"""Writing a piece in its voices' ranges: the semitones `harmonize` and `infill` move a piece by before the model
writes (and move its new notes back by after), so a melody or parts above a choir's range (a fiddle tune, a flute
duet) are heard in the register the model learnt, and come back as they were.

The shipped model learnt four voices within theory's SATB ranges. Asked to rewrite the second flute of a duet an
octave above the soprano and alto, it wrote the new line an octave low (median MIDI 70-72 under a first flute at
86); harmonised a fiddle tune up to E6, it wrote a soprano it never saw.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from musesynth.errors import BadRequest, literal
from musesynth.theory import SATB_RANGES
from musesynth.tokenize.midi_io import OTHER, PIANO_HIGH, PIANO_LOW

# the lowest bass and highest soprano note any voice sings (D2-A5)
LOWEST, HIGHEST = min(lo for lo, _ in SATB_RANGES), max(hi for _, hi in SATB_RANGES)
LOW_MELODY = 54  # a melody not named as a voice whose median pitch is at most F#3 is a bass line (a bassoon's)
SLACK = 3  # semitones a part may stray past its voice's range before a piece is moved (chorale basses reach C2)


def parse_transpose(value: str | int) -> str | int:
    """"auto" or a whole number of semitones (a string from the command line or a form is read as one)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        n = int(value.strip()) if isinstance(value, str) else value
    except ValueError:
        n = None
    if isinstance(n, bool) or not isinstance(n, int) or abs(n) > 127:
        raise BadRequest("transpose", f"must be auto or a whole number of semitones from -127 to 127 "
                                      f"(got {literal(repr(value))})")
    return n


def register_voice(pitch: np.ndarray) -> int:
    """The voice of a melody its track does not name: the Bass for a line as low as a bass sings (median at most
    ``LOW_MELODY``), else the Soprano (a tune on top)."""
    return len(SATB_RANGES) - 1 if pitch.size and float(np.median(pitch)) <= LOW_MELODY else 0


def moved_by(shift: int) -> str:
    """How a summary says a shift: "10 semitone(s) lower"."""
    return f"{abs(shift)} semitone(s) {'higher' if shift > 0 else 'lower'}"


def outside(lines: list[tuple[int, int, int]], shift: int) -> int:
    """Semitones that ``lines`` ((lowest, highest, voice) each) lie outside their voices' ranges, moved by ``shift``."""
    return sum(max(SATB_RANGES[v][0] - lo - shift, 0) + max(hi + shift - SATB_RANGES[v][1], 0) for lo, hi, v in lines)


def fit_shift(lines: list[tuple[int, int, int]], low: int, high: int) -> int:
    """The shift in [``low``, ``high``] that leaves the fewest semitones of ``lines`` outside their voices' ranges,
    the smallest such; 0 where there is none."""
    shifts = range(low, high + 1)
    if not shifts:
        return 0
    return min(shifts, key=lambda k: (outside(lines, k), abs(k)))


def piece_lines(q: dict[str, Any], legato: int) -> list[tuple[int, int, int]]:
    """(lowest, highest, voice) of each part of a decoded parts piece (``decode_quantized``) that sings a voice
    (its header role; a part that plays chords, Other, has no voice's range). A piece of one instrument playing one
    line (a solo flute, a fiddle tune: laid out as no voice) is the voice its register says (``register_voice``),
    as harmonize reads a melody (a solo flute an octave above a soprano was never moved; review helper)."""
    if "part" not in q or not len(q["pitch"]):
        return []
    from musesynth.generate.voices import one_line

    pitch, part = np.asarray(q["pitch"], np.int64), np.asarray(q["part"], np.int64)
    roles = [int(r) for r in q["role"]]
    if len(roles) == 1 and roles[0] >= OTHER and one_line(q["onset"], q["duration"], legato):
        roles = [register_voice(pitch)]
    elif roles and min(roles) >= OTHER:  # instruments the layout kept as they were (a quartet listed from the top)
        from musesynth.generate.layout import register_roles

        roles = [int(r) for r in register_roles(q, np.asarray(roles, np.int64), legato)[0]]
    return [(int(pitch[part == p].min()), int(pitch[part == p].max()), r) for p, r in enumerate(roles)
            if r < OTHER and (part == p).any()]


def crossed(q: dict[str, Any]) -> bool:
    """Whether a voice's part lies above a higher voice's (by median): the piece's lines are out of the voices'
    order, which no transposition mends."""
    pitch, part = np.asarray(q["pitch"], np.float64), np.asarray(q["part"], np.int64)
    medians = [(r, float(np.median(pitch[part == p]))) for p, r in enumerate(int(x) for x in q["role"])
               if r < OTHER and (part == p).any()]
    return any(m2 > m1 for r1, m1 in medians for r2, m2 in medians if r2 > r1)  # two parts of one voice may cross


def piece_shift(q: dict[str, Any], transpose: str | int, legato: int) -> int:
    """Semitones to write a piece's new notes at (``infill``, ``generate``): ``transpose`` itself when a number
    (refused where it moves a note off the piano: the new notes came back folded to its edges); with "auto", 0
    unless a voice's part strays more than ``SLACK`` semitones past its range (none of the 410 chorales does, and 3
    of the 500 JS Fakes), else the fewest semitones that bring the parts in, every note staying on the piano. A
    flute duet an octave above the soprano and alto is written an octave down. ``legato``: grid steps a note may
    sound into the next one's and still be one line (``voices.one_line``)."""
    pitch = np.asarray(q["pitch"], np.int64)
    if transpose != "auto":
        return on_piano(pitch, int(transpose))
    lines = piece_lines(q, legato)
    if not lines or not any(max(SATB_RANGES[v][0] - lo, hi - SATB_RANGES[v][1]) > SLACK for lo, hi, v in lines):
        return 0
    if crossed(q):  # a flute above its Soprano, in the alto's place: no shift brings both in (one moved up to 84)
        return 0
    return fit_shift(lines, PIANO_LOW - int(pitch.min()), PIANO_HIGH - int(pitch.max()))


def on_piano(pitch: np.ndarray, shift: int) -> int:
    """``shift``, where it keeps every note of ``pitch`` on the piano (MIDI 21-108), else a one-line error."""
    if shift and pitch.size and not (PIANO_LOW <= int(pitch.min()) + shift and int(pitch.max()) + shift <= PIANO_HIGH):
        lo, hi = int(pitch.min()), int(pitch.max())
        raise BadRequest("transpose", f"{shift:+d} moves notes off the piano: the piece spans MIDI {lo}-{hi}, so a "
                                      f"shift from {PIANO_LOW - lo:+d} to {PIANO_HIGH - hi:+d} (or auto)")
    return shift
