"""`musesynth demo`: music in seconds from the model shipped in the package, then the whole chain on the
embedded corpus on a laptop CPU: export the corpus (first time only), build the dataset, train a model under
a time budget, generate a piece from a primer taken from the test split, and print where the MIDI, WAV and
PNG are. The shipped model's piece comes first so that a new user hears music before minutes of set-up."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import NamedTuple

from musesynth.commands.options import Subparsers, add_command
from musesynth.commands.progress_bar import share_bar
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
CHECKPOINTS = "training_checkpoints"


def add_parser(sub: Subparsers) -> None:
    p = add_command(sub, "demo", "build data, train a small model quickly, generate a piece (CPU, minutes)",
                    "musesynth demo --minutes 4")
    p.add_argument("--midi-dir", default=DEFAULT_CORPUS_DIR, help="MIDI folder (default %(default)s: the Bach "
                   "chorales, which the demo exports there after its first piece if they are not there yet)")
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
    from musesynth.data.dataset import is_dataset, load_manifest

    plan = check_plan(args)  # everything is checked before anything is written
    steps = 4 + plan.export
    shipped = play_shipped(args, steps)
    step = 2
    if plan.export:
        print(f"[{step}/{steps}] exporting the embedded Bach chorales to {plan.midi_dir} (once; later demos reuse "
              f"them)")
        export_default_corpus(plan.midi_dir)
        step += 1
    print(f"[{step}/{steps}] dataset {plan.dataset}")
    manifest = load_manifest(plan.dataset) if is_dataset(plan.dataset) else build_dataset(plan.midi_dir,
                                                                                          plan.dataset)
    print(manifest.report())
    return train_and_generate(args, plan, shipped, step + 1, steps)


class Plan(NamedTuple):
    midi_dir: Path
    dataset: Path
    run_name: str
    export: bool  # the default corpus folder is missing or unfinished: the demo exports it (after step 1)


def check_plan(args: argparse.Namespace) -> Plan:
    """Every option and every place the demo writes, checked up front: a refused demo writes nothing."""
    from musesynth.data.build import check_dataset_target
    from musesynth.data.corpus import corpus_complete
    from musesynth.data.dataset import is_dataset
    from musesynth.generate.request import MAX_SEED
    from musesynth.outputs import check_not_over_input, check_writable_dir

    if not args.minutes > 0:
        raise MusesynthError(f"--minutes must be positive (got {args.minutes})")
    if args.length < 1:
        raise MusesynthError(f"--length must be at least 1 (got {args.length})")
    if not 0 <= args.seed < MAX_SEED:
        raise MusesynthError(f"--seed must be a whole number, 0 or more, below 2**63 (got {args.seed})")
    midi_dir = Path(args.midi_dir)
    default = os.path.abspath(midi_dir) == os.path.abspath(DEFAULT_CORPUS_DIR)
    if midi_dir.exists() and not midi_dir.is_dir():
        raise MusesynthError(f"--midi-dir {midi_dir} is a file, not a folder of MIDI files")
    if not midi_dir.is_dir() and not default:
        raise MusesynthError(f"MIDI folder not found: {midi_dir} (run `musesynth corpus -o {midi_dir}` first, or "
                             f"leave --midi-dir out: the demo exports the Bach chorales to {DEFAULT_CORPUS_DIR})")
    export = default and not corpus_complete(midi_dir)
    if export:
        check_writable_dir(midi_dir, "--midi-dir")
    dataset = Path(args.dataset or Path("datasets") / midi_dir.name)
    if is_dataset(dataset):
        check_not_over_input(dataset, midi_dir, "dataset folder")
    else:
        check_dataset_target(dataset, midi_dir)
    check_writable_dir(args.out_dir, "-o/--out-dir")
    check_not_over_input(Path(args.out_dir), midi_dir, "-o/--out-dir")
    check_writable_dir(CHECKPOINTS, "training_checkpoints")
    run_name = f"demo-{args.model}" if args.overwrite else free_run_name(f"demo-{args.model}")
    check_run_folder(Path(CHECKPOINTS) / run_name)
    return Plan(midi_dir, dataset, run_name, export)


def check_run_folder(path: Path) -> None:
    """``--overwrite`` replaces an earlier demo run, never a folder of someone else's files."""
    from musesynth.training.rundir import OUTPUTS

    if path.exists() and not path.is_dir():
        raise MusesynthError(f"run folder {path} is a file; move it away")
    if path.is_dir() and any(path.iterdir()) and not any((path / n).exists() for n in (".lock", *OUTPUTS)):
        raise MusesynthError(f"{path} exists and is not a musesynth run folder (nothing in it is touched); move it "
                             f"away")


