"""Musical statistics of a set of pieces and distances between two sets (generated vs held-out).

Following objective-evaluation practice for symbolic music (Yang & Lerch 2018): each feature is
pooled over a set into a histogram on fixed bins; two sets are compared by the overlapping area
(OA) of their histograms, reported as a distance ``1 - OA`` in [0, 1] (0: identical distributions),
and by KL(held-out || generated) with a small floor so empty bins stay finite.

Features: pitch-class histogram, pitch range per piece, note density (notes per beat), inter-onset
intervals (beats), polyphony (notes per onset), note durations (beats), repetition (share of
4-onset chord patterns that already occurred earlier in the piece).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import symusic

from musesynth.tokenize.midi_io import score_notes


@dataclass
class Piece:
    onset: np.ndarray  # beats
    duration: np.ndarray  # beats
    pitch: np.ndarray
    part: np.ndarray | None = None  # each note's track among the tracks with notes (evaluate.voice_leading)


def piece_from_score(score: symusic.Score) -> Piece:
    n = score_notes(score)
    counts = [len(t.notes) for t in score.tracks if not t.is_drum and len(t.notes)]
    part = np.repeat(np.arange(len(counts)), counts)
    order = np.lexsort((n.pitch, n.onset))
    return Piece(n.onset[order] / n.tpq, n.duration[order] / n.tpq, n.pitch[order], part[order])


BINS: dict[str, np.ndarray] = {
    "pitch_class": np.arange(13) - 0.5,
    "pitch_range": np.arange(0, 92, 4) - 0.5,
    "note_density": np.arange(0, 12.25, 0.5),
    "ioi": np.r_[np.arange(0, 4 + 1e-9, 1 / 12) + 1 / 24, np.inf] - 1 / 12,
    "polyphony": np.arange(1, 12) - 0.5,
    "duration": np.r_[np.arange(0, 8 + 1e-9, 1 / 12) + 1 / 24, np.inf] - 1 / 12,
    "repetition": np.linspace(0, 1, 21),
}


def _onset_groups(p: Piece) -> tuple[np.ndarray, np.ndarray]:
    """Distinct onsets and the number of notes at each."""
    return np.unique(np.round(p.onset, 6), return_counts=True)


def _repetition(p: Piece, n: int = 4) -> float:
    onsets, counts = _onset_groups(p)
    if onsets.size <= n:
        return 0.0
    chords, start = [], 0
    for c in counts:  # one small loop per onset group (not per token); pieces are short
        chords.append(tuple(sorted(p.pitch[start : start + c].tolist())))
        start += c
    seen, rep = set(), 0
    for i in range(len(chords) - n + 1):
        gram = tuple(chords[i : i + n])
        rep += gram in seen
        seen.add(gram)
    return rep / (len(chords) - n + 1)


def features(p: Piece) -> dict[str, np.ndarray]:
    if p.pitch.size == 0:
        return {k: np.zeros(0) for k in BINS}
    onsets, counts = _onset_groups(p)
    span = max(float(p.onset.max() - p.onset.min() + p.duration[-1]), 1e-6)
    return {
        "pitch_class": p.pitch % 12,
        "pitch_range": np.array([p.pitch.max() - p.pitch.min()]),
        "note_density": np.array([p.pitch.size / span]),
        "ioi": np.diff(onsets),
        "polyphony": counts,
        "duration": p.duration,
        "repetition": np.array([_repetition(p)]),
    }


def histograms(pieces: list[Piece]) -> dict[str, np.ndarray]:
    feats = [features(p) for p in pieces]
    out = {}
    for k, bins in BINS.items():
        vals = np.concatenate([f[k] for f in feats]) if feats else np.zeros(0)
        lo, hi = bins[0], bins[-1] if np.isfinite(bins[-1]) else bins[-2] + 1
        h, _ = np.histogram(np.clip(vals, lo, hi - 1e-9), bins=bins)
        out[k] = h / h.sum() if h.sum() else h.astype(float)
    return out


def overlap_distance(p: np.ndarray, q: np.ndarray) -> float:
    return float(1.0 - np.minimum(p, q).sum())


def kl(p: np.ndarray, q: np.ndarray, floor: float = 1e-4) -> float:
    p, q = (p + floor) / (p + floor).sum(), (q + floor) / (q + floor).sum()
    return float((p * np.log(p / q)).sum())


def compare(reference: list[Piece], generated: list[Piece]) -> dict[str, dict[str, float]]:
    """Per feature: overlap distance and KL between the two sets' histograms."""
    hr, hg = histograms(reference), histograms(generated)
    out = {}
    for k in BINS:
        out[k] = {"distance": overlap_distance(hr[k], hg[k]), "kl": kl(hr[k], hg[k])}
    return out


def mean_distance(result: dict[str, dict[str, float]]) -> float:
    return float(np.mean([v["distance"] for v in result.values()]))
