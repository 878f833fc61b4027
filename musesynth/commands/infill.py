"""`musesynth infill`: rewrite bars in the middle of a piece with a model trained for infilling."""

from __future__ import annotations

import argparse

from musesynth.commands.options import (
    Subparsers,
    add_command,
    add_device_option,
    add_output_options,
    add_sampling_options,
    seed_line,
)
from musesynth.commands.options import sampling_from_args as _sampling
from musesynth.generate.infill import InfillOptions

EXAMPLE = ("musesynth infill --input data/bach_midi/bach/bwv10.7.mid --bars 5-8 --parts A,T,B --num-samples 3 "
           "-t 0.9 -p 0.95 -s 1")


def add_parser(sub: Subparsers) -> None:
    d = InfillOptions()
    p = add_command(sub, "infill", "rewrite bars in the middle of a piece, given the music before and after them "
                    "(MIDI, WAV, PNG)", EXAMPLE)
    p.add_argument("-c", "--checkpoint", default=None, help="run folder (uses best.pt) or checkpoint of a model "
                   "trained on a dataset made with `musesynth data --infill` (default: the shipped parts model, "
                   "musesynth/pretrained/bach-parts)")
    p.add_argument("--input", required=True, help="the MIDI file to rewrite (it is only read)")
    p.add_argument("--bars", required=True, help="bars to rewrite, counted from 1 (a pickup is bar 1), e.g. 5-8 "
                   "or 5; every note starting outside them is kept exactly")
    p.add_argument("--parts", help="rewrite only these parts in the bars, keeping every note of the others: voices "
                   "by letter or name (S,A,T,B / soprano,bass, any case), parts by their track's name (viola) or by "
                   "number from 1 in the file's track order, e.g. A,T,B; "
                   "each rewritten part is one voice (a model of the parts encoding; default: every note in the "
                   "bars)")
    add_sampling_options(p, ending=False)
    p.add_argument("-s", "--seed", type=int, default=None, help="same seed, same fill (default: a fresh "
                   "seed, printed so the result can be made again)")
    p.add_argument("--num-samples", type=int, default=d.num_samples, help="versions to write, sampled as one batch "
                   "(default %(default)s)")
    p.add_argument("--particles", type=int, default=d.particles, help="with --parts: particles per version (1-64, "
                   "default %(default)s): sequential Monte Carlo, where fills under which the model finds the kept "
                   "parts' notes unlikely give way to copies of those that lead to them; time grows with the number")
    p.add_argument("--max-tokens", type=int, default=None, help="token budget of a fill (default: 3x the span's "
                   "tokens + 32, at most half the model context)")
    p.add_argument("--transpose", default=d.transpose, help="semitones to write the bars at, the piece moved with "
                   "them and the new notes moved back after, so the piece sounds where it was: auto (default) moves "
                   "only a piece whose voices' parts stray more than a minor third past their ranges (a flute duet "
                   "an octave above the soprano and alto: written an octave down), by the fewest semitones that "
                   "bring them in; 0: as it lies")
    add_output_options(p, d.out_dir)
    add_device_option(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musesynth.commands.progress_bar import share_bar
    from musesynth.generate.infill import run_infill, summarize

    names = set(InfillOptions.__dataclass_fields__) - {"sampling"}
    with share_bar("infilling", disable=args.quiet) as progress:
        results = run_infill(InfillOptions(**{k: v for k, v in vars(args).items() if k in names},
                                           sampling=_sampling(args)), progress=progress)
    if not args.quiet:
        print(summarize(results))
        print(seed_line(results, args.seed))
    return 0
