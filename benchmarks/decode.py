"""Batch-1 decoding speed of the model the package ships and of a benchmark-default Transformer.

    python benchmarks/decode.py [--threads 2] [--tokens 256] [--prefix 128] [--device cpu]

Times ``tokens`` decoding steps of ``musesynth.generate.sampling.Decoder`` (sampling, grammar mask
and the cached one-token model call: what ``musesynth generate`` runs) after a ``prefix``-token
primer, best of ``--repeat``. For a before/after figure, run this same script with
``PYTHONPATH`` pointing at the older checkout.
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
from musesynth.models import ModelConfig, build_model, count_params  # noqa: E402
from musesynth.tokenize import get_encoding  # noqa: E402
from musesynth.training.checkpoint import load_model  # noqa: E402
from musesynth.training.shipped import DEFAULT_MODEL  # noqa: E402


def rate(model: torch.nn.Module, grammar: np.ndarray | None, bos: int, vocab: int, args: argparse.Namespace,
         seq_len: int) -> float:
    """Tokens/s of ``args.tokens`` steps after a random ``args.prefix``-token primer (best of ``repeat``)."""
    rng = np.random.default_rng(0)
    prefix = rng.integers(3, vocab, args.prefix)
    prefix[0] = bos
    best = float("inf")
    for _ in range(args.repeat):
        dec = Decoder(model, prefix, DecodeSpec(grammar=grammar, seq_len=seq_len), seed=0)
        with dec.step_context():
            dec.step()  # warm-up (the first step may build the cache)
            if model.embed.weight.device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(args.tokens):
                dec.step()
            if model.embed.weight.device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
    return args.tokens / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    ap.add_argument("--tokens", type=int, default=256, help="decoding steps timed")
    ap.add_argument("--prefix", type=int, default=128, help="primer tokens before the timed steps")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    shipped, enc, meta = load_model(DEFAULT_MODEL, device)
    chord = get_encoding("chord")
    torch.manual_seed(0)
    default = build_model(ModelConfig("transformer", len(chord.vocab), seq_len=100)).to(device).eval()
    print(f"device {device} ({torch.get_num_threads()} threads), batch 1, {args.tokens} tokens after a "
          f"{args.prefix}-token primer, best of {args.repeat}")
    print(f"{'model':34s}{'params':>12s}{'context':>9s}{'tokens/s':>10s}{'ms/token':>10s}")
    rows = [(f"shipped bach (meter, {meta.family})", shipped, enc, meta.model_config.seq_len),
            ("benchmark default (chord)", default, chord, 100)]
    with torch.no_grad():
        for name, model, e, ctx in rows:
            r = rate(model, e.grammar(), e.bos_id, len(e.vocab), args, ctx)
            print(f"{name:34s}{count_params(model):12,d}{ctx:9d}{r:10,.0f}{1000 / r:10.2f}", flush=True)


if __name__ == "__main__":
    main()
