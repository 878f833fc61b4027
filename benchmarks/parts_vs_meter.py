"""The parts encoding against meter (issue 22): test NLL per 16th-note frame, tokens per sixteenth, speed.

    python benchmarks/parts_vs_meter.py RUN [RUN ...]

Each RUN is a training run (or checkpoint) on a dataset of the same MIDI files, so the test split holds the
same pieces. A piece's frames are its length in sixteenths (from the first bar's start to the end of its last
note), the JSB benchmark's unit; NLL per frame is the model's test NLL per token times tokens per frame. Speed
is the median training tokens per second of the run's metrics.csv, and that in sixteenths per second.
"""

from __future__ import annotations

import os
import sys

# benchmarks/tokenize.py would shadow the standard library's `tokenize` (imported by torch): drop our folder.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from musesynth.data.dataset import load_pieces  # noqa: E402
from musesynth.evaluate.run import EvaluateOptions, evaluate_checkpoint  # noqa: E402
from musesynth.training.checkpoint import load_model  # noqa: E402


def measure(run: str, device: str) -> dict[str, object]:
    _, enc, meta = load_model(run, device)
    pieces = load_pieces(meta.dataset, "test")
    steps_per_16th = enc.resolution // 4  # type: ignore[attr-defined]
    frames = sum(int(np.ceil((q["onset"] + q["duration"]).max() / steps_per_16th))
                 for q in map(enc.decode_quantized, pieces))  # type: ignore[attr-defined]
    tokens = int(sum(p.size for p in pieces))
    r = evaluate_checkpoint(EvaluateOptions(checkpoint=run, samples=0, device=device))
    per_frame = tokens / frames
    out: dict[str, object] = {"run": run, "encoding": enc.name, "vocab": len(enc.vocab), "params": r.params,
                              "test_pieces": len(pieces), "frames": frames, "tokens_per_16th": round(per_frame, 3),
                              "nll_per_token": round(r.model_metrics.nll, 4),
                              "nll_per_16th": round(r.model_metrics.nll * per_frame, 4),
                              "bigram_nll_per_16th": round(r.baselines["bigram"].nll * per_frame, 4)}
    metrics = Path(run if Path(run).is_dir() else Path(run).parent) / "metrics.csv"
    if metrics.is_file():
        with open(metrics) as fh:
            tps = [float(row["tokens_per_s"]) for row in csv.DictReader(fh) if row["kind"] == "train"]
        if tps:
            out["train_tokens_per_s"] = round(float(np.median(tps)), 1)
            out["train_16ths_per_s"] = round(float(np.median(tps)) / per_frame, 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="training runs or checkpoints, one per encoding")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    for run in args.runs:
        print(json.dumps(measure(run, args.device)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
