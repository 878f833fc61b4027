"""Reading MIDI into plain note arrays, with the documented rules for odd input.

Rules (shared by every encoding, tested in tests/test_chord_encoding.py):
- **Drums** (General MIDI channel 10 tracks) are dropped: they carry no pitch.
- **Many instruments** are merged into one piano part (all pitched tracks, program ignored).
- **Out-of-range pitches** (outside A0..C8, 21..108) are folded by octaves into range, so the
  pitch class survives.
- **Same pitch twice at one onset**: the longest note is kept.
- **A re-struck key ends the previous note** of that pitch (no self-overlap), because overlapping
  notes of one pitch are ambiguous in MIDI and would not survive a write/read cycle.
- **Huge silences are shortened** (``cap_silences``): any stretch longer than ``MAX_SILENCE_BEATS``
  (64 beats: 16 bars of 4/4) in which no note starts or ends is cut to 64 beats, moving every later
  note and tempo change earlier; a note held through such a stretch is shortened with it. A gap of
  2**28 ticks (one 4-byte delta time) would otherwise become millions of time-shift tokens. Real music
  never has 16 silent bars inside one merged part (the 410 Bach chorales have at most 8 beats), so it
  is unchanged.
- **Files that cannot be used** raise ``MidiReadError`` with a one-line reason: unreadable, empty,
  larger than ``MAX_FILE_BYTES`` (64 MB), no MThd header, ticks per quarter 0, SMPTE time division,
  a parser error, or times beyond 2**31 ticks (the file's clock wrapped around; MIDI tick times are
  32-bit). Files are read as bytes, so the suffix's case and non-UTF-8 names do not matter.

Besides notes and tempo, ``score_notes`` also reads the time signatures, key signatures (as symusic
gives them: ``key`` = sharps, negative for flats; ``tonality`` 0 major, 1 minor) and the times of
marker events whose text contains "fermata" (any case); encodings that do not use them ignore them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import symusic

from musesynth.errors import MidiReadError

PIANO_LOW, PIANO_HIGH = 21, 108
MAX_SILENCE_BEATS = 64
MAX_FILE_BYTES = 64 * 2**20


@dataclass
class Notes:
    """Notes and tempo changes of one piece; times in the unit named by ``unit`` (ticks or steps)."""

    onset: np.ndarray
    duration: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    tempo_time: np.ndarray
    tempo_bpm: np.ndarray
    tpq: int
    tempo_mspq: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # as in the file
    ts_time: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ts_numerator: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ts_denominator: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    key_time: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    key_sharps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # < 0: flats
    key_tonality: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # 0 major, 1 minor
    fermata_time: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    part: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # per note (score_parts); else empty

    def __len__(self) -> int:
        return int(self.onset.size)


def load_score(path: str | Path) -> symusic.Score:
    """Parse a MIDI file, turning every failure into a one-line ``MidiReadError`` reason.

    The bytes are read here and parsed from memory: symusic picks its parser from the suffix (so
    ``.Mid`` was "Unknown file format"), and Python's file names cope with non-UTF-8 bytes.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise MidiReadError(f"unreadable: {exc.strerror or exc}") from None
    if not data:
        raise MidiReadError("empty file (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise MidiReadError(f"larger than {MAX_FILE_BYTES // 2**20} MB (not a plausible MIDI file)")
    if data[:4] != b"MThd":
        raise MidiReadError("not a MIDI file (no MThd header)")
    division = int.from_bytes(data[12:14], "big") if len(data) >= 14 else None
    if division == 0:
        raise MidiReadError("ticks per quarter is 0 (no timing)")
    if division is not None and division & 0x8000:
        raise MidiReadError("SMPTE time division (frames per second) is not supported, only ticks per quarter")
    try:
        score = symusic.Score.from_midi(data)
    except Exception as exc:  # symusic raises RuntimeError/ValueError with a C++ message
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MidiReadError(f"corrupt MIDI: {msg}") from None
    return one_signature_per_tick(score)


def one_signature_per_tick(score: symusic.Score) -> symusic.Score:
    """Keep the last time signature at each tick: music21 writes the signature into every part, so a
    chorale read back has 5 identical events at one tick, which a copy into new MIDI would repeat."""
    ts = score.time_signatures.numpy()
    order = np.argsort(ts["time"], kind="stable")
    t = ts["time"][order]
    last = np.ones(t.size, bool)
    last[:-1] = t[1:] != t[:-1]
    if last.all():
        return score
    keep = order[last]
    score.time_signatures = symusic.TimeSignature.from_numpy(
        time=ts["time"][keep], numerator=ts["numerator"][keep], denominator=ts["denominator"][keep])
    return score


def fold_pitches(pitch: np.ndarray) -> np.ndarray:
    """Move pitches outside the piano range into it by whole octaves."""
    p = pitch.astype(np.int64)
    low = p < PIANO_LOW
    p[low] += 12 * np.ceil((PIANO_LOW - p[low]) / 12).astype(np.int64)
    high = p > PIANO_HIGH
    p[high] -= 12 * np.ceil((p[high] - PIANO_HIGH) / 12).astype(np.int64)
    return p


def score_notes(score: symusic.Score) -> Notes:
    """All pitched notes of a tick-timed score merged into one part; drums dropped.

    Raises ``MidiReadError`` for a score without timing (0 ticks per quarter) or with negative times
    (tick times beyond 2**31 wrap around in the parser).
    """
    if score.ticks_per_quarter <= 0:
        raise MidiReadError(f"ticks per quarter is {score.ticks_per_quarter} (no timing)")
    if "tick" not in str(score.ttype).lower():
        score = score.to("tick")
    parts = [t.notes.numpy() for t in score.tracks if not t.is_drum and len(t.notes)]
    if parts:
        onset = np.concatenate([p["time"] for p in parts]).astype(np.int64)
        duration = np.concatenate([p["duration"] for p in parts]).astype(np.int64)
        pitch = np.concatenate([p["pitch"] for p in parts]).astype(np.int64)
        velocity = np.concatenate([p["velocity"] for p in parts]).astype(np.int64)
    else:
        onset = duration = pitch = velocity = np.zeros(0, np.int64)
    tempos = score.tempos.numpy()
    tempo_time = tempos["time"].astype(np.int64)
    tempo_mspq = tempos["mspq"].astype(np.int64)
    if (onset.size and min(onset.min(), duration.min()) < 0) or (tempo_time.size and tempo_time.min() < 0):
        raise MidiReadError("time beyond 2**31 ticks (the file's tick clock overflows)")
    tempo_bpm = 60_000_000.0 / np.maximum(tempo_mspq.astype(np.float64), 1.0)
    ts = score.time_signatures.numpy()
    ks = score.key_signatures.numpy()
    fermata = [m.time for m in score.markers if "fermata" in m.text.lower()]
    return Notes(
        onset, duration, pitch, velocity, tempo_time, tempo_bpm, int(score.ticks_per_quarter), tempo_mspq=tempo_mspq,
        ts_time=ts["time"].astype(np.int64), ts_numerator=ts["numerator"].astype(np.int64),
        ts_denominator=ts["denominator"].astype(np.int64), key_time=ks["time"].astype(np.int64),
        key_sharps=ks["key"].astype(np.int64), key_tonality=ks["tonality"].astype(np.int64),
        fermata_time=np.asarray(fermata, np.int64),
    )


def _stretches(n: Notes) -> tuple[np.ndarray, np.ndarray]:
    """The times (ticks, from 0) at which a note starts or ends, and the stretches between them."""
    events = np.unique(np.r_[0, n.onset, n.onset + n.duration])
    return events, np.diff(events)


def stretch_over_cap(n: Notes, beats: int = MAX_SILENCE_BEATS) -> tuple[float, float] | None:
    """(start, length) in beats of the longest stretch ``cap_silences`` would shorten (no note starts or ends for
    more than ``beats``), or None when reading moves no note."""
    events, gaps = _stretches(n)
    if not gaps.size or gaps.max() <= int(beats) * n.tpq:
        return None
    i = int(np.argmax(gaps))
    return float(events[i]) / n.tpq, float(gaps[i]) / n.tpq


def cap_silences(n: Notes, beats: int = MAX_SILENCE_BEATS) -> Notes:
    """Shorten every stretch longer than ``beats`` in which no note starts or ends to ``beats`` (ticks).

    Times map through a monotone piecewise-linear function: inside such a stretch, time runs normally
    for ``beats`` and then stands still until the stretch ends, so later notes and tempo changes move
    earlier by the excess, a note held through the stretch is shortened by it, and order is kept.
    The stretch before the first note counts (from tick 0), and so does the time after the last one
    (tempo changes there). Returns ``n`` itself when nothing is that long: normal files are untouched.
    """
    cap = int(beats) * n.tpq
    end = n.onset + n.duration
    events, gaps = _stretches(n)
    last = n.tempo_time.max(initial=0) - events[-1]
    if (gaps.size == 0 or gaps.max() <= cap) and last <= cap:
        return n
    cut = np.r_[0, np.cumsum(np.maximum(gaps - cap, 0))]

    def move(t: np.ndarray) -> np.ndarray:
        i = np.searchsorted(events, t, side="right") - 1
        return events[i] - cut[i] + np.minimum(t - events[i], cap)

    onset = move(n.onset)
    return replace(n, onset=onset, duration=move(end) - onset, tempo_time=move(n.tempo_time),
                   ts_time=move(n.ts_time), key_time=move(n.key_time), fermata_time=move(n.fermata_time))


def canonical_order(onset: np.ndarray, pitch: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """Indices that drop duplicate (onset, pitch) notes (keeping the longest), sorted by onset, pitch."""
    order = np.lexsort((-duration, onset, pitch))  # by pitch, then onset, longest first
    p, o = pitch[order], onset[order]
    first = np.ones(order.size, bool)
    first[1:] = (p[1:] != p[:-1]) | (o[1:] != o[:-1])
    keep = order[first]
    return keep[np.lexsort((pitch[keep], onset[keep]))]


def end_at_restrike(onset: np.ndarray, pitch: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """Durations shortened so that no note overlaps the next note of the same pitch."""
    order = np.lexsort((onset, pitch))
    p, o, d = pitch[order], onset[order], duration[order].copy()
    same_next = np.zeros(order.size, bool)
    same_next[:-1] = p[1:] == p[:-1]
    gap = np.full(order.size, np.iinfo(np.int64).max)
    gap[:-1] = o[1:] - o[:-1]
    d = np.where(same_next, np.minimum(d, gap), d)
    out = np.empty_like(duration)
    out[order] = d
    return out


# ---------------------------------------------------------------------- parts (tokenize.parts)
VOICES = ("Soprano", "Alto", "Tenor", "Bass")  # the SATB roles, top voice first
OTHER = len(VOICES)  # the role of any other part (an instrument, an unnamed track)


@dataclass
class Parts:
    """The parts of a score, in part order: each one's role (0-3 SATB, ``OTHER``) and MIDI program."""

    role: np.ndarray
    program: np.ndarray


# The names the SATB voices go by in scores from elsewhere: Latin part-books (Cantus, Altus, Bassus), Italian
# madrigals (Canto, Tenore, Basso), German (Sopran, Alt), French (Dessus, Haute-contre, Taille, Ténor, Basse),
# Spanish (Bajo). Every voice of a language is listed, or a known voice would be placed above an unknown one (a
# Basse read, a Ténor not: the bass would sit in the tenor's place). A fifth voice (Quinto, Sextus) and the
# medieval Contratenor, Triplum and Motetus have no one SATB range, so they stay OTHER. Case and punctuation are
# ignored; the first word decides.
VOICE_NAMES = {
    0: ("soprano", "sopranos", "soprani", "sopran", "canto", "cantus", "superius", "discantus", "diskant", "dessus"),
    1: ("alto", "altos", "alti", "alt", "altus", "contralto", "hautecontre"),
    2: ("tenor", "tenors", "tenori", "tenore", "taille", "ténor"),
    3: ("bass", "basses", "bassi", "basso", "bassus", "basse", "bajo"),
}
_ROLE_OF = {name: role for role, names in VOICE_NAMES.items() for name in names}


def voice_role(name: str) -> int:
    """SATB role of a track name by its first word (``"Soprano 1"``, ``"Bass Continuo"``, ``"Canto"``); else
    ``OTHER``."""
    words = str(name).split()  # any whitespace, the carriage returns of "Soprano\rOboe 1,2" too
    first = "".join(ch for ch in words[0] if ch.isalpha()).lower() if words else ""
    return _ROLE_OF.get(first, OTHER)


def voice_named(word: str) -> int | None:
    """The voice a user names by letter or name, any case (``"t"``, ``"Tenor"``); None for any other word (unlike
    ``voice_role``, which reads a track's name, "Tenor Sax" included)."""
    w = str(word).strip().lower()
    return next((v for v, name in enumerate(VOICES) if w in (name.lower(), name[0].lower())), None)


def drop_notes(n: Notes, keep: np.ndarray) -> Notes:
    """``n`` with only the notes where ``keep`` holds (tempo, meter, keys and fermatas unchanged)."""
    return replace(n, onset=n.onset[keep], duration=n.duration[keep], pitch=n.pitch[keep],
                   velocity=n.velocity[keep], part=n.part[keep])


def _part_order(tracks: list[symusic.Track], drop_extra: bool) -> tuple[np.ndarray, np.ndarray]:
    """The tracks' roles, and their order as parts (``score_parts``' rule)."""
    role = np.array([voice_role(t.name) for t in tracks], np.int64)
    if len(tracks) == 4 and all(not t.name.strip() for t in tracks):
        role = np.arange(4, dtype=np.int64)
    rank = role.copy()
    if drop_extra:
        seen = np.zeros(OTHER + 1, bool)
        for i, r in enumerate(role):
            if r < OTHER and seen[r]:
                rank[i] = OTHER + 1  # a voice's second track: after the instruments
            seen[r] = True
    return role, np.argsort(rank, kind="stable")


def part_tracks(score: symusic.Score, max_parts: int, drop_extra: bool) -> tuple[list[int], list[int]]:
    """Indices into ``score.tracks`` of the tracks ``score_parts`` reads as parts (in part order), and of those it
    drops (``drop_extra``, beyond ``max_parts``; drum tracks): what a result written from the parts can give back
    by name, and what it must copy from the input to keep every note."""
    index = [i for i, t in enumerate(score.tracks) if not t.is_drum and len(t.notes)]
    drums = [i for i, t in enumerate(score.tracks) if t.is_drum and len(t.notes)]
    _, order = _part_order([score.tracks[i] for i in index], drop_extra)
    ranked = [index[i] for i in order]
    if not drop_extra:
        return ranked[:max_parts], drums
    return ranked[:max_parts], ranked[max_parts:] + drums


def track_slots(score: symusic.Score, max_parts: int, drop_extra: bool) -> np.ndarray:
    """Each track's part as ``score_parts`` reads it (-1: a track it does not read: empty, drums, beyond
    ``max_parts`` with ``drop_extra``; without it, those join the last part)."""
    index = [i for i, t in enumerate(score.tracks) if not t.is_drum and len(t.notes)]
    _, order = _part_order([score.tracks[i] for i in index], drop_extra)
    slot = np.empty(len(index), np.int64)
    slot[order] = np.arange(len(index)) if drop_extra else np.minimum(np.arange(len(index)), max_parts - 1)
    out = np.full(len(score.tracks), -1, np.int64)
    out[index] = np.where(slot < max_parts, slot, -1)
    return out


def score_parts(score: symusic.Score, max_parts: int, drop_extra: bool = False) -> tuple[Notes, Parts]:
    """``score_notes`` with each note's part (``Notes.part``), and the parts' roles and programs.

    The rule (tokenize.parts documents it): a part is a track with pitched notes (empty tracks, such as
    the music21 export's empty duplicate Soprano, and drum tracks are dropped). Parts are ordered by role
    (Soprano, Alto, Tenor, Bass, then every other part), in track order within a role. A score of exactly
    four unnamed parts (the JS Fake Chorales) is read as Soprano, Alto, Tenor, Bass from the top. Parts
    beyond ``max_parts`` join the last one; with ``drop_extra`` they are dropped instead, and a second track
    of one voice ("Soprano 2") comes after every other part, so the first Soprano, Alto, Tenor and Bass are
    the ones kept."""
    n = score_notes(score)
    tracks = [t for t in score.tracks if not t.is_drum and len(t.notes)]
    role, order = _part_order(tracks, drop_extra)  # part i is track order[i]
    read = [i for i, t in enumerate(score.tracks) if not t.is_drum and len(t.notes)]
    n.part = np.repeat(track_slots(score, max_parts, drop_extra)[read], [len(t.notes) for t in tracks])
    if drop_extra and len(tracks) > max_parts:
        n = drop_notes(n, n.part >= 0)
    keep = order[: max_parts]
    programs = np.array([tracks[i].program for i in keep], np.int64)
    return n, Parts(role=role[keep], program=programs)
