"""A calibrated classifier two-sample test: how often can a classifier tell one set of windows from another?

Lopez-Paz & Oquab (2017): train a classifier to tell set A's windows from set B's; its held-out accuracy
is the figure (0.5: it found nothing that tells them apart; 1.0: it tells every window). The figure
depends on the judge, so every report carries controls that show what this judge can hear:

- real vs real: two halves (by piece) of the real set. It should read 0.45-0.55; outside it, the
  folds or the window counts are off and no figure of the run is trustworthy.
- real vs the same windows with 5% of the notes moved a semitone: it should read >= 0.60 on 8-beat
  windows; a judge that cannot hear a few wrong notes cannot judge a model.
- real vs the same windows with pitches shuffled within each piece: it should read >= 0.95.

How it is made: :func:`~musesynth.evaluate.features.window_features` rows; both sets subsampled to the
same number of windows (the figure grows with the number of windows, so sets are compared only at equal
counts); ``StratifiedGroupKFold`` folds with every window of a piece (and of its altered copy) in one
fold, so the judge must recognise a style, not a piece; scikit-learn's ``HistGradientBoostingClassifier``
and a standardised logistic regression, classes balanced, scored by balanced accuracy on the held-out
fold and averaged over folds and repeats (new subsample and folds each time). The figure is the two
judges' vote (their mean probability): picking the better judge after the fact would lift every figure,
the real-vs-real control included, by chance alone; each judge's own figure is reported beside it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from musesynth.evaluate.features import FEATURE_NAMES, window_features
from musesynth.evaluate.music_stats import Piece

REAL_VS_REAL = (0.45, 0.55)
SEMITONE_MIN = 0.60  # on 8-beat windows
SHUFFLED_MIN = 0.95
SEMITONE_SHARE = 0.05
VOTE = "vote"


@dataclass
class WindowSet:
    """Feature rows of a set of pieces and the piece each row comes from."""

    x: np.ndarray  # (n, N_FEATURES)
    piece: np.ndarray  # (n,) piece index within the set

    @property
    def pieces(self) -> int:
        return int(np.unique(self.piece).size)

    def __len__(self) -> int:
        return len(self.x)


def windows(pieces: list[Piece], window_beats: int) -> WindowSet:
    rows = [window_features(p, window_beats) for p in pieces]
    x = np.concatenate(rows) if rows else np.zeros((0, len(FEATURE_NAMES)))
    return WindowSet(x, np.repeat(np.arange(len(rows)), [len(r) for r in rows]))


def _judges(seed: int) -> dict[str, object]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "boosted trees": HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, max_leaf_nodes=15,
                                                        min_samples_leaf=10, l2_regularization=1.0,
                                                        class_weight="balanced", early_stopping=False,
                                                        random_state=seed),
        "logistic regression": make_pipeline(StandardScaler(), LogisticRegression(C=0.05, class_weight="balanced",
                                                                                  max_iter=2000)),
    }


def _subsample(w: WindowSet, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(len(w), size=min(n, len(w)), replace=False))


def two_sample(a: WindowSet, b: WindowSet, n_windows: int | None = None, repeats: int = 3, folds: int = 5,
               seed: int = 0, paired: bool = False, tick: Callable[[], None] | None = None) -> dict:
    """Held-out balanced accuracy of telling ``a``'s windows from ``b``'s, each subsampled to ``n_windows``
    (default: the smaller count). ``paired``: ``b`` holds altered copies of ``a``'s pieces (piece i of
    ``b`` is piece i of ``a``), so both share a fold. NaN when a side has fewer than two pieces.
    ``tick`` is called once per classifier fitted (progress)."""
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedGroupKFold
    from threadpoolctl import threadpool_limits

    n = min(len(a), len(b)) if n_windows is None else min(n_windows, len(a), len(b))
    k = min(folds, a.pieces, b.pieces)
    out = {"windows": int(n), "pieces": (a.pieces, b.pieces), "folds": int(k), "repeats": repeats}
    nan = float("nan")
    if k < 2 or n < 4:
        return out | {"accuracy": nan, "std": nan, "judges": {}}
    rng = np.random.default_rng(seed)
    scores: dict[str, list[float]] = {}
    used: list[int] = []  # the folds each repeat ran (fewer where its drawn windows come from fewer pieces)
    # One thread: a few hundred windows fit in well under a second on one core, while OpenMP's spinning workers
    # slow the fits many times over when the other core is busy (seen: minutes per test on a loaded machine).
    with threadpool_limits(limits=1, user_api="openmp"):
        for r in range(repeats):
            ia, ib = _subsample(a, n, rng), _subsample(b, n, rng)
            x = np.concatenate([a.x[ia], b.x[ib]])
            y = np.r_[np.zeros(len(ia)), np.ones(len(ib))]
            offset = 0 if paired else a.piece.max() + 1
            groups = np.r_[a.piece[ia], b.piece[ib] + offset]
            # as many folds as each side's drawn windows come from pieces (4 windows of 10 pieces: 4 at most;
            # StratifiedGroupKFold refuses more folds than a class has members, which ended `evaluate` with a
            # traceback where a model wrote only a few windows)
            kr = min(k, np.unique(a.piece[ia]).size, np.unique(b.piece[ib]).size)
            missed = 2 * k  # the fits ``fits`` counted for this repeat, ticked off as they run or are skipped
            splits = ()
            if kr >= 2:
                used.append(kr)
                cv = StratifiedGroupKFold(n_splits=kr, shuffle=True, random_state=seed * 1000 + r)
                splits = cv.split(x, y, groups)
            per: dict[str, list[float]] = {}
            for tr, te in splits:
                if np.unique(y[tr]).size < 2 or np.unique(y[te]).size < 2:
                    continue
                prob = np.zeros(len(te))
                for name, judge in _judges(seed + r).items():
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        judge.fit(x[tr], y[tr])
                        p = judge.predict_proba(x[te])[:, 1]
                    prob += p / 2
                    per.setdefault(name, []).append(balanced_accuracy_score(y[te], p > 0.5))
                    missed -= 1
                    if tick is not None:
                        tick()
                per.setdefault(VOTE, []).append(balanced_accuracy_score(y[te], prob > 0.5))
            for _ in range(missed if tick is not None else 0):  # the progress bar ends full
                tick()
            for name, v in per.items():
                scores.setdefault(name, []).append(float(np.mean(v)))
    if used:
        out["folds"] = int(min(used))
    if not scores:
        return out | {"accuracy": nan, "std": nan, "judges": {}}
    judges = {name: {"accuracy": float(np.mean(v)), "std": float(np.std(v))} for name, v in scores.items()}
    vote = judges.pop(VOTE)
    return out | {"accuracy": vote["accuracy"], "std": vote["std"], "judges": judges}


def fits(a: WindowSet, b: WindowSet, repeats: int = 3, folds: int = 5) -> int:
    """How many classifiers :func:`two_sample` fits (for a progress bar's total)."""
    return 2 * repeats * min(folds, a.pieces, b.pieces) if min(a.pieces, b.pieces) >= 2 else 0


def telling_features(a: WindowSet, b: WindowSet, top: int = 6) -> list[dict]:
    """The features whose means differ most between the sets, in pooled standard deviations (Cohen's d):
    what the judge can hear, in a musician's words."""
    if len(a) < 2 or len(b) < 2:
        return []
    ma, mb = a.x.mean(0), b.x.mean(0)
    sd = np.sqrt(0.5 * (a.x.var(0) + b.x.var(0)))
    d = np.where(sd > 1e-9, (ma - mb) / np.maximum(sd, 1e-9), 0.0)
    order = np.argsort(-np.abs(d))[:top]
    return [{"feature": FEATURE_NAMES[i], "a_mean": float(ma[i]), "b_mean": float(mb[i]), "effect": float(d[i])}
            for i in order]


def semitone_errors(pieces: list[Piece], share: float = SEMITONE_SHARE, seed: int = 0) -> list[Piece]:
    """Copies with ``share`` of the notes (at least one per piece) moved a semitone up or down."""
    rng = np.random.default_rng(seed)
    out = []
    for p in pieces:
        pitch = np.asarray(p.pitch, np.int64).copy()
        if pitch.size:
            k = max(1, int(round(share * pitch.size)))
            idx = rng.choice(pitch.size, size=k, replace=False)
            pitch[idx] += rng.choice([-1, 1], size=k)
        out.append(replace(p, pitch=np.clip(pitch, 0, 127)))
    return out


def pitch_shuffled(pieces: list[Piece], seed: int = 0) -> list[Piece]:
    """Copies with each piece's pitches dealt to its notes at random (same notes, rhythm and range)."""
    rng = np.random.default_rng(seed)
    return [replace(p, pitch=rng.permutation(np.asarray(p.pitch))) for p in pieces]


def halves(w: WindowSet, seed: int) -> tuple[WindowSet, WindowSet]:
    """Two random halves of a window set, by piece."""
    ids = np.unique(w.piece)
    perm = np.random.default_rng(seed).permutation(ids)
    first = np.isin(w.piece, perm[: len(ids) // 2])
    return WindowSet(w.x[first], w.piece[first]), WindowSet(w.x[~first], w.piece[~first])


def total_fits(sizes: dict[str, WindowSet], real: WindowSet, repeats: int, folds: int = 5) -> int:
    """Classifiers :func:`judge_report` fits for one window length (a progress bar's total)."""
    n = sum(fits(w, real, repeats, folds) for w in sizes.values())
    half = max(real.pieces // 2, 0)
    rr = 2 * min(folds, half) * repeats if half >= 2 else 0
    return n + rr + 2 * fits(real, real, repeats, folds)


def judge_report(sets: dict[str, list[Piece]], real: list[Piece], window_beats: int = 8, repeats: int = 3,
                 seed: int = 0, tick: Callable[[], None] | None = None) -> dict:
    """Each set against the real pieces at one window length, all at the same number of windows, beside
    the three controls (each with its threshold and whether it passed) and the most telling features."""
    wr = windows(real, window_beats)
    ws = {name: windows(p, window_beats) for name, p in sets.items()}
    n = min([len(wr)] + [len(w) for w in ws.values()])
    out: dict = {"window_beats": window_beats, "windows_per_set": int(n), "real_pieces": wr.pieces, "sets": {}}
    for name, w in ws.items():
        out["sets"][name] = two_sample(w, wr, n, repeats, seed=seed, tick=tick) | {
            "telling": telling_features(w, wr)}
    runs = []
    for r in range(repeats):
        ha, hb = halves(wr, seed + 7919 * (r + 1))
        runs.append(two_sample(ha, hb, n, 1, seed=seed + r, tick=tick))
    acc = np.array([x["accuracy"] for x in runs])
    acc = acc[np.isfinite(acc)]
    nan = float("nan")
    rr = {"accuracy": float(acc.mean()) if acc.size else nan, "std": float(acc.std()) if acc.size else nan,
          "windows": runs[0]["windows"], "range": list(REAL_VS_REAL)}
    semi = two_sample(wr, windows(semitone_errors(real, seed=seed), window_beats), n, repeats, seed=seed,
                      paired=True, tick=tick)
    shuf = two_sample(wr, windows(pitch_shuffled(real, seed=seed), window_beats), n, repeats, seed=seed,
                      paired=True, tick=tick)
    semi_min = SEMITONE_MIN if window_beats <= 8 else None
    def passed(acc: float, ok: bool) -> bool | None:  # None: too few pieces to tell
        return None if acc != acc else bool(ok)

    controls = {
        "real_vs_real": rr | {"pass": passed(rr["accuracy"], REAL_VS_REAL[0] <= rr["accuracy"] <= REAL_VS_REAL[1])},
        "semitone_5pct": {k: semi[k] for k in ("accuracy", "std", "windows")} | {
            "min": semi_min, "pass": passed(semi["accuracy"], semi_min is None or semi["accuracy"] >= semi_min)},
        "pitch_shuffled": {k: shuf[k] for k in ("accuracy", "std", "windows")} | {
            "min": SHUFFLED_MIN, "pass": passed(shuf["accuracy"], shuf["accuracy"] >= SHUFFLED_MIN)},
    }
    out["controls"] = controls
    out["calibrated"] = all(c["pass"] is True for c in controls.values())
    return out


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f}%"


def format_judge(rep: dict, labels: dict[str, str]) -> list[str]:
    """Report lines for one window length: the sets, the controls with their thresholds, what differs."""
    wb, n = rep["window_beats"], rep["windows_per_set"]
    lines = [f"  {wb}-beat windows ({n} per set; how often a classifier tells each set from held-out Bach; "
             "the controls show what it can hear):"]
    for name, r in rep["sets"].items():
        judges = ", ".join(f"{j} {_pct(v['accuracy'])}" for j, v in r["judges"].items())
        lines.append(f"    {labels.get(name, name):34s}{_pct(r['accuracy']):>7s} +/- {100 * r['std']:.1f}"
                     + (f"  ({judges})" if judges else ""))
    c = rep["controls"]
    rr, se, sh = c["real_vs_real"], c["semitone_5pct"], c["pitch_shuffled"]
    flag = {True: "ok", False: "FAILED", None: "too few pieces to tell"}
    lines.append(f"    {'control: real vs real (halves)':34s}{_pct(rr['accuracy']):>7s}  want 45-55%: "
                 f"{flag[rr['pass']]}")
    want = f"want >= {se['min']:.0%}: {flag[se['pass']]}" if se["min"] is not None else "no threshold at this length"
    lines.append(f"    {'control: 5% notes a semitone off':34s}{_pct(se['accuracy']):>7s}  {want}")
    lines.append(f"    {'control: pitches shuffled':34s}{_pct(sh['accuracy']):>7s}  want >= 95%: {flag[sh['pass']]}")
    if not rep["calibrated"]:
        lines.append("    WARNING: a control failed or could not run; this judge's figures at this window length are "
                     "not calibrated")
    for name, r in rep["sets"].items():
        if r["telling"]:
            lines.append(f"    what tells {labels.get(name, name)} from held-out (mean there vs held-out, "
                         "effect in SDs):")
            lines += [f"      {t['feature']:36s}{t['a_mean']:8.3f} vs {t['b_mean']:.3f}  ({t['effect']:+.2f})"
                      for t in r["telling"]]
    return lines
