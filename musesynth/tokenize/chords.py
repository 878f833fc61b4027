"""Chord labels of the notes sounding at each onset: the ``CHORD`` tokens of the parts encoding's ``chords`` option.

A label is a root and a quality, read from the set of pitch classes sounding at the onset (notes that start there
and notes held into it) and its lowest note:

- the qualities are ``maj min dim aug dom7 maj7 min7 hdim7 dim7``; a triad or seventh chord without its fifth
  counts as that chord (C E is C major; C E Bb is C7), as in chorale textures where a voice doubles the root;
- where several roots fit one set (a diminished seventh, an augmented triad, a set read two ways), the lowest
  note's pitch class wins if it is one of them, else the first by the order above (complete chords before
  incomplete ones) and then by root from C;
- every other set (a single pitch class, an open fifth, a passing dissonance) is ``other`` with the lowest note's
  pitch class as its root, so a label always says where the bass is for those.

12 roots x 10 qualities = 120 labels. TonicNet (Peracha 2019), the model behind the JS Fake Chorales, writes a
chord token before each time step's voices; here the token comes after the first part's notes at an onset, so
a model harmonising a melody reads the melody note before it names the harmony under it.
"""

from __future__ import annotations

import numpy as np

from musesynth.theory import PITCH_NAMES

QUALITIES = ("maj", "min", "dim", "aug", "dom7", "maj7", "min7", "hdim7", "dim7", "other")
_TEMPLATES = {  # intervals above the root; the fifth is optional where it is not part of the quality's name
    "maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8),
    "dom7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10), "hdim7": (0, 3, 6, 10), "dim7": (0, 3, 6, 9),
}
_FIFTH_OPTIONAL = ("maj", "min", "dom7", "maj7", "min7")
OTHER = QUALITIES.index("other")
N_LABELS = 12 * len(QUALITIES)


def label_names() -> list[str]:
    """Token names, label index = quality * 12 + root."""
    return [f"CHORD_{PITCH_NAMES[r]}_{q}" for q in QUALITIES for r in range(12)]


def _mask(intervals: tuple[int, ...], root: int) -> int:
    return sum(1 << ((root + i) % 12) for i in set(intervals))


def _table() -> np.ndarray:
    """(4096 pitch-class masks, 12 lowest pitch classes) -> label index."""
    variants = [(q, t) for q, t in _TEMPLATES.items()]  # complete chords first, then those without a fifth
    variants += [(q, tuple(i for i in _TEMPLATES[q] if i != 7)) for q in _FIFTH_OPTIONAL]
    table = np.tile(OTHER * 12 + np.arange(12), (4096, 1))
    found = np.zeros(4096, bool)
    for q, intervals in variants:  # the first fit for each set
        for root in range(12):
            m = _mask(intervals, root)
            if not found[m]:
                table[m], found[m] = QUALITIES.index(q) * 12 + root, True
    done = np.zeros((4096, 12), bool)
    for q, intervals in variants:  # a fit whose root is the lowest note wins over the first fit
        for root in range(12):
            m = _mask(intervals, root)
            if not done[m, root]:
                table[m, root], done[m, root] = QUALITIES.index(q) * 12 + root, True
    return table


TABLE = _table()


CHUNK = 1 << 20  # (onset, note) pairs looked at in one go


def onset_labels(onset: np.ndarray, pitch: np.ndarray, duration: np.ndarray,
                 max_duration: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct onsets (ascending) and the label of the notes sounding at each. No note may last longer than
    ``max_duration`` steps (the encoding's cap), so only notes that start within that much before an onset are
    looked at: a window, not the whole piece, per onset."""
    order = np.argsort(onset, kind="stable")
    onset, pitch, duration = (np.asarray(a, np.int64)[order] for a in (onset, pitch, duration))
    times = np.unique(onset)
    if not times.size:
        return times, np.zeros(0, np.int64)
    lo = np.searchsorted(onset, times - max_duration, "right")
    hi = np.searchsorted(onset, times, "right")
    labels = np.empty(times.size, np.int64)
    step = max(1, CHUNK // max(int((hi - lo).max()), 1))  # onsets per chunk: dense piano stays in bounded memory
    for a in range(0, times.size, step):
        t, lo_c, hi_c = times[a:a + step], lo[a:a + step], hi[a:a + step]
        idx = lo_c[:, None] + np.arange(int((hi_c - lo_c).max()))[None, :]
        inside = idx < hi_c[:, None]
        idx = np.minimum(idx, onset.size - 1)
        sounding = inside & (onset[idx] + duration[idx] > t[:, None])
        mask = np.bitwise_or.reduce(np.where(sounding, 1 << (pitch[idx] % 12), 0), axis=1)
        lowest = np.where(sounding, pitch[idx], 1 << 30).min(1) % 12
        labels[a:a + step] = TABLE[mask, lowest]
    return times, labels
