"""`musesynth ablate`: train GRU, LSTM and Transformer under one budget and compare them."""

from __future__ import annotations

import argparse
import shlex
import sys

from musesynth.ablate import AblationOptions, check_no_repeats
from musesynth.commands.options import Subparsers, add_command, add_sampling_options, sampling_from_args
from musesynth.commands.train import add_train_options, config_from_args
from musesynth.errors import MusesynthError
from musesynth.models import FAMILIES
from musesynth.outputs import check_report_dir, check_writable_dir

# set by the ablation itself (family, run folders, budget, no early stop): not offered as options
SET_BY_ABLATE = frozenset({"model", "run_name", "out_dir", "resume", "overwrite", "patience", "max_steps",
                           "max_tokens", "max_time", "halt_after_steps"})
EXAMPLE = ("musesynth ablate -d datasets/bach --budget-tokens 1200000 --batch-size 32 --lr 1e-3 --warmup-steps 50 "
           "--report reports/ablation")


def add_parser(sub: Subparsers) -> None:
    p = add_command(sub, "ablate", "train GRU, LSTM and Transformer under one budget and compare them", EXAMPLE)
    add_ablate_options(p)
    p.set_defaults(func=run)


def add_ablate_options(p: argparse.ArgumentParser) -> None:
    d = AblationOptions(models=list(FAMILIES))
    add_train_options(p, skip=SET_BY_ABLATE)
    a = p.add_argument_group("ablation")
    a.add_argument("--models", nargs="+", default=d.models,
                   help=f"families to compare, any of: {', '.join(FAMILIES)} (default: all)")
    budget = a.add_mutually_exclusive_group(required=True)
    budget.add_argument("--budget-tokens", type=int, help="each family sees this many training tokens "
                        "(this or --budget-seconds is required; no default)")
    budget.add_argument("--budget-seconds", type=float, help="each family trains this many seconds (this or "
                        "--budget-tokens is required; no default)")
    a.add_argument("--report", default=d.report, help="report folder; its files are replaced "
                   "(default %(default)s)")
    a.add_argument("--num-samples", dest="samples", type=int, default=d.samples, help="generated pieces per "
                   "family for the musical statistics (default %(default)s)")
    a.add_argument("--samples", dest="samples", type=int,
                   default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # the name it shipped with: a quiet alias
    a.add_argument("--sample-length", type=int, default=d.sample_length, help="tokens per generated piece "
                   "(default %(default)s)")
    add_sampling_options(p, short=False)


def _command_line() -> str:
    if sys.argv[0].endswith(("musesynth", "__main__.py")):
        return "musesynth " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return " ".join(shlex.quote(a) for a in sys.argv)


def run(args: argparse.Namespace) -> int:
    from musesynth.ablate import run_ablation

    unknown = [m for m in args.models if m not in FAMILIES]
    if unknown:
        raise MusesynthError(f"unknown model '{unknown[0]}' (choose from: {', '.join(FAMILIES)})")
    check_no_repeats(args.models)
    if (args.budget_tokens is not None and args.budget_tokens < 1) or \
            (args.budget_seconds is not None and not args.budget_seconds > 0):
        raise MusesynthError("the budget must be positive")
    for name in ("samples", "sample_length"):
        if getattr(args, name) < (0 if name == "samples" else 1):
            raise MusesynthError(f"--{name.replace('_', '-')} is out of range (got {getattr(args, name)})")
    base = config_from_args(args)
    opt = AblationOptions(models=args.models, budget_tokens=args.budget_tokens, budget_seconds=args.budget_seconds,
                          report=args.report, samples=args.samples, sample_length=args.sample_length,
                          sampling=sampling_from_args(args), command=_command_line())
    check_writable_dir(opt.report, "--report")
    check_report_dir(opt.report, "results.json")
    path = run_ablation(base, opt)
    if not base.quiet:
        print(f"report: {path}")
    return 0
