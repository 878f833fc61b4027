"""The harmonisation benchmark (musesynth.evaluate.harmonization): every test-split soprano harmonised, beside Bach.

    python benchmarks/harmonize.py -c musesynth/pretrained/bach-parts -d datasets/bach-parts [--seeds 3]

The dataset is a parts dataset made with the model's own vocabulary (`make pretrained` builds datasets/bach-parts).
Prints the NLL of Bach's alto, tenor and bass given the soprano, the harmonisations' melody notes kept, pitch-class
sets per beat matched with Bach's, voice leading beside Bach's, and the classifier's accuracy for harmonisations
and for the model's own pieces against Bach's chorales; ``--json`` keeps it all.
"""

from __future__ import annotations

import os
import sys

# benchmarks/tokenize.py would shadow the standard library's `tokenize` (imported by torch): drop our folder.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from musesynth.errors import MusesynthError  # noqa: E402
from musesynth.evaluate.harmonization import BenchOptions, format_benchmark, run_benchmark  # noqa: E402
from musesynth.generate.harmonize import DEFAULT_PARTICLES, HARMONIZE_TEMPERATURE  # noqa: E402
from musesynth.generate.sampling import Sampling  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--checkpoint", required=True, help="a parts model (run folder, checkpoint, shipped "
                    "folder)")
    ap.add_argument("-d", "--dataset", required=True, help="parts dataset with the model's vocabulary (its test split)")
    ap.add_argument("--seeds", type=int, default=1, help="harmonisations per melody (sampling seeds 0..N-1)")
    ap.add_argument("--limit", type=int, default=0, help="first N chorales only, in --splits order "
                    "(0: all)")
    ap.add_argument("--windows", default="8,16", help="classifier window lengths in beats")
    ap.add_argument("--no-unconditioned", action="store_true", help="skip the model's own pieces (the yardstick)")
    ap.add_argument("--particles", type=int, default=DEFAULT_PARTICLES, help="SMC particles per harmonisation "
                    "(harmonize --particles, default %(default)s; 1: plain masked sampling)")
    ap.add_argument("--splits", default="test", help="the dataset splits harmonised and judged, e.g. test,val (the "
                    "held-out chorales `evaluate`'s classifier judges with: 92 instead of 39, so its controls pass)")
    ap.add_argument("-t", "--temperature", type=float, default=HARMONIZE_TEMPERATURE, help="harmonize's -t "
                    "(default %(default)s, harmonize's; the free pieces are sampled at generate's defaults)")
    ap.add_argument("-p", "--top-p", type=float, default=1.0, help="harmonize's -p (default %(default)s)")
    ap.add_argument("--json", help="write every figure to this JSON file")
    args = ap.parse_args()
    t0 = time.perf_counter()
    try:
        r = run_benchmark(BenchOptions(args.checkpoint, args.dataset, seeds=args.seeds, limit=args.limit,
                                       unconditioned=not args.no_unconditioned, particles=args.particles,
                                       splits=tuple(s.strip() for s in args.splits.split(",") if s.strip()),
                                       windows=tuple(int(w) for w in args.windows.split(",")),
                                       sampling=Sampling(temperature=args.temperature, top_p=args.top_p)))
    except MusesynthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(format_benchmark(r)))
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
