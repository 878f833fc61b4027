"""Fewer voices under a melody: each test-split soprano harmonised with `--voices` subsets, beside Bach's bass.

    python benchmarks/voice_subsets.py -c musesynth/pretrained/bach-parts -d datasets/bach-parts --voices B "A,B"

A part's NOTE tokens name its place in the header, not its role, so a model of four parts writes a voice in the
register of its place: this prints, per subset, the melody notes kept exactly, the pieces where more notes sound
than the melody and the voices asked for, and the register of the written Bass (median and 5-95th percentile of
its MIDI pitches, and its notes) against Bach's own bass in the same chorales. One seed per melody (seed = its
index), 1 particle by default (about 3 minutes for the 39 test chorales per subset on 2 cores).
"""

from __future__ import annotations

import os
import sys

# benchmarks/tokenize.py would shadow the standard library's `tokenize` (imported by torch): drop our folder.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import symusic  # noqa: E402

from musesynth import api  # noqa: E402
from musesynth.generate.voices import most_sounding  # noqa: E402


def pitches(score: symusic.Score, name: str) -> np.ndarray:
    return next(t for t in score.tracks if t.name == name and t.note_num()).notes.numpy()["pitch"]


def kept_exactly(made: symusic.Score, given: symusic.Track, tpq: int) -> int:
    """Melody notes of ``given`` (a track of a score of ``tpq`` ticks per beat) found in ``made``'s first track
    with the same onset, duration and pitch."""
    m, g = made.tracks[0].notes.numpy(), given.notes.numpy()
    mt = made.ticks_per_quarter
    same = (np.isclose(m["time"][:, None] / mt, g["time"][None] / tpq)
            & np.isclose(m["duration"][:, None] / mt, g["duration"][None] / tpq)
            & (m["pitch"][:, None] == g["pitch"][None]))
    return int(same.any(0).sum())


def subset(model: api.Model, files: list[Path], voices: str, particles: int) -> dict[str, float]:
    exact = total = over = 0
    bass: list[np.ndarray] = []
    bach: list[np.ndarray] = []
    for seed, f in enumerate(files):
        given = symusic.Score(str(f))
        soprano = next(t for t in given.tracks if t.name == "Soprano" and t.note_num())
        made = api.harmonize(f, model=model, part="Soprano", voices=voices, particles=particles, seed=seed)[0].score
        exact += kept_exactly(made, soprano, given.ticks_per_quarter)
        total += soprano.note_num()
        times = np.concatenate([t.notes.numpy()["time"] for t in made.tracks])
        ends = np.concatenate([t.notes.numpy()["duration"] for t in made.tracks])
        over += most_sounding(times, ends) > 1 + len(voices.split(","))
        bass.append(pitches(made, "Bass"))
        bach.append(pitches(given, "Bass"))
    b, r = np.concatenate(bass), np.concatenate(bach)
    return {"melody_exact": exact, "melody_notes": total, "pieces_over": over, "pieces": len(files),
            "bass_median": float(np.median(b)), "bass_p5": float(np.percentile(b, 5)),
            "bass_p95": float(np.percentile(b, 95)), "bass_notes": int(b.size), "bach_median": float(np.median(r)),
            "bach_p5": float(np.percentile(r, 5)), "bach_p95": float(np.percentile(r, 95)), "bach_notes": int(r.size)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--checkpoint", required=True, help="a parts model (run folder, checkpoint, shipped folder)")
    ap.add_argument("-d", "--dataset", required=True, help="the parts dataset whose test split names the chorales")
    ap.add_argument("--voices", nargs="+", default=["B", "A,B"], help="the --voices subsets (each must name the Bass)")
    ap.add_argument("--particles", type=int, default=1, help="SMC particles per harmonisation")
    ap.add_argument("--json", help="write the figures to this JSON file")
    args = ap.parse_args()
    manifest = json.loads((Path(args.dataset) / "manifest.json").read_text())
    root = Path(manifest["source"])
    files = [root / f["file"] for f in manifest["files"] if f["split"] == "test"]
    model = api.load_model(args.checkpoint)
    out = {}
    for voices in args.voices:
        r = out[voices] = subset(model, files, voices, args.particles)
        print(f"--voices {voices}: melody notes exact {r['melody_exact']}/{r['melody_notes']}; pieces with more "
              f"than {1 + len(voices.split(','))} notes sounding {r['pieces_over']}/{r['pieces']}; Bass median "
              f"MIDI {r['bass_median']:.0f} ({r['bass_p5']:.0f}-{r['bass_p95']:.0f}), {r['bass_notes']} notes; "
              f"Bach's {r['bach_median']:.0f} ({r['bach_p5']:.0f}-{r['bach_p95']:.0f}), {r['bach_notes']} notes")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
