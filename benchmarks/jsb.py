"""The canonical JSB Chorales benchmark: test NLL in nats per 16th-note frame, trained on the train split alone.

    python benchmarks/jsb.py --minutes 10 -o /tmp/jsb                 # chord and meter encodings
    python benchmarks/jsb.py --encodings meter --minutes 60 --threads 2 -o /tmp/jsb

Data: ``Jsb16thSeparated.npz`` (Boulanger-Lewandowski et al. 2012, on a 16th grid with separate voices for
Coconet; as distributed in the TonicNet repository, Apache-2.0), read from ``--npz`` (default
``../shared/data/jsb/``; the benchmark only, never the package). Splits 229 / 76 / 77 chorales; the test
split has 18,900 sixteenths.

Each chorale becomes a 4-track MIDI file (S, A, T, B; a pitch repeated on consecutive sixteenths is one
held note, so repeated notes merge as in every published use of this grid; 4/4; no fermatas). For each
encoding the files are built into a dataset with `musesynth data` (file names are salted so that the
project's hash split puts every chorale in its canonical split; the manifest is checked), a model is
trained on the train split alone (the validation split picks the best checkpoint; the music21 chorales,
which contain the test pieces, are never used), and the test split is scored piece by piece: the total
NLL of every token after BOS (header included) in windows of the model's context, divided by the number
of test sixteenths. This is the one unit every encoding can report (TonicNet: 0.220 nats per token x 5
tokens per sixteenth, about 1.10 nats per sixteenth after 3-6 GPU-hours with the JS Fakes added).

Another encoding (the part-aware one, once it exists) joins with ``--encodings NAME``.
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

import numpy as np  # noqa: E402
import symusic  # noqa: E402
import torch  # noqa: E402

_ROOT = Path(__file__).resolve().parents[1]
# ../shared from the project's root (a worktree one level deeper finds it one more level up)
NPZ = next((p for p in (_ROOT.parent / "shared" / "data" / "jsb" / "Jsb16thSeparated.npz",
                        _ROOT.parents[1] / "shared" / "data" / "jsb" / "Jsb16thSeparated.npz") if p.is_file()),
           _ROOT.parent / "shared" / "data" / "jsb" / "Jsb16thSeparated.npz")
SPLITS = {"train": "train", "valid": "val", "test": "test"}
TPQ = 480
SIXTEENTH = TPQ // 4


def load_jsb(path: Path) -> dict[str, list[np.ndarray]]:
    """{split: [(n_16ths, 4) float arrays of MIDI pitches, S A T B; NaN or < 0 = silent]}."""
    d = np.load(path, allow_pickle=True, encoding="latin1")
    return {k: [np.asarray(c, np.float64).reshape(len(c), -1) for c in d[k]] for k in SPLITS}


def chorale_score(grid: np.ndarray) -> symusic.Score:
    """One track per voice; consecutive sixteenths of one pitch merge into one held note."""
    score = symusic.Score(TPQ)
    score.tempos.append(symusic.Tempo(0, 100.0))
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    for v, name in enumerate(("soprano", "alto", "tenor", "bass")[: grid.shape[1]]):
        col = grid[:, v]
        sound = np.isfinite(col) & (col >= 0)
        p = np.where(sound, col, -1).astype(np.int64)
        start = np.flatnonzero(sound & np.r_[True, p[1:] != p[:-1]])
        change = np.flatnonzero(np.r_[p[1:] != p[:-1], True]) + 1  # where the pitch changes (or the piece ends)
        end = change[np.searchsorted(change, start, "right")]  # a note lasts while its pitch repeats
        track = symusic.Track(name=name, program=52)
        if start.size:
            track.notes = symusic.Note.from_numpy(
                time=(start * SIXTEENTH).astype(np.int32), duration=((end - start) * SIXTEENTH).astype(np.int32),
                pitch=p[start].astype(np.int8), velocity=np.full(start.size, 80, np.int8))
        score.tracks.append(track)
    return score


def salted_name(split: str, i: int) -> str:
    """A file name that the project's hash split (musesynth.data.split) puts in ``split``."""
    from musesynth.data.split import split_of

    for salt in range(100000):
        name = f"jsb-{split}-{i:03d}-{salt}.mid"
        if split_of(name) == SPLITS[split]:
            return name
    raise RuntimeError("no salt found")  # unreachable: each try succeeds with probability >= 0.1


def write_midi(data: dict[str, list[np.ndarray]], out: Path) -> Path:
    midi = out / "midi"
    if midi.is_dir() and len(list(midi.glob("*.mid"))) == sum(len(v) for v in data.values()):
        return midi
    midi.mkdir(parents=True, exist_ok=True)
    for split, chorales in data.items():
        for i, grid in enumerate(chorales):
            chorale_score(grid).dump_midi(str(midi / salted_name(split, i)))
    return midi


