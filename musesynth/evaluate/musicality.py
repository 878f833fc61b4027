"""Musical-quality metrics beyond histogram distances: can a classifier tell generated from real, do
pieces repeat themselves, are they in plausible keys, and do they copy the training set verbatim.

All functions take ``list[Piece]`` (see :mod:`musesynth.evaluate.music_stats`), so they are
independent of the token encoding. Times are put on a 1/12-beat grid (``GRID``), which holds both
sixteenths and triplets exactly.

- :func:`window_features`: simple per-window statistics (pitch classes, register, rhythm, motion) that the
  composer control (:mod:`musesynth.evaluate.control`) classifies by. The classifier two-sample test of
  generated against real music lives in :mod:`musesynth.evaluate.judge` (features:
  :mod:`musesynth.evaluate.features`).
- :func:`self_repetition` / :func:`repetition_summary`: longest internal exact repeat (beats).
- :func:`estimate_key` / :func:`key_report`: Krumhansl-Schmuckler key, key-signature accidentals,
  key distribution distance, scale consistency.
- :func:`build_copy_index` / :func:`longest_copied_run` / :func:`memorisation_report`: longest run of
  onsets copied verbatim from a training piece, against the held-out-vs-train floor.

Exact comparisons of note sets go through 64-bit hashes (splitmix64 sums); a false match needs a
64-bit collision (probability ~1e-9 for a million distinct items), which we accept for speed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from musesynth.evaluate.music_stats import Piece
from musesynth.tokenize import key_finding
from musesynth.tokenize.meter import key_name  # one spelling of key names (re-exported here)

GRID = 12  # grid steps per beat

# ---------------------------------------------------------------------------------------------
# shared helpers


_U = np.uint64


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of each integer (wraps mod 2**64)."""
    z = np.asarray(x).astype(np.uint64) + _U(0x9E3779B97F4A7C15)
    z = (z ^ (z >> _U(30))) * _U(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U(27))) * _U(0x94D049BB133111EB)
    return z ^ (z >> _U(31))


def _ticks(x: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(x, float) * GRID).astype(np.int64)


@dataclass
class _Grid:
    """A piece on the 1/12-beat grid: notes deduplicated (same tick and pitch counted once) and
    sorted by (tick, pitch), plus onset groups (all notes starting at one tick)."""

    tick: np.ndarray  # per note
    pitch: np.ndarray  # per note
    dur: np.ndarray  # per note, beats
    starts: np.ndarray  # index of the first note of each onset group
    group: np.ndarray  # per note: its onset group
    gtick: np.ndarray  # per group: its tick
    end_tick: int  # end of the last-ending note


def _grid(p: Piece) -> _Grid:
    tick, pitch = _ticks(p.onset), np.asarray(p.pitch, np.int64)
    dur = np.asarray(p.duration, float)
    order = np.lexsort((-dur, pitch, tick))  # longest note first among duplicates
    tick, pitch, dur = tick[order], pitch[order], dur[order]
    if tick.size:
        keep = np.r_[True, (np.diff(tick) != 0) | (np.diff(pitch) != 0)]
        tick, pitch, dur = tick[keep], pitch[keep], dur[keep]
    new = np.r_[True, np.diff(tick) != 0] if tick.size else np.zeros(0, bool)
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    end = int(max(tick.max(), _ticks(tick / GRID + dur).max())) if tick.size else 0
    return _Grid(tick, pitch, dur, starts, group, tick[starts], end)


# ---------------------------------------------------------------------------------------------
# 1. window statistics (the composer control's features)

_REGISTER_EDGES = np.array([0, 36, 42, 48, 54, 60, 66, 72, 78, 84, 128])
_DURATION_EDGES = np.array([0, 0.2, 0.3, 0.4, 0.6, 0.9, 1.1, 1.6, 2.1, 3.1, 4.1, np.inf])
_MAX_POLY = 6
_CONSONANT = np.zeros(12, bool)
_CONSONANT[[0, 3, 4, 5, 7, 8, 9]] = True  # intervals above the bass (fourth counted consonant)
_MAJOR_STEPS = np.array([0, 2, 4, 5, 7, 9, 11])
_SCALES = np.zeros((12, 12))  # column t: indicator of the major scale on tonic t
for _t in range(12):
    _SCALES[(_MAJOR_STEPS + _t) % 12, _t] = 1.0


