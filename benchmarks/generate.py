"""Decoding speed: incremental (RNN hidden state / Transformer KV cache) vs naive (re-run the prefix
for every new token), at 256, 1024 and 2048 tokens, for each model family at the default sizes.

    python benchmarks/generate.py [--device cuda] [--lengths 256 1024 2048]

The Transformer's context is set to the longest length, so both modes attend to the whole prefix
and compute the same distribution; only the work per token differs.
"""

from __future__ import annotations

import os
import sys

# benchmarks/tokenize.py would shadow the standard library's `tokenize` (imported by torch): drop our folder.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from musesynth.generate.sampling import generate  # noqa: E402
from musesynth.models import FAMILIES, ModelConfig, build_model  # noqa: E402
from musesynth.tokenize import get_encoding  # noqa: E402


def timed(model, enc, n: int, cache: bool, samples: int, context: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    generate(model, [enc.bos_id], n, num_samples=samples, grammar=enc.grammar(), eos_id=None, seed=0,
             use_cache=cache, context=context)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n * samples / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 2048])
    ap.add_argument("--samples", type=int, default=1, help="sequences decoded as one batch")
    ap.add_argument("--models", nargs="+", default=list(FAMILIES))
    args = ap.parse_args()
    device = torch.device(args.device)
    enc = get_encoding("chord")
    context = max(args.lengths)
    print(f"device {device}, batch {args.samples}, tokens/s (higher is better)")
    print(f"{'model':12s}{'tokens':>8s}{'cached':>12s}{'naive':>12s}{'speed-up':>10s}")
    for fam in args.models:
        torch.manual_seed(0)
        model = build_model(ModelConfig(fam, len(enc.vocab), context=context)).to(device).eval()
        timed(model, enc, 16, True, args.samples, context, device)  # warm-up
        for n in args.lengths:
            cached = timed(model, enc, n, True, args.samples, context, device)
            naive = timed(model, enc, n, False, args.samples, context, device)
            print(f"{fam:12s}{n:8d}{cached:12,.0f}{naive:12,.0f}{cached / naive:9.1f}x", flush=True)


if __name__ == "__main__":
    main()
