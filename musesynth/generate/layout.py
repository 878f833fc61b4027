"""Where a parts model expects each voice: the layout a piece of fewer SATB voices is read in.

A part's NOTE tokens name its place in the header (``NOTE_67_P1``: the second part), not its role, and a model
trained on four-voice chorales learnt the places: the second part sings like an alto whatever the header names
it. So a trio of Soprano, Alto and Bass, read as three parts, had its bass written in the tenor's place and
register. ``satb_layout`` lays such a piece out as four parts with the missing voice's place empty (an instrument
beside the voices left out); the callers let the model write that voice as it learnt to (in infill and
continuations; harmonize writes all four itself) and drop it unless it was asked for."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from musesynth.theory import SATB_RANGES
from musesynth.tokenize import Encoding
from musesynth.tokenize.midi_io import OTHER, VOICES

CENTRES = np.array([(lo + hi) / 2 for lo, hi in SATB_RANGES])  # each voice's place, by the middle of its range
INVERSION = 2  # semitones a part's median may lie above the one listed before it and still read as below it


@dataclass
class Layout:
    """A piece (token ids, natural order) in the places a model of four parts learnt: the places added (voices
    the piece lacks, empty), the piece's parts left out (instruments and a voice's second track, by their index in
    the piece's part order: a caller copies them as they are), which of the piece's notes (their indices in its
    decoding order, in the laid-out piece's order: a quartet listed from the cello writes its notes at an onset
    from the violin now) the laid-out piece holds (None: all, in the same order), and where each of the piece's
    parts went."""

    ids: np.ndarray
    added: np.ndarray
    unheard: np.ndarray
    notes: np.ndarray | None = None
    places: np.ndarray | None = None  # each of the piece's parts' place in the laid-out piece (-1: left out)
    by_register: bool = False  # the piece's parts are instruments, placed by register (``register_roles``)

    def place_of(self, parts: int) -> np.ndarray:
        """The laid-out place of each of the piece's ``parts`` parts (-1: left out)."""
        return np.arange(parts, dtype=np.int64) if self.places is None else self.places


