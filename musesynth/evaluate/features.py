"""What a musician listens for in a few beats of chorale-like music, as one fixed-length row per window.

Each piece is cut into non-overlapping windows of ``window_beats`` beats; each window's key is found from
its own notes (Krumhansl-Schmuckler on duration-weighted pitch classes), and pitches are read relative to
that key, so a model is not judged on which keys it chose but on how it moves within one. The features
follow the rule checks of Bach-or-Mock (arXiv 2006.13329) as far as a voice-less note list allows:

- key: key-relative pitch classes, mode, how well the window fits its key, notes outside the key;
- outer voices (the highest and lowest sounding notes at each onset): melodic intervals, contrary /
  similar / oblique motion, parallel fifths and octaves (also of the bass or top with any inner note);
- the leading tone: how often it sounds and how often it rises to the tonic when it leaves;
- dissonance above the bass (seconds, tritones, sevenths): how often, prepared (held from the
  previous onset, a suspension), approached by step, resolved down by step;
- long notes (two beats or more) and the beat of the bar they start on (cadences; 4/4 bars from the
  file's time 0, as the encodings write them);
- how many notes sound at once, chord types (major, minor, diminished, dominant seventh);
- rhythm: onset position in the beat, durations, gaps between onsets, onsets per beat of the bar.

Every feature is a per-window rate or a histogram computed with NumPy over all onsets of a piece at
once; ``FEATURE_NAMES`` names the columns so a report can say *what* differs.
"""

from __future__ import annotations

import numpy as np

from musesynth.evaluate.music_stats import Piece

GRID = 12  # grid steps per beat: sixteenths and triplets exactly
BAR_BEATS = 4

_KS_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KS_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_PROFILES = np.stack([np.roll(p, t) for p in (_KS_MAJOR, _KS_MINOR) for t in range(12)])
_CENTRED = _PROFILES - _PROFILES.mean(1, keepdims=True)
_IN_MAJOR = np.isin(np.arange(12), [0, 2, 4, 5, 7, 9, 11])
_IN_MINOR = np.isin(np.arange(12), [0, 2, 3, 5, 7, 8, 9, 10, 11])  # natural, harmonic and melodic
_DISSONANT = np.isin(np.arange(12), [1, 2, 6, 10, 11])  # above the bass
_PERFECT = np.isin(np.arange(12), [0, 7])
_STEP_EDGES = np.array([0, 1, 3, 5, 8])  # |interval|: unison, step, third, fourth-fifth, leap beyond
_DUR_EDGES = np.array([0, 0.2, 0.3, 0.4, 0.6, 0.9, 1.1, 1.6, 2.1, 3.1, 4.1])
_IOI_EDGES = np.array([0, 0.2, 0.3, 0.4, 0.6, 0.9, 1.1, 1.6, 2.1])
_MAX_SOUNDING = 6
_CHORDS = {"major": (0, 4, 7), "minor": (0, 3, 7), "diminished": (0, 3, 6), "dominant7": (0, 4, 7, 10)}


def _names() -> list[str]:
    n = [f"key-relative pc {i}" for i in range(12)]
    n += ["minor mode", "key fit", "notes outside the key"]
    n += [f"{v} interval {b}" for v in ("top", "bass")
          for b in ("unison", "step", "third", "fourth-fifth", "leap > fifth")]
    n += [f"outer voices {m} motion" for m in ("contrary", "similar", "oblique", "static")]
    n += ["parallel 5ths/8ves outer voices", "parallel 5ths/8ves with the bass", "parallel 5ths/8ves with the top"]
    n += ["leading tone share", "leading tone rises to tonic", "top leading tone rises to tonic"]
    n += ["dissonant onsets", "dissonant notes", "dissonance prepared", "dissonance approached by step",
          "dissonance resolved down by step", "fourth above the bass"]
    n += ["long notes (>= 2 beats)"] + [f"long notes on beat {b + 1}" for b in range(BAR_BEATS)] + ["longest note"]
    n += [f"{k} sounding" if k < _MAX_SOUNDING else f"{k}+ sounding" for k in range(1, _MAX_SOUNDING + 1)]
    n += ["mean sounding"] + [f"chord {c}" for c in _CHORDS] + ["chord other", "chord <= 2 pitch classes"]
    n += [f"bass degree {i}" for i in range(12)]
    n += [f"onset at {i}/12 beat" for i in range(GRID)]
    n += [f"duration bin {lo:g}-" for lo in _DUR_EDGES]
    n += [f"gap bin {lo:g}-" for lo in _IOI_EDGES]
    n += [f"onsets on beat {b + 1}" for b in range(BAR_BEATS)]
    n += ["mean top pitch", "mean bass pitch", "outer spacing", "range", "notes (log)", "onsets (log)",
          "beats without onset"]
    return n