def export_default_corpus(midi_dir: Path) -> None:
    from musesynth.data.corpus import export_corpus

    stats = export_corpus("bach", midi_dir)
    print(f"bach: {stats['scores']} scores, {stats['exported']} exported, {stats['kept']} already there, "
          f"{stats['failed']} failed -> {midi_dir}")


def train_and_generate(args: argparse.Namespace, plan: Plan, shipped: dict[str, str | None] | None, step: int,
                       steps: int) -> int:
    from musesynth.data.dataset import first_test_file
    from musesynth.generate.run import GenerateOptions, run_generate, summarize
    from musesynth.training.config import TrainConfig
    from musesynth.training.loop import train

    run_name, dataset = plan.run_name, plan.dataset
    print(f"[{step}/{steps}] training a {args.model} for {args.minutes:g} min on {dataset} into "
          f"{CHECKPOINTS}/{run_name}"
          + ("" if run_name == f"demo-{args.model}" else f" (demo-{args.model} holds an earlier run: kept)"))
    cfg = TrainConfig(dataset=str(dataset), model=args.model, run_name=run_name, overwrite=args.overwrite,
                      max_time=args.minutes * 60, seed=args.seed, **DEMO_TRAIN)
    summary = train(cfg, interrupt_hint="training stopped early; the demo goes on with the model as it is "
                                        "(saved in {last})")
    primer = first_test_file(dataset)
    print(f"[{step + 1}/{steps}] generating {args.length} tokens from the opening of "
          f"{primer.name if primer else 'nothing'}")
    opt = GenerateOptions(checkpoint=summary.run_dir, primer=str(primer) if primer else None, primer_tokens=48,
                          length=args.length, sampling=DEMO_SAMPLING, seed=args.seed, out_dir=args.out_dir)
    with share_bar("generating") as progress:
        results = run_generate(opt, progress=progress)
    print(summarize(results))
    r = results[0]
    print(json.dumps({"shipped_model_piece": shipped, "midi": r["midi"], "wav": r["wav"], "png": r["png"],
                      "best_val_loss": None if summary.best_val_loss is None else round(summary.best_val_loss, 4)},
                     indent=2))
    return 0


def free_run_name(name: str, out_dir: str = CHECKPOINTS) -> str:
    """``name``, or ``name-2``, ``name-3``, ... : the first that holds no trained run (nothing is replaced)."""
    return free_name(Path(out_dir), name, ("/best.pt", "/last.pt")).name


def play_shipped(args: argparse.Namespace, steps: int = 4) -> dict[str, str | None] | None:
    """Step 1: a piece from the shipped model in seconds (skipped, with the reason, if it is absent)."""
    from musesynth.artifacts.shipped import DEFAULT_MODEL, is_shipped
    from musesynth.generate.run import GenerateOptions, run_generate, summarize

    if not is_shipped(DEFAULT_MODEL):
        print(f"[1/{steps}] no shipped model in {DEFAULT_MODEL} (make pretrained builds it): skipped")
        return None
    print(f"[1/{steps}] a new piece from the shipped model ({DEFAULT_MODEL.name})")
    opt = GenerateOptions(checkpoint=str(DEFAULT_MODEL), length=args.length, sampling=Sampling(), seed=args.seed,
                          out_dir=args.out_dir)
    with share_bar("generating") as progress:
        r = run_generate(opt, progress=progress)[0]
    print(summarize([r]))
    return {"midi": r["midi"], "wav": r["wav"], "png": r["png"]}
