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
- long notes (two beats or more) and the beat of the bar they start on (cadences; see "bars" below);
- how many notes sound at once, chord types (major, minor, diminished, dominant seventh);
- rhythm: onset position in the beat, durations, gaps between onsets, onsets per beat of the bar.

Every feature is a per-window rate or a histogram computed with NumPy over all onsets of a piece at
once; ``FEATURE_NAMES`` names the columns so a report can say *what* differs.

Bars are 4/4 bars counted from the file's time 0, never from its time signatures: the judge must hear the
music, not a file's annotations, and treat every set alike. The JS Fakes carry no pickup signature, yet in
about half of them (149 of 300) the soprano's long notes fall mostly on beats 2 and 4 of the bars as written:
the music opens with an upbeat the file does not mark. Read by the files' signatures (measured on the
shipped bach-parts model, 2026-12-04), the fakes' top tell became "long notes on beat 1" (0.10 against
Bach's 0.53) and their score rose from 68% to 80% at 16 beats, while the model's (whose pieces write their
pickups) stayed level: a judge that reads signatures scores a missing annotation, and flatters a model
against the fakes. Counted from time 0 every set is read the same way, upbeat or not.
"""

from __future__ import annotations

from dataclasses import dataclass

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
_P = np.arange(128)


@dataclass
class _Window:
    """A piece on the grid, cut into windows: per note (tick, pitch, duration, window, key-relative pitch class)
    and per onset (tick, window, the notes sounding then as a (onsets, 128) roll, top, bass), plus each
    window's key. Consecutive onsets of one window form the pairs ``a`` -> ``b`` that motion is read on."""

    wb: int
    nwin: int
    tick: np.ndarray
    end: np.ndarray
    pitch: np.ndarray
    dur: np.ndarray
    win_note: np.ndarray
    gtick: np.ndarray
    wg: np.ndarray
    S: np.ndarray
    top: np.ndarray
    bass: np.ndarray
    tonic: np.ndarray
    minor: np.ndarray
    fit: np.ndarray
    rel: np.ndarray
    a: np.ndarray
    b: np.ndarray

    @property
    def wp(self) -> np.ndarray:  # window of each pair
        return self.wg[self.a]