FEATURE_NAMES = _names()
N_FEATURES = len(FEATURE_NAMES)


def _hist(idx: np.ndarray, bins: np.ndarray, nbins: int, nwin: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Per-window histogram (nwin, nbins), rows normalised (empty rows stay 0)."""
    h = np.bincount(idx * nbins + bins, weights=weights, minlength=nwin * nbins).reshape(nwin, nbins)
    return h / np.maximum(h.sum(1, keepdims=True), 1e-12)


def _rate(idx: np.ndarray, hit: np.ndarray, of: np.ndarray, nwin: int) -> np.ndarray:
    """Per window: hits / cases (0 where a window has no case)."""
    n = np.bincount(idx, weights=of.astype(float), minlength=nwin)
    h = np.bincount(idx, weights=(hit & of).astype(float), minlength=nwin)
    return np.where(n > 0, h / np.maximum(n, 1), 0.0)


def _bins(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(edges, x, "right") - 1, 0, len(edges) - 1)


def _chord_masks() -> np.ndarray:
    """(n_chords, 12, 12) pitch-class masks of each chord type on each root."""
    out = np.zeros((len(_CHORDS), 12, 12), bool)
    for i, ivs in enumerate(_CHORDS.values()):
        for r in range(12):
            out[i, r, (np.array(ivs) + r) % 12] = True
    return out


_CHORD_MASKS = _chord_masks()


def window_features(p: Piece, window_beats: int = 8) -> np.ndarray:
    """(n_windows, N_FEATURES): one row per non-empty window of ``window_beats`` beats (see the module doc)."""
    onset = np.asarray(p.onset, float)
    if onset.size == 0:
        return np.zeros((0, N_FEATURES))
    tick = np.rint(onset * GRID).astype(np.int64)
    pitch = np.clip(np.asarray(p.pitch, np.int64), 0, 127)
    dur = np.maximum(np.asarray(p.duration, float), 1.0 / GRID)
    end = np.maximum(tick + np.rint(dur * GRID).astype(np.int64), tick + 1)
    bar = BAR_BEATS * GRID
    t0 = int(tick.min()) // bar * bar  # whole bars before the first onset do not count; the file's bar phase stays
    tick, end = tick - t0, end - t0
    wt = window_beats * GRID
    win_note = tick // wt
    nwin = int(win_note.max()) + 1

    # sounding notes at every onset: a piano roll on the grid, read at the onset ticks
    roll = np.zeros((int(end.max()) + 1, 128), np.int16)
    np.add.at(roll, (tick, pitch), 1)
    np.add.at(roll, (end, pitch), -1)
    gtick = np.unique(tick)
    S = np.cumsum(roll, 0)[gtick] > 0  # (groups, 128)
    S[np.searchsorted(gtick, tick), pitch] = True  # a note shorter than the grid still sounds at its onset
    ng = gtick.size
    P = np.arange(128)
    n_sound = S.sum(1)
    top = 127 - np.argmax(S[:, ::-1], 1)
    bass = np.argmax(S, 1)
    wg = gtick // wt

    # the window's key: Krumhansl-Schmuckler on duration-weighted pitch classes
    pcw = np.bincount(win_note * 12 + pitch % 12, weights=dur, minlength=nwin * 12).reshape(nwin, 12)
    h = pcw - pcw.mean(1, keepdims=True)
    corr = (h @ _CENTRED.T) / np.maximum(np.sqrt((h**2).sum(1, keepdims=True) * (_CENTRED**2).sum(1)), 1e-12)
    k = np.argmax(corr, 1)
    tonic, minor = k % 12, k // 12
    fit = corr[np.arange(nwin), k]
    rel = (pitch - tonic[win_note]) % 12
    in_key = np.where(minor[win_note] == 1, _IN_MINOR[rel], _IN_MAJOR[rel])
    rel_pc = _hist(win_note, rel, 12, nwin)
    outside = _rate(win_note, ~in_key, np.ones_like(in_key), nwin)

    # consecutive onsets in one window
    same = wg[1:] == wg[:-1]
    wp = wg[:-1][same]
    dtop, dbass = np.diff(top)[same], np.diff(bass)[same]
    top_iv = _hist(wp, _bins(np.abs(dtop), _STEP_EDGES), 5, nwin)
    bass_iv = _hist(wp, _bins(np.abs(dbass), _STEP_EDGES), 5, nwin)
    motion = np.select([dtop * dbass < 0, dtop * dbass > 0, (dtop == 0) ^ (dbass == 0)], [0, 1, 2], 3)
    motion_h = _hist(wp, motion, 4, nwin)
    a, b = np.flatnonzero(same), np.flatnonzero(same) + 1  # group indices of each pair
    outer = (top - bass) % 12
    par_outer = _PERFECT[outer[a]] & (outer[a] == outer[b]) & (dtop == dbass) & (dtop != 0) & (top[a] > bass[a])

    def parallel(ref: np.ndarray, d: np.ndarray, above: bool) -> np.ndarray:
        """Any other sounding note a perfect fifth/octave from ``ref`` that moves by the same ``d``."""
        iv = (P[None, :] - ref[a][:, None]) % 12
        side = P[None, :] > ref[a][:, None] if above else P[None, :] < ref[a][:, None]
        cand = S[a] & side & _PERFECT[iv]
        dest = P[None, :] + d[:, None]
        moved = S[b][np.arange(a.size)[:, None], np.clip(dest, 0, 127)] & (dest >= 0) & (dest <= 127)
        return (cand & moved).any(1) & (d != 0)

    ones = np.ones(a.size, bool)
    par_bass = parallel(bass, dbass, True)
    par_top = parallel(top, dtop, False)

    # leading tone: pitch class 11 above the window's tonic; when it stops sounding, does tonic sound above it?
    lt = (P[None, :] - tonic[wg][:, None]) % 12 == 11  # (groups, 128)
    lt_notes = rel == 11
    lt_left = S[a] & lt[a] & ~S[b]
    lt_up = lt_left & np.pad(S[b], ((0, 0), (0, 1)))[:, 1:]
    top_lt = lt[a, top[a]] & (dtop != 0)
    top_lt_up = top_lt & (dtop == 1)

    # dissonance above the bass and its treatment
    above = (P[None, :] - bass[:, None]) % 12
    diss = S & _DISSONANT[above] & (P[None, :] > bass[:, None])
    fourth = S & (above == 5) & (P[None, :] > bass[:, None])
    prev = np.r_[np.zeros((1, 128), bool), S[:-1]]
    nxt = np.r_[S[1:], np.zeros((1, 128), bool)]

    def shift(x: np.ndarray, s: int) -> np.ndarray:  # x[:, p + s], False off the keyboard
        out = np.zeros_like(x)
        if s > 0:
            out[:, :-s] = x[:, s:]
        else:
            out[:, -s:] = x[:, :s]
        return out

    prepared = diss & prev
    by_step = diss & ~prev & (shift(prev, 1) | shift(prev, 2) | shift(prev, -1) | shift(prev, -2))
    resolved = diss & ~nxt & (shift(nxt, -1) | shift(nxt, -2))
    n_diss = diss.sum(1).astype(float)

    def per_diss(x: np.ndarray) -> np.ndarray:  # share of the window's dissonant notes
        return np.bincount(wg, weights=x.sum(1), minlength=nwin) / np.maximum(
            np.bincount(wg, weights=n_diss, minlength=nwin), 1)

    diss_onsets = _rate(wg, n_diss > 0, np.ones(ng, bool), nwin)
    diss_notes = np.bincount(wg, weights=n_diss, minlength=nwin) / np.maximum(
        np.bincount(wg, weights=n_sound, minlength=nwin), 1)
    fourth_rate = _rate(wg, fourth.any(1), np.ones(ng, bool), nwin)

    # long notes and the beat of the bar they start on
    beat = tick // GRID
    long = dur >= 2.0
    long_share = _rate(win_note, long, np.ones_like(long), nwin)
    long_pos = np.bincount(win_note * BAR_BEATS + beat % BAR_BEATS, weights=(long & (tick % GRID == 0)).astype(float),
                           minlength=nwin * BAR_BEATS).reshape(nwin, BAR_BEATS)
    long_pos /= np.maximum(np.bincount(win_note, weights=long.astype(float), minlength=nwin), 1)[:, None]
    longest = np.zeros(nwin)
    np.maximum.at(longest, win_note, np.minimum(dur, 2.0 * window_beats) / window_beats)

    # texture and chords
    sound_h = _hist(wg, np.clip(n_sound, 1, _MAX_SOUNDING) - 1, _MAX_SOUNDING, nwin)
    mean_sound = np.bincount(wg, weights=n_sound, minlength=nwin) / np.maximum(np.bincount(wg, minlength=nwin), 1)
    pcs = np.zeros((ng, 12), bool)
    gi, pi = np.nonzero(S)
    pcs[gi, pi % 12] = True
    match = (pcs[:, None, None, :] == _CHORD_MASKS[None]).all(-1).any(-1)  # (groups, chord types)
    small = pcs.sum(1) <= 2
    ctype = np.where(small, len(_CHORDS) + 1, np.where(match.any(1), np.argmax(match, 1), len(_CHORDS)))
    chord_h = _hist(wg, ctype, len(_CHORDS) + 2, nwin)
    bass_deg = _hist(wg, (bass - tonic[wg]) % 12, 12, nwin)

    # rhythm
    pos_h = _hist(wg, gtick % GRID, GRID, nwin)
    dur_h = _hist(win_note, _bins(dur, _DUR_EDGES), len(_DUR_EDGES), nwin)
    ioi = np.diff(gtick)[same] / GRID
    ioi_h = _hist(wp, _bins(ioi, _IOI_EDGES), len(_IOI_EDGES), nwin)
    beat_h = _hist(wg, (gtick // GRID) % BAR_BEATS, BAR_BEATS, nwin)

    n_notes = np.bincount(win_note, minlength=nwin).astype(float)
    n_groups = np.bincount(wg, minlength=nwin).astype(float)
    lo = np.full(nwin, 127)
    hi = np.zeros(nwin, np.int64)
    np.minimum.at(lo, win_note, pitch)
    np.maximum.at(hi, win_note, pitch)
    gbeat = gtick // GRID
    beats_with = np.bincount(wg[np.r_[True, np.diff(gbeat) != 0]], minlength=nwin)
    span = np.clip(np.ceil(end.max() / GRID) - np.arange(nwin) * window_beats, 1, window_beats)

    def mean_g(x: np.ndarray) -> np.ndarray:
        return np.bincount(wg, weights=x.astype(float), minlength=nwin) / np.maximum(n_groups, 1)

    feats = np.column_stack([
        rel_pc, minor, fit, outside,
        top_iv, bass_iv, motion_h,
        _rate(wp, par_outer, ones, nwin), _rate(wp, par_bass, ones, nwin), _rate(wp, par_top, ones, nwin),
        _rate(win_note, lt_notes, np.ones_like(lt_notes), nwin),
        np.bincount(wp, weights=lt_up.sum(1), minlength=nwin) / np.maximum(
            np.bincount(wp, weights=lt_left.sum(1), minlength=nwin), 1),
        _rate(wp, top_lt_up, top_lt, nwin),
        diss_onsets, diss_notes, per_diss(prepared), per_diss(by_step), per_diss(resolved), fourth_rate,
        long_share, long_pos, longest,
        sound_h, mean_sound / _MAX_SOUNDING, chord_h, bass_deg,
        pos_h, dur_h, ioi_h, beat_h,
        mean_g(top) / 12.0 - 5, mean_g(bass) / 12.0 - 5, mean_g(top - bass) / 12.0, (hi - lo) / 12.0,
        np.log1p(n_notes), np.log1p(n_groups), 1.0 - np.minimum(beats_with / span, 1.0),
    ])
    return feats[n_notes > 0]