def satb_layout(enc: Encoding, ids: np.ndarray, places: np.ndarray | None = None) -> Layout:
    """The piece laid out in its voices' SATB places when some place is missing (the shipped model's infill of 10
    chorales without their tenor, ``--parts B``: the bass at median MIDI 59 read as three parts, 52 laid out as
    four, as Bach's). Beside the voices, an instrument or a voice's second track would take a voice's place (a
    trio with a horn: the horn in the bass's, the bass in the tenor's), so where the model drops extra parts they
    are left out (should the voices' notes then move, the piece comes back as it is, as one of no SATB voices or
    of all four does, or one of a single voice among instruments: a band's "Bass" beside "Lead Vocal" and "Piano"
    is no choir missing three voices, and leaving every other track out of the model's hearing lost them). A
    horn's lead-in shorter than a bar is left out too: the voices then read as a pickup (the same steps; only the
    decoded ``offset`` and ``pickup`` differ, so a caller writing the result on the input's time line takes those
    from the input as read). ``places``: the place of each of the piece's parts, where the piece's instruments are
    placed by register (a primer's, as the whole file places them: a bassoon entering later takes the bass's place,
    not a clarinet that is lowest in the primer alone)."""
    parts = enc.parts()
    none = np.zeros(0, np.int64)
    same = Layout(ids, none, none)
    if parts is None or parts.max_parts < len(VOICES):
        return same
    q = parts.decode_quantized(ids)
    role = np.asarray(q["role"], np.int64)
    by_register = bool((role == OTHER).any() and (role < OTHER).sum() <= 1)
    chordal = np.zeros(role.size, bool)  # parts placed by register that play chords: Other in the header
    if by_register:
        role, chordal = register_roles(q, role, parts.resolution // 4)
        if places is not None and places.size == role.size and (role < OTHER).all():
            role = places
        by_register = bool((role < OTHER).all())
    first = np.array([r < OTHER and r not in role[:i] for i, r in enumerate(role)], bool)  # each voice's own part
    voices = role[first]
    if np.array_equal(voices, np.arange(len(VOICES))):  # four instruments from the top: as they are, by register
        return Layout(ids, none, none, None, voices, True) if by_register and first.all() else same
    if not voices.size or not (first.all() or parts.drop_extra):
        return same
    if voices.size < 2 and not first.all():  # one "Bass" among a band's tracks: not a choir missing voices
        return same
    part = np.asarray(q["part"], np.int64)
    place = np.full(role.size, -1, np.int64)
    place[first] = voices
    held = np.flatnonzero(first[part])  # the notes laid out, in the order the laid-out piece writes them
    held = held[parts.note_order(q["onset"][held], place[part[held]], q["pitch"][held])]
    program = np.zeros(len(VOICES), np.int64)
    program[voices] = np.asarray(q["program"], np.int64)[first]
    header = np.arange(len(VOICES), dtype=np.int64)
    header[place[chordal & first]] = OTHER  # a piano's right hand keeps its chords where the soprano would sing
    laid = parts.encode_quantized({**q, **{k: np.asarray(q[k])[held] for k in ("onset", "pitch", "duration")},
                                   "part": place[part[held]], "role": header, "program": program})
    same_order = held.size == part.size and bool((held == np.arange(held.size)).all())
    back = parts.decode_quantized(laid)
    if not same_order and not (np.array_equal(back["onset"], q["onset"][held])
                               and np.array_equal(back["pitch"], q["pitch"][held])):
        return same
    return Layout(laid, np.setdiff1d(np.arange(len(VOICES)), voices), np.flatnonzero(~first),
                  None if same_order else held, place, by_register)


def register_roles(q: dict, role: np.ndarray, legato: int) -> tuple[np.ndarray, np.ndarray]:
    """The places of a piece of instrument parts (a wind trio, a string quartet, a piano's two hands; no track named
    for a voice, or one: a trio's output with the tenor ``--parts T`` added) by register, and which of them play
    chords. The top part takes the Soprano's place and the lowest the Bass's unless it lies nearer the middle
    voices (above the alto's middle, below the tenor's: a chorale's bass may sit at 55, nearer the tenor's 58.5
    than the bass's 50), a middle part the place nearest (a Flute, Oboe and Bassoon: Soprano, Alto and Bass), a
    named voice its own. Parts are taken from the top in the order listed where their medians agree with it (two
    violins crossing keep their order), else by their medians (a quartet listed Cello first: read in places 0-3,
    its cello was rewritten at median MIDI 70.5). A part that plays chords (held up to ``legato`` steps into the
    next note is still one line) is placed too, as long as some part plays one line (a piano's right hand in
    chords over its left hand's bass line: the left hand was read in the alto's place and a fill left it silent
    for 8 beats); ``role`` as it is where every part plays chords or there are more parts than voices."""
    from musesynth.generate.voices import one_line

    n, part = role.size, np.asarray(q["part"], np.int64)
    none = np.zeros(n, bool)
    if not 1 < n <= len(VOICES):
        return role, none
    chordal = np.array([not one_line(q["onset"][part == p], q["duration"][part == p], legato) for p in range(n)])
    if chordal[role >= OTHER].all():
        return role, none
    pitch = np.asarray(q["pitch"], np.float64)
    free = np.flatnonzero(role >= OTHER)
    median = np.array([np.median(pitch[part == p]) if (part == p).any() else np.nan for p in free])
    if np.isnan(median).any():
        return role, none
    listed = not (np.diff(median) > INVERSION).any()
    top = np.arange(free.size) if listed else np.argsort(-median, kind="stable")
    m = median[top]
    places = [p for p in range(len(VOICES)) if p not in role]
    ways = list(combinations(places, free.size))
    outer = [c for c in ways  # the outer lines are the outer voices where they can be
             if (c[0] == 0 or m[0] < CENTRES[1] or 0 not in places)
             and (c[-1] == len(VOICES) - 1 or m[-1] > CENTRES[2] or len(VOICES) - 1 not in places)]
    out = role.copy()
    out[free[top]] = min(outer or ways, key=lambda c: np.abs(m - CENTRES[list(c)]).sum())
    return out, chordal & (role >= OTHER)


def declared_parts(enc: Encoding, ids: np.ndarray) -> int | None:
    """How many parts the piece's header declares (None: an encoding without parts)."""
    parts = enc.parts()
    return None if parts is None else int(parts.parts_of(ids)[0].size)
