"""Does a model look back to the opening phrase when the music repeats it?

For each held-out piece, find its longest exact token repeat (>= --min-tokens, the second occurrence not
overlapping the first) and score the model's NLL on the second occurrence twice: with the whole piece
before it in context, and with only the last --short tokens. A model that copies from long range is far
more certain the second time with the long context; one that cannot see that far is not.

    python scripts/repeat_probe.py -c musesynth/pretrained/bach -d datasets/bach-meter
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from musesynth.data.dataset import load_pieces
from musesynth.training.checkpoint import load_model


def longest_repeat(ids: np.ndarray) -> tuple[int, int, int]:
    """(start of first, start of second, length) of the longest non-overlapping exact repeat."""
    n = ids.size
    best = (0, 0, 0)
    for d in range(1, n):  # diagonal d: compare ids[i] with ids[i + d]
        eq = ids[:-d] == ids[d:]
        if not eq.any():
            continue
        # runs of equal tokens along the diagonal, capped at d (no overlap)
        idx = np.flatnonzero(np.diff(np.r_[0, eq.astype(np.int8), 0]))
        for a, b in zip(idx[::2], idx[1::2]):
            length = min(b - a, d)
            if length > best[2]:
                best = (int(a), int(a + d), int(length))
    return best


@torch.no_grad()
def nll_at(model, ids: np.ndarray, targets: np.ndarray, context: int) -> float:
    """Mean NLL of ids[t] for t in targets, each predicted from at most ``context`` tokens before it."""
    total = 0.0
    for t in targets:
        x = torch.as_tensor(ids[max(0, t - context):t][None])
        logits, _ = model(x)
        total += float(F.cross_entropy(logits[0, -1:], torch.as_tensor([ids[t]])))
    return total / len(targets)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--checkpoint", required=True)
    ap.add_argument("-d", "--dataset", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--short", type=int, default=100, help="the short context (the old seq_len)")
    ap.add_argument("--min-tokens", type=int, default=32)
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    model, enc, meta = load_model(a.checkpoint)
    long_ctx = meta.model_config.seq_len
    rows = []
    for ids in load_pieces(a.dataset, a.split):
        ids = np.asarray(ids[:long_ctx], np.int64)
        first, second, length = longest_repeat(ids)
        if length < a.min_tokens or second - a.short <= 0:
            continue
        targets = np.arange(second + 1, second + length)  # the first token of the copy has no cue yet
        rows.append((length, second - first, nll_at(model, ids, targets, long_ctx),
                     nll_at(model, ids, targets, a.short), nll_at(model, ids, np.arange(first + 1, first + length),
                                                                   long_ctx)))
    r = np.array(rows)
    print(f"{len(rows)} held-out pieces with an exact repeat of >= {a.min_tokens} tokens inside the first "
          f"{long_ctx} (median length {np.median(r[:, 0]):.0f} tokens, median distance {np.median(r[:, 1]):.0f})")
    print(f"NLL on the first occurrence (full context):         {r[:, 4].mean():.3f}")
    print(f"NLL on the repeat, context {long_ctx} (sees the original): {r[:, 2].mean():.3f}")
    print(f"NLL on the repeat, context {a.short} (cannot see it):      {r[:, 3].mean():.3f}")


if __name__ == "__main__":
    main()
