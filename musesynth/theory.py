"""The music theory musesynth uses, in one place: pitch classes, keys and their spellings, scales, and what a
full closing chord is. Encodings, key guidance and the sampler's ending read these; the asserts tie the
constants to each other, so an edit that breaks one relation fails at import."""

from __future__ import annotations

import re

from musesynth.errors import MusesynthError

# the four voices' ranges, soprano to bass (MIDI pitch, lowest and highest): the voice-leading report counts notes
# outside them, and harmonize refuses a melody no voice can sing
SATB_RANGES = ((60, 81), (53, 74), (48, 69), (38, 62))
PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")  # token spelling: sharps
MODES = ("major", "minor")  # a key index is mode * 12 + tonic pitch class
N_KEYS = len(MODES) * len(PITCH_NAMES)
LETTERS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
# display spelling with the fewer accidentals (Bb major, F# minor; 6: F# major, Eb minor)
MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
# scale degrees (semitones above the tonic) in the key: major; minor natural plus the raised 6th and 7th
# (melodic / harmonic minor), so a leading tone costs nothing under key guidance
IN_KEY = {0: (0, 2, 4, 5, 7, 9, 11), 1: (0, 2, 3, 5, 7, 8, 9, 10, 11)}
FULL_CHORD = 4  # notes of a full closing chord in four-part writing (fewer where the texture is thinner)

assert len(MAJOR_NAMES) == len(MINOR_NAMES) == len(PITCH_NAMES) == 12 and N_KEYS == 24
assert all(LETTERS[n[0].lower()] + {"": 0, "#": 1, "b": -1}[n[1:]] == i % 12 or
           (LETTERS[n[0].lower()] + {"": 0, "#": 1, "b": -1}[n[1:]]) % 12 == i
           for names in (PITCH_NAMES, MAJOR_NAMES, MINOR_NAMES) for i, n in enumerate(names))
assert set(IN_KEY) == set(range(len(MODES))) and all(d[0] == 0 and 7 in d for d in IN_KEY.values())
assert set(LETTERS.values()) == set(IN_KEY[0])  # the letters are C major's scale

_KEY_RE = re.compile(r"^\s*([a-g])\s*(#|♯|b|♭)?[\s_]*(major|minor|maj|min)\s*$", re.IGNORECASE)
KEY_FORM = "a tonic A-G with an optional # or b, then major or minor (e.g. 'D major', 'F# minor', 'Bb major')"


def mode_index(mode: str | int) -> int:
    """0 for major, 1 for minor (``"major"``, ``"maj"``, ``"minor"``, ``"min"``, 0 or 1)."""
    if isinstance(mode, str):
        m = mode.strip().lower()
        if m in ("major", "maj"):
            return 0
        if m in ("minor", "min"):
            return 1
        raise MusesynthError(f"unknown mode '{mode}' (major or minor)")
    if int(mode) not in (0, 1):
        raise MusesynthError(f"unknown mode {mode} (0 major, 1 minor)")
    return int(mode)


def parse_key(text: str) -> tuple[int, str]:
    """``"D major"`` / ``"f# minor"`` / ``"Bb major"`` -> ``(tonic pitch class, "major" | "minor")``."""
    m = _KEY_RE.match(str(text))
    if not m:
        raise MusesynthError(f"unknown key '{text}': write {KEY_FORM}")
    letter, accidental, mode = m.groups()
    tonic = LETTERS[letter.lower()] + {"#": 1, "♯": 1, "b": -1, "♭": -1, None: 0}[accidental]
    return tonic % 12, MODES[mode_index(mode)]


def key_name(tonic: int, mode: str | int) -> str:
    """``(2, "major")`` -> ``"D major"``, ``(10, "major")`` -> ``"Bb major"``: the usual spelling."""
    m = mode_index(mode)
    return f"{(MINOR_NAMES if m else MAJOR_NAMES)[int(tonic) % 12]} {MODES[m]}"


def tonic_offset(semitones: int) -> int:
    """An interval as the smaller move between its pitch classes: -5..+6 semitones (a tritone goes up)."""
    step = int(semitones) % 12
    return step - 12 if step > 6 else step


def key_signature_sharps(tonic: int, mode: str | int) -> int:
    """Sharps (negative: flats, in -5..6) of the key signature of a key."""
    major_tonic = (int(tonic) + (3 if mode_index(mode) else 0)) % 12
    s = (major_tonic * 7) % 12
    return s - 12 if s > 6 else s


assert all(parse_key(key_name(k % 12, k // 12)) == (k % 12, MODES[k // 12]) for k in range(N_KEYS))
