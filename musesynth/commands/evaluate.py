"""`musesynth evaluate`: test-set likelihood against baselines, and musical statistics."""

from __future__ import annotations

import argparse

from musesynth.commands.options import (
    Subparsers,
    add_command,
    add_device_option,
    add_particles_option,
    add_sampling_options,
)
from musesynth.commands.options import sampling_from_args as _sampling
from musesynth.data.split import SPLITS
from musesynth.evaluate.run import EvaluateOptions
from musesynth.generate.request import MAX_SEED
from musesynth.outputs import check_replaceable_json, check_writable_file


def add_parser(sub: Subparsers) -> None:
    d = EvaluateOptions(checkpoint="")
    p = add_command(sub, "evaluate", "test-set NLL/perplexity/accuracy against n-gram baselines, and musical "
                    "statistics of generated vs held-out pieces",
                    "musesynth evaluate -c training_checkpoints/transformer --json eval.json")
    p.add_argument("-c", "--checkpoint", required=True, help="run folder or checkpoint file")
    p.add_argument("-d", "--dataset", help="dataset folder (default: the one the model was trained on)")
    p.add_argument("--split", default=d.split, choices=SPLITS, help="split to score (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="windows per batch (default %(default)s)")
    p.add_argument("--num-samples", dest="samples", type=int, default=d.samples, help="generated pieces for the "
                   "musical statistics (0: skip; default %(default)s)")
    p.add_argument("--samples", dest="samples", type=int,
                   default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # the name it shipped with: a quiet alias
    p.add_argument("--length", type=int, default=d.length, help="tokens per generated piece, and the budget the "
                   "held-out and reference pieces are cut to (default 600; 685 for a vocabulary with CHORD tokens, "
                   "the same music)")
    add_sampling_options(p)
    p.add_argument("--seed", type=int, default=d.seed, help="sampling seed (default %(default)s)")
    p.add_argument("--seeds", type=_seeds, metavar="SEED,...", help="evaluate once per sampling seed (e.g. 0,1,2: "
                   "each seed's report, then the classifier's figures over them: mean, range, each seed; the "
                   "classifier moves by a few points with the pieces drawn); replaces --seed; the JSON holds the "
                   "first seed's report and, under 'over_seeds', the summary and the others' reports (default: one "
                   "run with --seed)")
    add_particles_option(p, d.particles)
    p.add_argument("--free-repeats", action="store_true",
                   help="models with repeat marks: sample the notes of a marked repeat instead of copying them "
                        "(default: exact copy, as `generate` does)")
    p.add_argument("--windows", type=_windows, default=d.windows, metavar="BEATS,...",
                   help="window lengths in beats for the classifier test (default 8,16)")
    p.add_argument("--reference-set", metavar="DIR", help="also score this folder of MIDI files with the same "
                   "classifier, beside the model (e.g. the JS Fake Chorales, which listeners took for machine-made "
                   "57%% of the time; default: none)")
    p.add_argument("--repeats", type=int, default=d.repeats, help="classifier repeats, each with new folds and a new "
                   "subsample (default %(default)s)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    add_device_option(p)
    p.add_argument("--json", help="also write the results to this JSON file (an earlier result there is "
                   "replaced; any other file is refused; default: none, print only)")
    p.set_defaults(func=run)


def _whole_numbers(text: str, what: str, example: str) -> tuple[int, ...]:
    try:
        items = text.split(",")
        if len(items) > 1 and not all(x.strip() for x in items):  # "1,,2": a typo, not two numbers
            raise ValueError
        return tuple(int(x) for x in items if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what} separated by commas, e.g. {example} "
                                         f"(got {text!r})") from None


def _windows(text: str) -> tuple[int, ...]:
    out = _whole_numbers(text, "beats", "8,16")
    if not out or len(set(out)) < len(out):
        raise argparse.ArgumentTypeError(f"expected different window lengths, e.g. 8,16 (got {text!r})")
    return out


def _seeds(text: str) -> tuple[int, ...]:
    out = _whole_numbers(text, "seeds", "0,1,2")
    if not out or any(not 0 <= s < MAX_SEED for s in out) or len(set(out)) < len(out):
        raise argparse.ArgumentTypeError(f"expected different seeds from 0 to 2**63-1, e.g. 0,1,2 (got {text!r})")
    return out


def run(args: argparse.Namespace) -> int:
    from musesynth.atomic import atomic_write_json
    from musesynth.errors import MusesynthError
    from musesynth.evaluate.run import evaluate_seeds, format_result
    from musesynth.evaluate.seeds import format_seed_summary, seed_summary

    opt = EvaluateOptions(args.checkpoint, args.dataset, args.split, args.batch_size, args.device, args.samples,
                          args.length, args.seed, _sampling(args), args.free_repeats, args.windows,
                          args.reference_set, args.repeats, args.quiet, args.particles)
    if not 0 <= args.seed < MAX_SEED:
        raise MusesynthError(f"--seed must be a whole number from 0 to 2**63-1 (got {args.seed})")
    seeds = args.seeds or (args.seed,)
    if len(seeds) > 1 and args.samples == 0:
        raise MusesynthError("--seeds draws pieces with each seed: leave --num-samples above 0 (or give one --seed)")
    if args.json:
        check_writable_file(args.json, "--json")
        check_replaceable_json(args.json, "--json", "model_metrics")
    runs = []
    for seed, r in zip(seeds, evaluate_seeds(opt, seeds)):  # each report as soon as its seed is done
        if len(seeds) > 1:
            print(f"== seed {seed}")
        print(format_result(r))
        runs.append((seed, r))
    out = runs[0][1].to_dict()
    if len(seeds) > 1:
        summary = seed_summary(runs)
        print("\n".join(format_seed_summary(summary)))
        out["over_seeds"] = {"summary": summary, "reports": {str(s): r.to_dict() for s, r in runs[1:]}}
    if args.json:
        atomic_write_json(args.json, out)
    return 0