def test_nll(run_dir: Path, dataset: Path, threads: int) -> tuple[float, int]:
    """Total NLL (nats) of every token after BOS of every test piece, and the token count."""
    from musesynth.data.dataset import load_pieces
    from musesynth.data.key_frame import to_frame
    from musesynth.models.likelihood import split_loss
    from musesynth.training.checkpoint import load_model

    torch.set_num_threads(threads)
    model, enc, meta = load_model(str(run_dir), torch.device("cpu"))
    total, tokens = 0.0, 0
    for piece in load_pieces(dataset, "test"):
        if meta.key_frames:  # scored as the model reads music: the piece moved to its frame
            piece = to_frame(enc, piece, meta.key_frames)[0]
        s = split_loss(model, np.asarray(piece), meta.model_config.seq_len, 16, torch.device("cpu"), enc.pad_id)
        total, tokens = total + s.nll_sum, tokens + s.tokens
    return total, tokens


def run_encoding(encoding: str, midi: Path, out: Path, a: argparse.Namespace, sixteenths: int) -> dict:
    from musesynth.data.build import build_dataset
    from musesynth.data.dataset import load_manifest
    from musesynth.training.config import TrainConfig
    from musesynth.training.loop import train

    ds = out / f"dataset-{encoding}"
    if not (ds / "manifest.json").is_file():
        build_dataset(midi, ds, encoding, workers=1, quiet=True)
    manifest = load_manifest(ds)
    wrong = [f["file"] for f in manifest.files if SPLITS[f["file"].split("-")[1]] != f["split"]]
    if wrong:
        raise SystemExit(f"split mismatch for {len(wrong)} files, e.g. {wrong[0]}")
    cfg = TrainConfig.from_dict({
        "dataset": str(ds), "model": a.model, "out_dir": str(out / "runs"), "run_name": f"jsb-{encoding}",
        "seq_len": a.seq_len, "embed_dim": 256, "hidden_dim": a.hidden, "num_layers": 2, "batch_size": 16,
        "lr": 2e-3, "warmup_steps": 50, "min_lr_ratio": 0.05, "dropout": 0.2, "augment_transpose": a.transpose,
        "piece_starts": 0.5, "max_time": 60.0 * a.minutes, "epochs": 100000, "patience": 0, "eval_every": 50,
        "tensorboard": False, "quiet": True, "overwrite": True, "seed": a.seed, "device": "cpu",
    })
    t0 = time.perf_counter()
    summary = train(cfg)
    train_s = time.perf_counter() - t0
    nll, tokens = test_nll(Path(summary.run_dir), ds, a.threads)
    return {"encoding": encoding, "model": a.model, "params": summary.num_params, "train_seconds": round(train_s),
            "steps": summary.steps, "best_val_nll_per_token": summary.best_val_loss, "test_tokens": tokens,
            "test_nll_per_token": nll / tokens, "tokens_per_sixteenth": tokens / sixteenths,
            "test_nll_per_sixteenth": nll / sixteenths}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--npz", type=Path, default=NPZ, help="Jsb16thSeparated.npz (default ../shared/data/jsb/)")
    ap.add_argument("-o", "--out", type=Path, required=True, help="work folder (MIDI, datasets, runs, results.json)")
    ap.add_argument("--encodings", default="chord,meter", help="comma-separated (default %(default)s)")
    ap.add_argument("--model", default="lstm", choices=("gru", "lstm", "transformer"))
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget per encoding (default %(default)s)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--transpose", type=int, default=1, help="transposition augmentation, semitones (default 1)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if not a.npz.is_file():
        raise SystemExit(f"not found: {a.npz} (pass --npz)")
    torch.set_num_threads(a.threads)
    data = load_jsb(a.npz)
    sixteenths = sum(len(c) for c in data["test"])
    print(f"JSB: {', '.join(f'{k} {len(v)}' for k, v in data.items())} chorales; test {sixteenths:,} sixteenths")
    midi = write_midi(data, a.out)
    rows = []
    for encoding in [e for e in a.encodings.split(",") if e]:
        rows.append(run_encoding(encoding, midi, a.out, a, sixteenths))
        r = rows[-1]
        print(f"{encoding}: {r['test_nll_per_sixteenth']:.3f} nats per sixteenth ({r['test_nll_per_token']:.3f} "
              f"per token x {r['tokens_per_sixteenth']:.2f} tokens per sixteenth), {r['train_seconds']} s of "
              f"training, {r['steps']} steps", flush=True)
    (a.out / "results.json").write_text(json.dumps({"sixteenths": sixteenths, "rows": rows}, indent=1))
    print("\n| encoding | model | training | steps | test tokens | nats/token | tokens/16th | nats/16th |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['encoding']} | {r['model']} ({r['params'] / 1e6:.1f}M) | {r['train_seconds']} s | {r['steps']} | "
              f"{r['test_tokens']:,} | {r['test_nll_per_token']:.3f} | {r['tokens_per_sixteenth']:.2f} | "
              f"{r['test_nll_per_sixteenth']:.3f} |")


if __name__ == "__main__":
    main()
