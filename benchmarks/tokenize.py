"""Tokenization throughput: our chord encoding vs MidiTok's REMI on the same files.

    python benchmarks/tokenize.py -d data/bach_midi

Both are timed from file path to token ids on one core (parse included), best of --repeat runs;
then our full `build_dataset` pipeline (all cores, split + write) for the end-to-end figure.
"""

from __future__ import annotations

import os
import sys

# This file's name shadows the standard library's `tokenize` (which NumPy imports): drop our folder.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import miditok  # noqa: E402
import numpy as np  # noqa: E402

from musesynth.data.build import build_dataset  # noqa: E402
from musesynth.data.corpus import DEFAULT_CORPUS_DIR  # noqa: E402
from musesynth.data.files import find_midi_files  # noqa: E402
from musesynth.tokenize import get_encoding  # noqa: E402


def best_of(repeat: int, fn) -> tuple[float, int]:
    best, n = float("inf"), 0
    for _ in range(repeat):
        t = time.perf_counter()
        n = fn()
        best = min(best, time.perf_counter() - t)
    return best, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-d", "--midi-dir", default=DEFAULT_CORPUS_DIR)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    files = find_midi_files(args.midi_dir)
    enc = get_encoding("chord")
    remi = miditok.REMI(miditok.TokenizerConfig(use_tempos=True))

    def ours() -> int:
        return sum(enc.encode_file(f).size for f in files)

    def theirs() -> int:
        total = 0
        for f in files:
            seq = remi.encode(f)
            total += sum(len(s.ids) for s in seq) if isinstance(seq, list) else len(seq.ids)
        return total

    t_ours, n_ours = best_of(args.repeat, ours)
    t_remi, n_remi = best_of(args.repeat, theirs)
    with tempfile.TemporaryDirectory() as tmp:
        t_pipe, _ = best_of(1, lambda: build_dataset(args.midi_dir, Path(tmp) / "ds", quiet=True).files_used)

    nf = len(files)
    print(f"{nf} files from {args.midi_dir}")
    print(f"{'':28s}{'files/s':>10s}{'tokens/s':>14s}{'tokens':>10s}")
    print(f"{'musesynth chord (1 core)':28s}{nf / t_ours:10.0f}{n_ours / t_ours:14.0f}{n_ours:10d}")
    print(f"{'MidiTok REMI (1 core)':28s}{nf / t_remi:10.0f}{n_remi / t_remi:14.0f}{n_remi:10d}")
    print(f"{'musesynth data (all cores)':28s}{nf / t_pipe:10.0f}{n_ours / t_pipe:14.0f}")
    print(f"ratio files/s chord vs REMI: {t_remi / t_ours:.1f}x; tokens per file: "
          f"{np.float64(n_ours) / nf:.0f} vs {np.float64(n_remi) / nf:.0f}")


if __name__ == "__main__":
    main()
