"""Measured control: do pieces generated with ``--composer C --key K --tempo T`` come out in C's style, in
K, at T?

- **Key**: the Krumhansl-Schmuckler estimate of each generated piece (``musicality.estimate_key``, from the
  notes alone) against the key asked for; the same estimator on real held-out pieces against their own key
  (read from the file) is the reference for how often the estimator itself agrees; and the same with the
  closing chord's bass as a cue (``estimate_key(cadence=True)``), which agrees with real pieces more often.
- **Composer**: a small classifier (multinomial logistic regression on each piece's mean and spread of the
  8-beat window features of ``musicality.window_features``) is trained on real held-out pieces only. Its
  confusion matrix on the generated pieces (rows: composer asked for) is reported next to its
  cross-validated confusion matrix on the real pieces (real-vs-real: what the features can tell at all).
- **Tempo**: the share of pieces whose first tempo lies in the tempo bin asked for (bins a semitone apart).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from musesynth.evaluate.music_stats import Piece, piece_from_score
from musesynth.evaluate.musicality import estimate_key, window_features
from musesynth.generate.model import Model
from musesynth.generate.pipeline import decode_prompt
from musesynth.generate.prompt import batch_prompts, build_prompt
from musesynth.generate.request import Controls, GenerationRequest
from musesynth.generate.sampling import Sampling
from musesynth.tokenize import Encoding
from musesynth.tokenize.meter import key_name


def piece_features(p: Piece) -> np.ndarray | None:
    w = window_features(p)
    return np.r_[w.mean(0), w.std(0)] if w.shape[0] else None


def fit_softmax(x: np.ndarray, y: np.ndarray, k: int, steps: int = 400, lr: float = 0.5,
                l2: float = 1e-2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Multinomial logistic regression by full-batch gradient descent on standardised features."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    w = np.zeros((z.shape[1], k))
    onehot = np.eye(k)[y]
    for _ in range(steps):
        logits = z @ w
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        w -= lr * (z.T @ (p - onehot) / len(z) + l2 * w)
    return w, mu, sd


def predict_softmax(model: tuple[np.ndarray, np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    w, mu, sd = model
    return np.argmax(((x - mu) / sd) @ w, 1)


def confusion(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y * k + pred, minlength=k * k).reshape(k, k)


def real_vs_real(x: np.ndarray, y: np.ndarray, k: int, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Cross-validated confusion matrix of the classifier on real pieces."""
    fold = np.random.default_rng(seed).permutation(len(y)) % folds
    pred = np.empty_like(y)
    for f in range(folds):
        test = fold == f
        pred[test] = predict_softmax(fit_softmax(x[~test], y[~test], k), x[test])
    return confusion(y, pred, k)


def _requests(composers: list[str], keys: list[tuple[int, str]], tempos: list[float], per_cell: int):
    """Every (composer, key) pair ``per_cell`` times, tempos in rotation."""
    out = []
    for c in composers:
        for i, k in enumerate(keys):
            out += [(c, k, tempos[(i + j) % len(tempos)]) for j in range(per_cell)]
    return out


def generate_controlled(model: Model, requests: list[tuple[str, tuple[int, str], float]], length: int,
                        sampling: Sampling, seed: int) -> list[np.ndarray]:
    """One piece per request, from ``BOS COMPOSER KEY`` with the header tempo forced (one batch per request
    set of equal tempo, so a batch shares its forced token)."""
    seqs: list[np.ndarray | None] = [None] * len(requests)
    for bpm in sorted({r[2] for r in requests}):
        idx = [i for i, r in enumerate(requests) if r[2] == bpm]
        asked = [GenerationRequest(controls=Controls(key_name(*requests[i][1]), requests[i][0], bpm),
                                   sampling=sampling, length=length, seed=seed).validate() for i in idx]
        prompt = batch_prompts([build_prompt(r, model) for r in asked], model)
        for i, s in zip(idx, decode_prompt(model, prompt, asked[0])):
            seqs[i] = s
    return seqs  # type: ignore[return-value]