def _hist(idx: np.ndarray, bins: np.ndarray, nbins: int, nwin: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Per-window histogram (nwin, nbins) of ``bins`` for items in window ``idx``, rows normalised."""
    h = np.bincount(idx * nbins + bins, weights=weights, minlength=nwin * nbins).reshape(nwin, nbins)
    return h / np.maximum(h.sum(1, keepdims=True), 1e-12)


def _per_window_mean(idx: np.ndarray, values: np.ndarray, nwin: int) -> np.ndarray:
    s = np.bincount(idx, weights=values, minlength=nwin)
    n = np.bincount(idx, minlength=nwin)
    return np.where(n > 0, s / np.maximum(n, 1), 0.0)


def window_features(p: Piece, window_beats: int = 8) -> np.ndarray:
    """Fixed-length descriptions (n_windows, n_features) of the non-empty ``window_beats`` windows.

    Features cover pitch content (pitch-class and register histograms, range, mean/std pitch, fit to
    the best major scale), rhythm (onset position in the beat, durations, polyphony per onset, empty
    beats, note and onset counts) and voice leading (top-voice and bass motion, consonance above the
    bass), so that shuffled pitches, random rhythms or odd textures stand out.
    """
    g = _grid(p)
    if g.tick.size == 0:
        return np.zeros((0, N_FEATURES))
    wt = window_beats * GRID
    w0 = int(np.floor_divide(g.tick.min(), wt))
    win_note = np.floor_divide(g.tick, wt) - w0
    nwin = int(win_note.max()) + 1
    win_group = win_note[g.starts]
    counts = np.diff(np.r_[g.starts, g.tick.size])  # notes per onset group
    pitch = g.pitch

    pc = _hist(win_note, pitch % 12, 12, nwin)
    reg = _hist(win_note, np.clip(np.searchsorted(_REGISTER_EDGES, pitch, "right") - 1, 0, 9), 10, nwin)
    dur = _hist(win_note, np.clip(np.searchsorted(_DURATION_EDGES, g.dur, "right") - 1, 0, 10), 11, nwin)
    pos = _hist(win_group, g.gtick % GRID, GRID, nwin)
    poly = _hist(win_group, np.clip(counts, 1, _MAX_POLY) - 1, _MAX_POLY, nwin)

    n_notes = np.bincount(win_note, minlength=nwin).astype(float)
    n_onsets = np.bincount(win_group, minlength=nwin).astype(float)
    lo = np.full(nwin, 1000)
    hi = np.full(nwin, -1000)
    np.minimum.at(lo, win_note, pitch)
    np.maximum.at(hi, win_note, pitch)
    mean_p = _per_window_mean(win_note, pitch.astype(float), nwin)
    var_p = _per_window_mean(win_note, (pitch - mean_p[win_note]) ** 2, nwin)

    # top voice and bass of consecutive onsets within the same window
    top = np.maximum.reduceat(pitch, g.starts)
    bass = np.minimum.reduceat(pitch, g.starts)
    same = win_group[1:] == win_group[:-1]
    wmove = win_group[1:][same]
    dtop = np.abs(np.diff(top))[same].astype(float)
    dbass = np.abs(np.diff(bass))[same].astype(float)
    top_move = _per_window_mean(wmove, dtop, nwin)
    bass_move = _per_window_mean(wmove, dbass, nwin)
    top_leaps = _per_window_mean(wmove, (dtop > 7).astype(float), nwin)
    top_steps = _per_window_mean(wmove, (dtop <= 2).astype(float), nwin)

    above = pitch > bass[g.group]
    cons = _per_window_mean(win_note[above], _CONSONANT[(pitch - bass[g.group])[above] % 12].astype(float), nwin)

    # beats of the window (clipped at the piece end) that have no onset
    beat = np.floor_divide(g.gtick, GRID)
    beats_with_onset = np.bincount(win_group[np.r_[True, np.diff(beat) != 0]], minlength=nwin)
    start_beat = (np.arange(nwin) + w0) * window_beats
    span = np.clip(np.ceil(g.end_tick / GRID) - start_beat, 1, window_beats)
    empty = 1.0 - np.minimum(beats_with_onset / span, 1.0)

    pc_counts = pc * n_notes[:, None]
    scale_fit = (pc_counts @ _SCALES).max(1) / np.maximum(n_notes, 1)

    feats = np.column_stack([
        pc, reg, dur, pos, poly,
        np.log1p(n_notes), np.log1p(n_onsets), (hi - lo) / 12.0, mean_p / 12.0, np.sqrt(var_p) / 12.0,
        top_move, bass_move, top_leaps, top_steps, cons, empty, scale_fit,
    ])
    return feats[n_notes > 0]


N_FEATURES = 12 + 10 + 11 + GRID + _MAX_POLY + 12


# ---------------------------------------------------------------------------------------------
# 2. self-repetition


def _beat_hashes(p: Piece, transposed: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per beat (from the first onset's beat to the last's): a hash of its set of (position in beat
    on the grid, pitch), a reference pitch (0, or the beat's lowest pitch when ``transposed``, carried
    forward over empty beats) and its note count."""
    g = _grid(p)
    if g.tick.size == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    beat = np.floor_divide(g.tick, GRID)
    beat = beat - beat.min()
    nb = int(beat.max()) + 1
    n = np.bincount(beat, minlength=nb)
    ref = np.zeros(nb, np.int64)
    if transposed:
        lowest = np.full(nb, 1 << 20)
        np.minimum.at(lowest, beat, g.pitch)
        filled = np.maximum.accumulate(np.where(n > 0, np.arange(nb), 0))  # last non-empty beat so far
        ref = lowest[filled]
    code = (g.tick % GRID) * 1024 + (g.pitch - ref[beat]) + 512
    h = np.zeros(nb, np.uint64)
    np.add.at(h, beat, _mix(code))
    return h, ref, n


def self_repetition(piece: Piece, min_beats: int = 8, transposed: bool = False) -> float:
    """Length in beats of the longest passage that occurs twice in the piece, or 0.0 if under ``min_beats``.

    Rule: candidate passages start on beats and last whole beats; two occurrences must not overlap
    (they start at least the passage length apart), so a held chord or a run of identical beats does
    not count as a long repeat of itself. A passage is the set of (onset relative to its start on the
    1/12-beat grid, pitch): notes and rhythm must repeat exactly; durations are ignored. With
    ``transposed`` the second occurrence may be a transposition (same intervals, all pitches shifted
    by one amount). Found from all pairs of equal beats, grouped into diagonals: O(beats^2), which is
    instant for pieces of a few hundred beats.
    """
    h, ref, n = _beat_hashes(piece, transposed)
    nb = h.size
    if nb < 2:
        return 0.0
    i, j = np.nonzero(np.triu(h[:, None] == h[None, :], k=1))
    if i.size == 0:
        return 0.0
    d, shift = j - i, ref[j] - ref[i]
    order = np.lexsort((i, shift, d))
    i, d, shift = i[order], d[order], shift[order]
    new = np.r_[True, (np.diff(d) != 0) | (np.diff(shift) != 0) | (np.diff(i) != 1)]
    run_id = np.cumsum(new) - 1
    start = i[new]
    length = np.bincount(run_id)
    length = np.minimum(length, d[new])  # non-overlapping occurrences
    notes = np.r_[0, np.cumsum(n)]
    has_notes = notes[start + length] > notes[start]
    best = int(length[has_notes].max()) if has_notes.any() else 0
    return float(best) if best >= min_beats else 0.0


def repetition_summary(pieces: list[Piece], min_beats: int = 8) -> dict:
    """Share of pieces with an internal exact repeat of at least ``min_beats`` beats, and the mean and
    median longest repeat (exact lengths, also below ``min_beats``); the same share for repeats that
    may be transposed."""
    longest = np.array([self_repetition(p, min_beats=1) for p in pieces], float)
    transposed = np.array([self_repetition(p, min_beats=1, transposed=True) for p in pieces], float)
    if not pieces:
        nan = float("nan")
        return {"share_with_repeat": nan, "mean_longest_repeat_beats": nan, "median": nan,
                "share_with_transposed_repeat": nan}
    return {"share_with_repeat": float((longest >= min_beats).mean()),
            "mean_longest_repeat_beats": float(longest.mean()), "median": float(np.median(longest)),
            "share_with_transposed_repeat": float((transposed >= min_beats).mean())}


# ---------------------------------------------------------------------------------------------
# 3. key

MODES = ("major", "minor")
# spelling: flats for F Bb Eb Ab Db major (and their relative minors), sharps otherwise; 6 accidentals
# as F# major / Eb minor
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_LETTER_FIFTHS = {"F": -1, "C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5}


def pitch_class_weights(piece: Piece) -> np.ndarray:
    """Duration-weighted pitch-class histogram (12,)."""
    return np.bincount(np.asarray(piece.pitch, np.int64) % 12, weights=np.asarray(piece.duration, float),
                       minlength=12)


def final_bass(piece: Piece) -> int | None:
    """Pitch class of the lowest note struck at the last onset: the bass of the closing chord."""
    return key_finding.final_bass(piece.onset, piece.pitch)


def estimate_key(piece: Piece, cadence: bool = False) -> tuple[int, str, float]:
    """Krumhansl-Schmuckler key finding: the key whose profile correlates best with the piece's
    duration-weighted pitch classes. Returns (tonic pitch class, "major"/"minor", Pearson r).
    ``cadence``: keys whose tonic is the closing chord's bass gain ``key_finding.FINAL_BASS_BONUS`` (pieces
    end on their tonic; whole-piece histograms lean to the keys they modulate to): the rule the meter
    encoding labels training pieces by, less the key signature (a generated piece's is its header's)."""
    w = pitch_class_weights(piece)
    if w.sum() <= 0 or np.all(w == w[0]):
        return 0, "major", 0.0
    r = key_finding.key_correlations(np.arange(12), w)
    k = int(np.argmax(key_finding.key_scores(r, final_bass(piece) if cadence else None)))
    return k % 12, MODES[k // 12], float(r[k])


def parse_key(name: str) -> tuple[int, str, int]:
    """"F# minor" -> (6, "minor", 3): tonic pitch class, mode, and signed fifths of the signature
    (sharps > 0, flats < 0) as spelled."""
    m = re.fullmatch(r"\s*([A-Ga-g])([#b]*)\s*(major|minor)?\s*", name)
    if not m:
        raise ValueError(f"not a key name: {name!r} (expected e.g. 'Bb major', 'F# minor')")
    letter, acc, mode = m.group(1).upper(), m.group(2), m.group(3) or "major"
    alter = acc.count("#") - acc.count("b")
    fifths = _LETTER_FIFTHS[letter] + 7 * alter - (3 if mode == "minor" else 0)
    return (_LETTER_PC[letter] + alter) % 12, mode, fifths


def accidentals(tonic: int | str, mode: str | None = None) -> int:
    """Number of sharps or flats in the key signature: ``accidentals("D major") == 2``,
    ``accidentals(10, "major") == 2`` (Bb major); integer tonics are spelled as in :func:`key_name`."""
    name = tonic if isinstance(tonic, str) else key_name(tonic, mode or "major")
    if isinstance(tonic, str) and mode is not None:
        name = f"{tonic} {mode}"
    return abs(parse_key(name)[2])


def scale_consistency(piece: Piece) -> float:
    """Share of the piece's note duration inside its best-fitting major (diatonic) scale."""
    w = pitch_class_weights(piece)
    total = w.sum()
    return float((w @ _SCALES).max() / total) if total > 0 else float("nan")


def _key_stats(pieces: list[Piece]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keys = [estimate_key(p) for p in pieces if np.size(p.pitch)]
    acc = np.array([accidentals(t, m) for t, m, _ in keys], np.int64)
    idx = np.array([t + 12 * MODES.index(m) for t, m, _ in keys], np.int64)
    cons = np.array([scale_consistency(p) for p in pieces if np.size(p.pitch)])
    return acc, idx, cons


def key_match(pieces: list[Piece], asked: list[tuple[int, str] | None]) -> dict:
    """How often a piece is in the key it was asked for (its KEY token): the share whose estimated key
    is that key (Krumhansl-Schmuckler, and with the final bass: ``estimate_key(cadence=True)``), and the
    share whose estimate at least has its key signature (relative major/minor, often confused)."""
    kept = [(p, a) for p, a in zip(pieces, asked) if a is not None and np.size(p.pitch)]
    pairs = [(estimate_key(p), a) for p, a in kept]
    same = [(t, m) == (a[0] % 12, a[1]) for (t, m, _), a in pairs]
    cadence = [estimate_key(p, cadence=True)[:2] == (a[0] % 12, a[1]) for p, a in kept]
    def major_tonic(t: int, m: str) -> int:  # one signature, one relative-major tonic
        return (t + (3 if m == "minor" else 0)) % 12

    signature = [major_tonic(t, m) == major_tonic(a[0], a[1]) for (t, m, _), a in pairs]
    return {"asked": len(pairs), "match": _mean(np.array(same)), "match_cadence": _mean(np.array(cadence)),
            "same_signature": _mean(np.array(signature))}


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if np.size(x) else float("nan")


def _norm_hist(x: np.ndarray, n: int) -> np.ndarray:
    h = np.bincount(x, minlength=n).astype(float)
    return h / h.sum() if h.sum() else h


def key_report(generated: list[Piece], reference: list[Piece]) -> dict:
    """Keys of generated vs reference pieces: share of remote keys (4+ accidentals), distances between
    the accidental-count (0..7) and 24-key histograms, and mean scale consistency of each set."""
    ag, kg, cg = _key_stats(generated)
    ar, kr, cr = _key_stats(reference)
    ha, hr = _norm_hist(ag, 8), _norm_hist(ar, 8)
    return {
        "generated_share_4plus_accidentals": _mean(ag >= 4),
        "reference_share_4plus_accidentals": _mean(ar >= 4),
        "accidental_histogram_distance": float(1.0 - np.minimum(ha, hr).sum()),
        "key_distribution_distance": float(0.5 * np.abs(_norm_hist(kg, 24) - _norm_hist(kr, 24)).sum()),
        "scale_consistency_generated": _mean(cg),
        "scale_consistency_reference": _mean(cr),
    }


# ---------------------------------------------------------------------------------------------
# 4. memorisation

_END = -1  # inter-onset interval of the last onset: only matches another piece's last onset


def onset_events(p: Piece) -> tuple[np.ndarray, np.ndarray]:
    """Hash of each onset "event" (set of pitches sounding from that onset, grid interval to the next
    onset) and the grid ticks of the onsets plus the piece end (len n_events + 1), to measure runs."""
    g = _grid(p)
    if g.tick.size == 0:
        return np.zeros(0, np.uint64), np.zeros(1, np.int64)
    chord = np.add.reduceat(_mix(g.pitch), g.starts)
    ioi = np.r_[np.diff(g.gtick), _END]
    events = _mix(chord ^ _mix(ioi + (1 << 40)))
    return events, np.r_[g.gtick, max(g.end_tick, int(g.gtick[-1]))]


def _ngrams(events: np.ndarray, n: int) -> np.ndarray:
    m = events.size - n + 1
    if m <= 0:
        return np.zeros(0, np.uint64)
    h = events[:m].copy()
    for k in range(1, n):
        h = _mix(h * _U(0x100000001B3) + events[k : k + m])
    return h


@dataclass
class CopyIndex:
    """Sorted hashes of every training n-gram of onset events, with their global positions (each
    piece's positions offset so that no run can continue from one piece into the next)."""

    keys: np.ndarray
    positions: np.ndarray
    ngram: int
    pieces: int


def build_copy_index(train_pieces: list[Piece], ngram: int = 4) -> CopyIndex:
    """Index the training pieces once for :func:`longest_copied_run`."""
    keys, pos, base = [], [], 0
    for p in train_pieces:
        ev, _ = onset_events(p)
        h = _ngrams(ev, ngram)
        keys.append(h)
        pos.append(base + np.arange(h.size))
        base += ev.size + ngram
    k = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
    q = np.concatenate(pos) if pos else np.zeros(0, np.int64)
    order = np.argsort(k, kind="stable")
    return CopyIndex(k[order], q[order].astype(np.int64), ngram, len(train_pieces))


def longest_copied_run(piece: Piece, train_index: CopyIndex) -> float:
    """Beats spanned by the longest run of consecutive onsets whose events (chord, interval to the next
    onset) occur verbatim and consecutively in one training piece.

    Runs are seeded by shared ``ngram``-event windows and merged along diagonals (same offset between
    the generated and the training position), which is the greedy extension of every seed at once.
    Runs shorter than ``ngram`` onsets are not seen and give 0.0. A run of events i..j spans from
    onset i to onset j+1 (or the piece end when j is the last onset).
    """
    n = train_index.ngram
    ev, ticks = onset_events(piece)
    g = _ngrams(ev, n)
    if g.size == 0 or train_index.keys.size == 0:
        return 0.0
    lo = np.searchsorted(train_index.keys, g, "left")
    cnt = np.searchsorted(train_index.keys, g, "right") - lo
    total = int(cnt.sum())
    if total == 0:
        return 0.0
    i = np.repeat(np.arange(g.size), cnt)
    within = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    j = train_index.positions[np.repeat(lo, cnt) + within]
    d = j - i
    order = np.lexsort((i, d))
    i, d = i[order], d[order]
    new = np.r_[True, (np.diff(d) != 0) | (np.diff(i) != 1)]
    first = i[new]
    last = np.maximum.reduceat(i, np.flatnonzero(new))
    beats = (ticks[last + n] - ticks[first]) / GRID
    return float(beats.max())


def memorisation_report(generated: list[Piece], train_pieces: list[Piece], held_out: list[Piece],
                        ngram: int = 4, index: CopyIndex | None = None) -> dict:
    """Longest copied run (beats) of generated pieces vs the train set, next to the same for held-out
    real pieces, the natural floor (chorales share cadence formulas). Pass ``index`` to reuse one.
    ``memorised``: more than ``MEMORISED_SHARE`` of the pieces (and more than of the held-out ones) copy a run
    of 16+ beats: a model that learnt its training pieces by heart, or a folder of copies of them."""
    index = index or build_copy_index(train_pieces, ngram)
    gen = np.array([longest_copied_run(p, index) for p in generated], float)
    held = np.array([longest_copied_run(p, index) for p in held_out], float)
    nan = float("nan")
    return {
        "median_beats": float(np.median(gen)) if gen.size else nan,
        "max_beats": float(gen.max()) if gen.size else nan,
        "share_ge_16_beats": float((gen >= 16).mean()) if gen.size else nan,
        "held_out_median_beats": float(np.median(held)) if held.size else nan,
        "held_out_max_beats": float(held.max()) if held.size else nan,
        "held_out_share_ge_16_beats": float((held >= 16).mean()) if held.size else nan,
        "memorised": bool(gen.size and (gen >= 16).mean() > max(MEMORISED_SHARE, (held >= 16).mean() if held.size
                                                                 else 0.0)),
    }


MEMORISED_SHARE = 0.1


def ending_report(pieces: list[Piece], ended: list[bool], keys: list[tuple[int, str] | None]) -> dict:
    """How pieces close: the share that end before the length limit, that end on the tonic's bass of their
    key (the key asked for, or a real piece's own), and on a full chord (as many notes as the piece's fullest
    onset, up to four). A chorale closes on the full tonic chord; a piece cut at the limit does not close."""
    tonic, full = [], []
    for p, e, k in zip(pieces, ended, keys):
        if not np.size(p.pitch):
            tonic.append(False)
            full.append(False)
            continue
        bass = key_finding.final_bass(p.onset, p.pitch)
        _, counts = np.unique(p.onset, return_counts=True)
        tonic.append(bool(e) and k is not None and bass == k[0] % 12)
        full.append(bool(e) and counts[-1] >= min(int(counts.max()), 4))
    keyed = any(k is not None for k in keys)  # without key tokens there is no tonic to close on: NaN
    return {"pieces": len(pieces), "ended": _mean(np.array(ended, bool)),
            "tonic_close": _mean(np.array(tonic)) if keyed else float("nan"), "full_close": _mean(np.array(full))}
