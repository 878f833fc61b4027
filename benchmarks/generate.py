"""Decoding speed: incremental (RNN hidden state / Transformer KV cache) vs naive (re-run the prefix
for every new token) when the sequence is 256, 1024 and 2048 tokens long, for each model family at
the default sizes.

    python benchmarks/generate.py [--device cuda] [--lengths 256 1024 2048] [--window 32]

At length n, the figure is the rate of the last ``window`` tokens: the decoding steps generate() makes
(musesynth.generate.sampling.Decoder.step) after an (n - window)-token prefix, the prefill untimed.
Naive decoding costs O(n) per token there, cached O(1) (RNN) or O(n) attention reads with no
recomputation (Transformer). The Transformer's context is the longest length, so both modes
attend to the whole prefix and compute the same distribution.
"""

from __future__ import annotations

import os
import sys

# benchmarks/tokenize.py would shadow the standard library's `tokenize` (imported by torch): drop our folder.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from musesynth.generate.sampling import Decoder, DecodeSpec  # noqa: E402
from musesynth.models import FAMILIES, ModelConfig, build_model  # noqa: E402
from musesynth.tokenize import get_encoding  # noqa: E402


def rate_at(model, enc, n: int, window: int, cache: bool, samples: int, seq_len: int, device) -> float:
    """Tokens/s of ``window`` decoding steps after an (n - window)-token prefix (best of 3)."""
    prefix = torch.randint(3, len(enc.vocab), (n - window,)).numpy()
    prefix[0] = enc.bos_id
    best = float("inf")
    for _ in range(3):
        dec = Decoder(model, np.tile(prefix, (samples, 1)),
                      DecodeSpec(grammar=enc.grammar(), seq_len=seq_len, use_cache=cache), seed=0)
        with dec.step_context():
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(window):
                dec.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
    return window * samples / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 2048])
    ap.add_argument("--samples", type=int, default=1, help="sequences decoded as one batch")
    ap.add_argument("--window", type=int, default=64, help="tokens timed at each length")
    ap.add_argument("--models", nargs="+", default=list(FAMILIES))
    args = ap.parse_args()
    device = torch.device(args.device)
    enc = get_encoding("chord")
    seq_len = max(args.lengths)
    print(f"device {device}, batch {args.samples}, tokens/s over the last {args.window} tokens (higher is better)")
    print(f"{'model':12s}{'tokens':>8s}{'cached':>12s}{'naive':>12s}{'speed-up':>10s}")
    for fam in args.models:
        torch.manual_seed(0)
        model = build_model(ModelConfig(fam, len(enc.vocab), seq_len=seq_len)).to(device).eval()
        rate_at(model, enc, 64, 16, True, args.samples, seq_len, device)  # warm-up
        for n in args.lengths:
            cached = rate_at(model, enc, n, args.window, True, args.samples, seq_len, device)
            naive = rate_at(model, enc, n, args.window, False, args.samples, seq_len, device)
            print(f"{fam:12s}{n:8d}{cached:12,.0f}{naive:12,.0f}{cached / naive:9.1f}x", flush=True)


if __name__ == "__main__":
    main()