def _window(p: Piece, window_beats: int) -> _Window:
    tick = np.rint(np.asarray(p.onset, float) * GRID).astype(np.int64)
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
    S = np.cumsum(roll, 0)[gtick] > 0  # (onsets, 128)
    S[np.searchsorted(gtick, tick), pitch] = True  # a note shorter than the grid still sounds at its onset
    wg = gtick // wt

    # the window's key: Krumhansl-Schmuckler on duration-weighted pitch classes
    pcw = np.bincount(win_note * 12 + pitch % 12, weights=dur, minlength=nwin * 12).reshape(nwin, 12)
    h = pcw - pcw.mean(1, keepdims=True)
    corr = (h @ _CENTRED.T) / np.maximum(np.sqrt((h**2).sum(1, keepdims=True) * (_CENTRED**2).sum(1)), 1e-12)
    k = np.argmax(corr, 1)
    tonic = k % 12
    a = np.flatnonzero(wg[1:] == wg[:-1])
    return _Window(window_beats, nwin, tick, end, pitch, dur, win_note, gtick, wg, S, 127 - np.argmax(S[:, ::-1], 1),
                   np.argmax(S, 1), tonic, k // 12, corr[np.arange(nwin), k], (pitch - tonic[win_note]) % 12, a, a + 1)


def _key(w: _Window) -> list[np.ndarray]:
    in_key = np.where(w.minor[w.win_note] == 1, _IN_MINOR[w.rel], _IN_MAJOR[w.rel])
    return [_hist(w.win_note, w.rel, 12, w.nwin), w.minor, w.fit,
            _rate(w.win_note, ~in_key, np.ones_like(in_key), w.nwin)]


def _voices(w: _Window) -> list[np.ndarray]:
    """Outer-voice intervals and motion, parallel perfect intervals, the leading tone."""
    a, b, S, top, bass, wp, nwin = w.a, w.b, w.S, w.top, w.bass, w.wp, w.nwin
    dtop, dbass = top[b] - top[a], bass[b] - bass[a]
    motion = np.select([dtop * dbass < 0, dtop * dbass > 0, (dtop == 0) ^ (dbass == 0)], [0, 1, 2], 3)
    outer = (top - bass) % 12
    par_outer = _PERFECT[outer[a]] & (outer[a] == outer[b]) & (dtop == dbass) & (dtop != 0) & (top[a] > bass[a])

    def parallel(ref: np.ndarray, d: np.ndarray, above: bool) -> np.ndarray:
        """Any other sounding note a perfect fifth/octave from ``ref`` that moves by the same ``d``."""
        iv = (_P[None, :] - ref[a][:, None]) % 12
        side = _P[None, :] > ref[a][:, None] if above else _P[None, :] < ref[a][:, None]
        cand = S[a] & side & _PERFECT[iv]
        dest = _P[None, :] + d[:, None]
        moved = S[b][np.arange(a.size)[:, None], np.clip(dest, 0, 127)] & (dest >= 0) & (dest <= 127)
        return (cand & moved).any(1) & (d != 0)

    ones = np.ones(a.size, bool)
    # leading tone: pitch class 11 above the window's tonic; when it stops sounding, does the tonic sound above it?
    lt = (_P[None, :] - w.tonic[w.wg][:, None]) % 12 == 11  # (onsets, 128)
    lt_notes = w.rel == 11
    lt_left = S[a] & lt[a] & ~S[b]
    lt_up = lt_left & np.pad(S[b], ((0, 0), (0, 1)))[:, 1:]
    top_lt = lt[a, top[a]] & (dtop != 0)
    return [
        _hist(wp, _bins(np.abs(dtop), _STEP_EDGES), 5, nwin), _hist(wp, _bins(np.abs(dbass), _STEP_EDGES), 5, nwin),
        _hist(wp, motion, 4, nwin),
        _rate(wp, par_outer, ones, nwin), _rate(wp, parallel(bass, dbass, True), ones, nwin),
        _rate(wp, parallel(top, dtop, False), ones, nwin),
        _rate(w.win_note, lt_notes, np.ones_like(lt_notes), nwin),
        np.bincount(wp, weights=lt_up.sum(1), minlength=nwin) / np.maximum(
            np.bincount(wp, weights=lt_left.sum(1), minlength=nwin), 1),
        _rate(wp, top_lt & (dtop == 1), top_lt, nwin),
    ]


def _shift(x: np.ndarray, s: int) -> np.ndarray:
    """``x[:, p + s]``, False off the keyboard."""
    out = np.zeros_like(x)
    if s > 0:
        out[:, :-s] = x[:, s:]
    else:
        out[:, -s:] = x[:, :s]
    return out


def _dissonance(w: _Window) -> list[np.ndarray]:
    """Dissonance above the bass, and whether it is prepared, approached by step, resolved down by step."""
    S, wg, nwin = w.S, w.wg, w.nwin
    above = (_P[None, :] - w.bass[:, None]) % 12
    higher = _P[None, :] > w.bass[:, None]
    diss = S & _DISSONANT[above] & higher
    fourth = S & (above == 5) & higher
    prev = np.r_[np.zeros((1, 128), bool), S[:-1]]
    nxt = np.r_[S[1:], np.zeros((1, 128), bool)]
    prepared = diss & prev
    by_step = diss & ~prev & (_shift(prev, 1) | _shift(prev, 2) | _shift(prev, -1) | _shift(prev, -2))
    resolved = diss & ~nxt & (_shift(nxt, -1) | _shift(nxt, -2))
    n_diss = diss.sum(1).astype(float)
    all_onsets = np.ones(len(wg), bool)

    def per_diss(x: np.ndarray) -> np.ndarray:  # share of the window's dissonant notes
        return np.bincount(wg, weights=x.sum(1), minlength=nwin) / np.maximum(
            np.bincount(wg, weights=n_diss, minlength=nwin), 1)

    return [_rate(wg, n_diss > 0, all_onsets, nwin),
            np.bincount(wg, weights=n_diss, minlength=nwin) / np.maximum(
                np.bincount(wg, weights=S.sum(1), minlength=nwin), 1),
            per_diss(prepared), per_diss(by_step), per_diss(resolved), _rate(wg, fourth.any(1), all_onsets, nwin)]


def _long_notes(w: _Window) -> list[np.ndarray]:
    """Notes of two beats or more, and the beat of the bar they start on."""
    nwin, win_note = w.nwin, w.win_note
    long = w.dur >= 2.0
    beat = w.tick // GRID
    pos = np.bincount(win_note * BAR_BEATS + beat % BAR_BEATS, weights=(long & (w.tick % GRID == 0)).astype(float),
                      minlength=nwin * BAR_BEATS).reshape(nwin, BAR_BEATS)
    pos /= np.maximum(np.bincount(win_note, weights=long.astype(float), minlength=nwin), 1)[:, None]
    longest = np.zeros(nwin)
    np.maximum.at(longest, win_note, np.minimum(w.dur, 2.0 * w.wb) / w.wb)
    return [_rate(win_note, long, np.ones_like(long), nwin), pos, longest]


def _texture(w: _Window) -> list[np.ndarray]:
    """How many notes sound at once, chord types, the bass's degree in the key."""
    wg, nwin, S = w.wg, w.nwin, w.S
    n_sound = S.sum(1)
    pcs = np.zeros((len(wg), 12), bool)
    gi, pi = np.nonzero(S)
    pcs[gi, pi % 12] = True
    match = (pcs[:, None, None, :] == _CHORD_MASKS[None]).all(-1).any(-1)  # (onsets, chord types)
    ctype = np.where(pcs.sum(1) <= 2, len(_CHORDS) + 1, np.where(match.any(1), np.argmax(match, 1), len(_CHORDS)))
    mean_sound = np.bincount(wg, weights=n_sound, minlength=nwin) / np.maximum(np.bincount(wg, minlength=nwin), 1)
    return [_hist(wg, np.clip(n_sound, 1, _MAX_SOUNDING) - 1, _MAX_SOUNDING, nwin), mean_sound / _MAX_SOUNDING,
            _hist(wg, ctype, len(_CHORDS) + 2, nwin), _hist(wg, (w.bass - w.tonic[wg]) % 12, 12, nwin)]


def _rhythm_and_register(w: _Window) -> list[np.ndarray]:
    wg, nwin, gtick, win_note = w.wg, w.nwin, w.gtick, w.win_note
    ioi = (gtick[w.b] - gtick[w.a]) / GRID
    n_notes = np.bincount(win_note, minlength=nwin).astype(float)
    n_groups = np.bincount(wg, minlength=nwin).astype(float)
    lo = np.full(nwin, 127)
    hi = np.zeros(nwin, np.int64)
    np.minimum.at(lo, win_note, w.pitch)
    np.maximum.at(hi, win_note, w.pitch)
    beats_with = np.bincount(wg[np.r_[True, np.diff(gtick // GRID) != 0]], minlength=nwin)
    span = np.clip(np.ceil(w.end.max() / GRID) - np.arange(nwin) * w.wb, 1, w.wb)

    def mean_g(x: np.ndarray) -> np.ndarray:
        return np.bincount(wg, weights=x.astype(float), minlength=nwin) / np.maximum(n_groups, 1)

    return [_hist(wg, gtick % GRID, GRID, nwin), _hist(win_note, _bins(w.dur, _DUR_EDGES), len(_DUR_EDGES), nwin),
            _hist(w.wp, _bins(ioi, _IOI_EDGES), len(_IOI_EDGES), nwin),
            _hist(wg, (gtick // GRID) % BAR_BEATS, BAR_BEATS, nwin),
            mean_g(w.top) / 12.0 - 5, mean_g(w.bass) / 12.0 - 5, mean_g(w.top - w.bass) / 12.0, (hi - lo) / 12.0,
            np.log1p(n_notes), np.log1p(n_groups), 1.0 - np.minimum(beats_with / span, 1.0)]


def window_features(p: Piece, window_beats: int = 8) -> np.ndarray:
    """(n_windows, N_FEATURES): one row per non-empty window of ``window_beats`` beats (see the module doc)."""
    if np.size(p.onset) == 0:
        return np.zeros((0, N_FEATURES))
    w = _window(p, window_beats)
    feats = np.column_stack(_key(w) + _voices(w) + _dissonance(w) + _long_notes(w) + _texture(w)
                            + _rhythm_and_register(w))
    return feats[np.bincount(w.win_note, minlength=w.nwin) > 0]
