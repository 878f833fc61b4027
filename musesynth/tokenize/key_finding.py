"""Which key a piece is in, from three cues: its pitch content, its final bass, its key signature.

One rule serves both the meter encoding's KEY token (what a model is told a training piece is in) and
`musesynth evaluate`'s key estimate of a generated piece (``evaluate.musicality.estimate_key``), so the
key a model learns under a token is the key it is measured against.

- **Pitch content**: the Pearson correlation of the duration-weighted pitch-class histogram with the 24
  Krumhansl-Kessler key profiles (Krumhansl 1990; the Krumhansl-Schmuckler algorithm).
- **Final bass** (+``FINAL_BASS_BONUS`` to the two keys on it): pieces end on their tonic, and modal
  music on its final. The histogram alone leans to the keys a piece modulates to (its dominant), and a
  signature cannot tell a key from its relative.
- **Key signature** (+``SIGNATURE_BONUS`` to the two keys that have it): written evidence, but not
  decisive. Baroque minor pieces are often notated with one flat or sharp fewer (Dorian signatures: a G
  minor chorale with one flat), modal music's signature names no tonic, and files carry signatures a
  sequencer wrote by default. A file's mode flag is not used: many writers set "major" without knowing.

Measured on the 410 Bach chorales (``musesynth corpus --name bach``), the rule keeps 85% of the labels the
signature-first rule gave (signature pair, mode by profile) and changes the rest to keys that end on their
tonic and fit their notes: D minor -> G minor (9 chorales notated in one flat, ending on G), A minor -> D
minor (7), G minor -> C minor (7), C major -> G major (5, Mixolydian endings), A minor -> E minor (4,
Phrygian). Without a signature or a final bass, the rule is Krumhansl-Schmuckler.
"""

from __future__ import annotations

import numpy as np

# Krumhansl-Kessler key profiles (Krumhansl 1990), tonic first.
KS_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KS_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
FINAL_BASS_BONUS = 0.15
SIGNATURE_BONUS = 0.1

_PROFILES = np.stack([np.roll(p, t) for p in (KS_MAJOR, KS_MINOR) for t in range(12)])  # index mode * 12 + tonic
_CENTRED = _PROFILES - _PROFILES.mean(1, keepdims=True)
_MAJOR_TONIC = (np.arange(24) % 12 + 3 * (np.arange(24) // 12)) % 12  # the relative major's tonic of each key


def key_correlations(pitch: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(24,) Pearson correlation of the weighted pitch-class histogram with the key profiles, index
    ``mode * 12 + tonic``; zeros where the histogram is flat (no notes, or every pitch class alike)."""
    hist = np.bincount(np.asarray(pitch, np.int64) % 12, weights=np.asarray(weight, np.float64), minlength=12)
    h = hist - hist.mean()
    denom = np.sqrt((h**2).sum() * (_CENTRED**2).sum(1))
    return np.where(denom > 0, _CENTRED @ h / np.where(denom > 0, denom, 1.0), 0.0)


def final_bass(onset: np.ndarray, pitch: np.ndarray) -> int | None:
    """Pitch class of the lowest note struck at the last onset (the closing chord's bass); None without notes."""
    onset = np.asarray(onset, np.float64)
    if onset.size == 0:
        return None
    return int(np.asarray(pitch)[onset >= onset.max() - 1e-9].min()) % 12


def key_scores(corr: np.ndarray, bass: int | None = None, sharps: int | None = None) -> np.ndarray:
    """(24,) the rule's score of each key: the profile correlation plus the final-bass and signature bonuses."""
    score = np.array(corr, np.float64)
    if bass is not None:
        score[[bass % 12, 12 + bass % 12]] += FINAL_BASS_BONUS
    if sharps is not None:
        score[_MAJOR_TONIC == (7 * int(sharps)) % 12] += SIGNATURE_BONUS
    return score


def find_key(pitch: np.ndarray, weight: np.ndarray, onset: np.ndarray | None = None,
             sharps: int | None = None) -> tuple[int, int]:
    """``(tonic, mode)`` (mode 0 major, 1 minor) of notes by the rule above: ``onset`` (any unit) gives the
    final bass, ``sharps`` (negative: flats) the key signature; either may be left out. No notes: C major."""
    bass = final_bass(onset, pitch) if onset is not None else None
    score = key_scores(key_correlations(pitch, weight), bass, sharps)
    best = int(np.argmax(score))
    return best % 12, best // 12
