"""Measured control (issue 11): pieces generated with --composer/--key/--tempo against what was asked.

    python benchmarks/control.py -c RUN [-d DATASET] [--per-cell 4] [--keys "C major" "G major" "D minor" "A minor"]
        [--tempos 70 100 130] [--length 600] [--key-strength 0] [any generate sampling dial] [--json control.json]

For every composer the checkpoint knows and every key given, ``--per-cell`` pieces are generated from
``BOS COMPOSER KEY`` with the header tempo forced (tempos in rotation). The composer classifier is trained
on the real pieces of the val and test splits (never seen in training); see musesynth/evaluate/control.py.
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
from dataclasses import asdict  # noqa: E402

from musesynth.commands.options import add_sampling_options, sampling_from_args  # noqa: E402
from musesynth.data.dataset import load_pieces  # noqa: E402
from musesynth.evaluate.control import _requests, control_report, format_control, generate_controlled  # noqa: E402
from musesynth.generate.model import Model  # noqa: E402
from musesynth.tokenize.meter import parse_key  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--checkpoint", required=True)
    ap.add_argument("-d", "--dataset", help="default: the one the model was trained on")
    ap.add_argument("--per-cell", type=int, default=4)
    ap.add_argument("--keys", nargs="+", default=["C major", "G major", "D minor", "A minor"])
    ap.add_argument("--tempos", nargs="+", type=float, default=[70.0, 100.0, 130.0])
    ap.add_argument("--length", type=int, default=600)
    add_sampling_options(ap)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json")
    a = ap.parse_args()
    sampling = sampling_from_args(a)
    model = Model.load(a.checkpoint, a.device)
    enc, meta = model.encoding, model.meta
    ds = a.dataset or meta.dataset
    real = [(enc.composer_of(t), t) for s in ("val", "test") for t in load_pieces(ds, s)]
    real = [(c, t) for c, t in real if c is not None]
    requests = _requests(list(enc.composers), [parse_key(k) for k in a.keys], a.tempos, a.per_cell)
    t0 = time.perf_counter()
    seqs = generate_controlled(model, requests, a.length, sampling, a.seed)
    r = control_report(enc, requests, seqs, real, a.seed)
    r.update(checkpoint=meta.path, held_out_pieces=len(real), generation_seconds=round(time.perf_counter() - t0, 1),
             length=a.length, sampling=asdict(sampling))
    print(format_control(r))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(r, fh, indent=1)


if __name__ == "__main__":
    main()