def control_report(enc: Encoding, requests: list[tuple[str, tuple[int, str], float]], seqs: list[np.ndarray],
                   real: list[tuple[str, np.ndarray]], seed: int = 0) -> dict[str, Any]:
    """Key, composer and tempo agreement of generated pieces (``seqs``, one per request) with what was asked,
    next to the same measures on the real held-out pieces ``real`` ((composer, tokens) pairs)."""
    keyed, ctl = enc.keyed(), enc.header_controls()
    if keyed is None or ctl is None:
        raise ValueError(f"the control report needs key, composer and tempo tokens (the '{enc.name}' encoding "
                         f"has none)")
    composers = sorted({c for c, _ in real} | {r[0] for r in requests})
    cidx = {c: i for i, c in enumerate(composers)}
    k = len(composers)
    gen = [piece_from_score(enc.decode(s)) for s in seqs]
    def hits(pieces: list[Piece], keys: list, cadence: bool) -> list[bool]:
        return [estimate_key(p, cadence)[:2] == (k[0] % 12, k[1]) for p, k in zip(pieces, keys) if k is not None]

    asked = [r[1] for r in requests]
    real_pieces = [piece_from_score(enc.decode(t)) for _, t in real]
    real_keys = [keyed.key_of(t) for _, t in real]

    feats = [piece_features(p) for p in real_pieces]
    ok = [i for i, f in enumerate(feats) if f is not None]
    x = np.stack([feats[i] for i in ok])
    y = np.array([cidx[real[i][0]] for i in ok])
    rr = real_vs_real(x, y, k, seed=seed)
    clf = fit_softmax(x, y, k)
    gfeats = [piece_features(p) for p in gen]
    gok = [i for i, f in enumerate(gfeats) if f is not None]
    gy = np.array([cidx[requests[i][0]] for i in gok])
    gpred = predict_softmax(clf, np.stack([gfeats[i] for i in gok])) if gok else np.zeros(0, np.int64)
    gc = confusion(gy, gpred, k)

    first_tempo = [enc.header_info(s).get("tempo") for s in seqs]
    in_bin = [t is not None and ctl.tempo_token_id(t) == ctl.tempo_token_id(r[2])
              for t, r in zip(first_tempo, requests)]
    return {
        "pieces": len(seqs), "composers": composers,
        "key_accuracy": float(np.mean(hits(gen, asked, False))),
        "key_accuracy_real": float(np.mean(hits(real_pieces, real_keys, False))),
        "key_accuracy_cadence": float(np.mean(hits(gen, asked, True))),
        "key_accuracy_cadence_real": float(np.mean(hits(real_pieces, real_keys, True))),
        "composer_accuracy": float(np.trace(gc) / max(gc.sum(), 1)),
        "composer_accuracy_real_vs_real": float(np.trace(rr) / max(rr.sum(), 1)),
        "chance": 1.0 / k, "confusion_generated": gc.tolist(), "confusion_real_vs_real": rr.tolist(),
        "tempo_in_bin": float(np.mean(in_bin)),
    }


def format_control(r: dict[str, Any]) -> str:
    names = r["composers"]
    w = max(10, max(len(n) for n in names) + 1)

    def table(m: list[list[int]]) -> list[str]:
        head = " " * w + "".join(f"{n[:w - 1]:>{w}s}" for n in names)
        return [head] + [f"{names[i]:<{w}s}" + "".join(f"{v:>{w}d}" for v in row) for i, row in enumerate(m)]

    return "\n".join([
        f"{r['pieces']} generated pieces",
        f"key as asked: {r['key_accuracy']:.0%} (estimator vs the real held-out pieces' own keys: "
        f"{r['key_accuracy_real']:.0%}); with the final bass: {r['key_accuracy_cadence']:.0%} (real "
        f"{r['key_accuracy_cadence_real']:.0%})",
        f"tempo in the bin asked for: {r['tempo_in_bin']:.0%}",
        f"composer recognised: {r['composer_accuracy']:.0%} of generated pieces (real-vs-real "
        f"{r['composer_accuracy_real_vs_real']:.0%}, chance {r['chance']:.0%})",
        "confusion, generated (rows: composer asked for; columns: classifier's answer):",
        *table(r["confusion_generated"]),
        "confusion, real vs real (cross-validated on held-out pieces):", *table(r["confusion_real_vs_real"]),
    ])
