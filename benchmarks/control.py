"""Measured control (issue 11): pieces generated with --composer/--key/--tempo against what was asked.

    python benchmarks/control.py -c RUN [-d DATASET] [--per-cell 4] [--keys "C major" "G major" "D minor" "A minor"]
        [--tempos 70 100 130] [--length 600] [--key-strength 0] [--json control.json]

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

from musesynth.data.dataset import load_pieces  # noqa: E402
from musesynth.device import pick_device  # noqa: E402
from musesynth.evaluate.control import _requests, control_report, format_control, generate_controlled  # noqa: E402
from musesynth.generate.sampling import Sampling  # noqa: E402
from musesynth.tokenize.meter import parse_key  # noqa: E402
from musesynth.training.checkpoint import load_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--checkpoint", required=True)
    ap.add_argument("-d", "--dataset", help="default: the one the model was trained on")
    ap.add_argument("--per-cell", type=int, default=4)
    ap.add_argument("--keys", nargs="+", default=["C major", "G major", "D minor", "A minor"])
    ap.add_argument("--tempos", nargs="+", type=float, default=[70.0, 100.0, 130.0])
    ap.add_argument("--length", type=int, default=600)
    ap.add_argument("-t", "--temperature", type=float, default=1.0)
    ap.add_argument("-k", "--top-k", type=int, default=0)
    ap.add_argument("-p", "--top-p", type=float, default=1.0)
    ap.add_argument("--repeat-bias", type=float, default=Sampling.repeat_bias)
    ap.add_argument("--key-strength", type=float, default=Sampling.key_strength,
                    help="log-odds taken from out-of-key notes (generate --key-strength)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json")
    a = ap.parse_args()
    model, enc, meta = load_model(a.checkpoint, pick_device(a.device))
    ds = a.dataset or meta.dataset
    real = [(enc.composer_of(t), t) for s in ("val", "test") for t in load_pieces(ds, s)]
    real = [(c, t) for c, t in real if c is not None]
    requests = _requests(list(enc.composers), [parse_key(k) for k in a.keys], a.tempos, a.per_cell)
    t0 = time.perf_counter()
    seqs = generate_controlled(model, enc, requests, a.length, Sampling(a.temperature, a.top_k, a.top_p, a.repeat_bias,
                                                                              a.key_strength).validate(), a.seed,
                               meta.key_frames)
    r = control_report(enc, requests, seqs, real, a.seed)
    r.update(checkpoint=meta.path, held_out_pieces=len(real), generation_seconds=round(time.perf_counter() - t0, 1),
             length=a.length, sampling={"temperature": a.temperature, "top_k": a.top_k, "top_p": a.top_p,
                                                        "repeat_bias": a.repeat_bias, "key_strength": a.key_strength})
    print(format_control(r))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(r, fh, indent=1)


if __name__ == "__main__":
    main()
