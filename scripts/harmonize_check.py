"""Harmonise the soprano of every test-split chorale of a parts dataset, and score Bach's own lower voices.

    python scripts/harmonize_check.py -c RUN_FOLDER -d DATASET --midi-dir data/bach_midi

Prints, over the test split: the share of melody notes that come out exactly (pitch, onset, duration, in the
output MIDI's Soprano track), the most notes sounding at once, and the NLL per token of Bach's alto, tenor
and bass notes (their NOTE and DUR tokens) with and without the melody read first (``data.melody_first``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import symusic
import torch

from musesynth.artifacts.load import load_model
from musesynth.data.dataset import load_pieces
from musesynth.data.melody_first import melody_only
from musesynth.generate.harmonize import HarmonizeOptions, run_harmonize
from musesynth.generate.voices import most_sounding
from musesynth.generate.sampling import Sampling
from musesynth.tokenize.meter import T_DUR


def rows(score: symusic.Score, track: symusic.Track) -> set[tuple[float, float, int]]:
    n = track.notes.numpy()
    tpq = score.ticks_per_quarter
    return {(t / tpq, d / tpq, int(p)) for t, d, p in zip(n["time"], n["duration"], n["pitch"])}


@torch.no_grad()
def lower_voice_nll(model: torch.nn.Module, enc, piece: np.ndarray, first: bool) -> tuple[float, int]:
    """Summed NLL and count of the piece's NOTE/DUR tokens of parts other than the first."""
    prefix = melody_only(enc, piece, 0) if first else np.zeros(0, np.int64)
    seq = torch.as_tensor(np.r_[prefix, piece][None], dtype=torch.long)
    logits, _ = model(seq[:, :-1])
    logp = torch.log_softmax(logits.float(), -1)[0].gather(1, seq[0, 1:, None])[:, 0].numpy()
    part = enc.part_of[piece]
    lower = (part > 0) | np.r_[False, (part[:-1] > 0) & (enc.token_type[piece[1:]] == T_DUR)]
    lower[0] = False
    at = prefix.size + np.flatnonzero(lower) - 1
    return float(-logp[at].sum()), int(at.size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--checkpoint", required=True)
    ap.add_argument("-d", "--dataset", required=True)
    ap.add_argument("--midi-dir", required=True)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--nll-only", action="store_true", help="skip the harmonisations")
    args = ap.parse_args()
    model, enc, _ = load_model(args.checkpoint, "cpu")
    manifest = json.loads((Path(args.dataset) / "manifest.json").read_text())
    files = [f["file"] for f in manifest["files"] if f["split"] == "test"]
    pieces = load_pieces(Path(args.dataset), "test")
    if args.limit:
        files, pieces = files[: args.limit], pieces[: args.limit]
    nll = {True: [0.0, 0], False: [0.0, 0]}
    for piece in pieces:
        for first in (True, False):
            s, n = lower_voice_nll(model, enc, np.asarray(piece, np.int64), first)
            nll[first][0] += s
            nll[first][1] += n
    exact = total = worst = 0
    with tempfile.TemporaryDirectory() as out:
        for i, name in enumerate([] if args.nll_only else files):
            src = next(Path(args.midi_dir).rglob(name))
            res = run_harmonize(HarmonizeOptions(melody=str(src), checkpoint=args.checkpoint, part="Soprano",
                                                 seed=i, wav=False, png=False, out_dir=out, device="cpu",
                                                 sampling=Sampling()))
            given, made = symusic.Score(str(src)), symusic.Score(res[0]["midi"])
            want = rows(given, next(t for t in given.tracks if t.name == "Soprano" and t.note_num()))
            got = rows(made, made.tracks[0])
            exact += len(want & got)
            if want != got:
                print(f"{name}: {len(want - got)} of {len(want)} melody notes differ, e.g. given "
                      f"{sorted(want - got)[:2]}, written {sorted(got - want)[:2]}")
            total += len(want)
            n = [t.notes.numpy() for t in made.tracks]
            worst = max(worst, most_sounding(np.concatenate([x["time"] for x in n]),
                                             np.concatenate([x["duration"] for x in n])))
    print(f"test-split melodies: {len(files)}; melody notes exact: {exact}/{total}; most notes sounding: {worst}")
    print(f"NLL per A/T/B token given the melody first: {nll[True][0] / nll[True][1]:.3f}; "
          f"without: {nll[False][0] / nll[False][1]:.3f} ({nll[True][1]} tokens)")


if __name__ == "__main__":
    main()
