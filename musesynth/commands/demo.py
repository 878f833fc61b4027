"""`musesynth demo`: music in seconds from the model shipped in the package, then the whole chain on the
embedded corpus on a laptop CPU: build the dataset, train a model under a time budget, generate a piece
from a primer taken from the test split, and print where the MIDI, WAV and PNG are."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from musesynth.commands.options import Subparsers, add_command
from musesynth.data.corpus import DEFAULT_CORPUS_DIR
from musesynth.errors import MusesynthError
from musesynth.generate.sampling import Sampling
from musesynth.models import FAMILIES
from musesynth.outputs import free_name

# A CPU-sized profile: the reference learning rate (1e-4) with batch 256 needs many epochs; a higher
# rate with small batches, its cosine decay sized to the time budget, gets the LSTM to a validation NLL
# below 0.95 in 10 minutes on 2 cores (docs/benchmarks.md).
DEMO_TRAIN = dict(seq_len=100, embed_dim=256, batch_size=32, lr=2e-3, warmup_steps=50, dropout=0.2,
                  min_lr_ratio=0.05, patience=0, eval_every=100, epochs=100000)
DEMO_SAMPLING = Sampling(temperature=0.9, top_k=0, top_p=0.95)


def add_parser(sub: Subparsers) -> None:
    p = add_command(sub, "demo", "build data, train a small model quickly, generate a piece (CPU, minutes)",
                    "musesynth demo --minutes 4")
    p.add_argument("--midi-dir", default=DEFAULT_CORPUS_DIR, help="MIDI folder (default %(default)s: the "
                   "exported Bach corpus)")
    p.add_argument("--dataset", default=None, help="dataset folder to build or reuse (default datasets/<name>)")
    p.add_argument("-m", "--model", default="lstm", choices=FAMILIES, help="model family to train "
                   "(default %(default)s)")
    p.add_argument("--minutes", type=float, default=10.0, help="training time budget (default %(default)s)")
    p.add_argument("--length", type=int, default=600, help="new tokens to generate (default %(default)s)")
    p.add_argument("-o", "--out-dir", default="generated", help="output folder (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="train into training_checkpoints/demo-MODEL even if an "
                   "earlier demo run is there (default: the earlier run is kept and this one is demo-MODEL-2, ...)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musesynth.data.build import build_dataset
    from musesynth.data.dataset import first_test_file, is_dataset, load_manifest
    from musesynth.generate.run import GenerateOptions, run_generate, summarize
    from musesynth.training.config import TrainConfig
    from musesynth.training.loop import train

    if not args.minutes > 0:
        raise MusesynthError(f"--minutes must be positive (got {args.minutes})")
    if args.length < 1:
        raise MusesynthError(f"--length must be at least 1 (got {args.length})")
    midi_dir = Path(args.midi_dir)
    if not midi_dir.is_dir():
        raise MusesynthError(f"MIDI folder not found: {midi_dir} (run `musesynth corpus` first, or `make demo`)")
    dataset = Path(args.dataset or Path("datasets") / midi_dir.name)
    shipped = play_shipped(args)
    print(f"[2/4] dataset {dataset}")
    manifest = load_manifest(dataset) if is_dataset(dataset) else build_dataset(midi_dir, dataset)
    print(manifest.report())
    run_name = f"demo-{args.model}" if args.overwrite else free_run_name(f"demo-{args.model}")
    print(f"[3/4] training a {args.model} for {args.minutes:g} min on {dataset} into training_checkpoints/{run_name}"
          + ("" if run_name == f"demo-{args.model}" else f" (demo-{args.model} holds an earlier run: kept)"))
    cfg = TrainConfig(dataset=str(dataset), model=args.model, run_name=run_name, overwrite=args.overwrite,
                      max_time=args.minutes * 60, seed=args.seed, **DEMO_TRAIN)
    summary = train(cfg, interrupt_hint="training stopped early; the demo goes on with the model as it is "
                                        "(saved in {last})")
    primer = first_test_file(dataset)
    print(f"[4/4] generating {args.length} tokens from the opening of {primer.name if primer else 'nothing'}")
    opt = GenerateOptions(checkpoint=summary.run_dir, primer=str(primer) if primer else None, primer_tokens=48,
                          length=args.length, sampling=DEMO_SAMPLING, seed=args.seed, out_dir=args.out_dir)
    results = run_generate(opt)
    print(summarize(results))
    r = results[0]
    print(json.dumps({"shipped_model_piece": shipped, "midi": r["midi"], "wav": r["wav"], "png": r["png"],
                      "best_val_loss": None if summary.best_val_loss is None else round(summary.best_val_loss, 4)},
                     indent=2))
    return 0


def free_run_name(name: str, out_dir: str = "training_checkpoints") -> str:
    """``name``, or ``name-2``, ``name-3``, ... : the first that holds no trained run (nothing is replaced)."""
    return free_name(Path(out_dir), name, ("/best.pt", "/last.pt")).name


def play_shipped(args: argparse.Namespace) -> dict[str, str | None] | None:
    """Step 1: a piece from the shipped model in seconds (skipped, with the reason, if it is absent)."""
    from musesynth.artifacts.shipped import DEFAULT_MODEL, is_shipped
    from musesynth.generate.run import GenerateOptions, run_generate, summarize

    if not is_shipped(DEFAULT_MODEL):
        print(f"[1/4] no shipped model in {DEFAULT_MODEL} (make pretrained builds it): skipped")
        return None
    print(f"[1/4] a new piece from the shipped model ({DEFAULT_MODEL.name})")
    opt = GenerateOptions(checkpoint=str(DEFAULT_MODEL), length=args.length, sampling=Sampling(), seed=args.seed,
                          out_dir=args.out_dir)
    r = run_generate(opt)[0]
    print(summarize([r]))
    return {"midi": r["midi"], "wav": r["wav"], "png": r["png"]}
