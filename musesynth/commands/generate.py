"""`musesynth generate` / `python -m musesynth.predict`: primer in, new music out (MIDI, WAV, PNG)."""

from __future__ import annotations

import argparse
import sys

from musesynth.commands.options import (
    Subparsers,
    add_command,
    add_device_option,
    add_output_options,
    add_particles_option,
    add_sampling_options,
    seed_line,
)
from musesynth.commands.options import sampling_from_args as _sampling
from musesynth.errors import MusesynthError
from musesynth.generate.run import GenerateOptions

EXAMPLE = ("musesynth generate -c training_checkpoints/transformer --primer data/bach_midi/bach/bwv10.7.mid "
           "--primer-seconds 4 -n 600 -t 0.9 -p 0.95 -s 1 --num-samples 3")


def add_generate_options(p: argparse.ArgumentParser) -> None:
    d = GenerateOptions()
    p.add_argument("-c", "--checkpoint", help="run folder (uses best.pt), checkpoint file or shipped model folder "
                   "(default: the Bach model shipped in the package)")
    p.add_argument("--primer", help="MIDI file, or a folder whose every file primes one piece (bad files are "
                   "skipped with their reason; default: no primer, start from BOS)")
    p.add_argument("--primer-tokens", type=int, help="use the first N tokens of the primer (default: half the "
                   "model context)")
    p.add_argument("--primer-seconds", type=float, help="use the first S seconds of the primer (not with "
                   "--primer-tokens; default: --primer-tokens decides)")
    p.add_argument("-n", "--length", type=int, default=d.length, help="new tokens per piece (default %(default)s)")
    add_sampling_options(p)
    p.add_argument("--key", help='key to write in, e.g. "D major", "f# minor", "Bb major" (models trained on the '
                   "meter encoding; a primer is transposed to it; default: the primer's key, else one drawn from the "
                   "training corpus' keys)")
    p.add_argument("--composer", help="composer to write like, e.g. palestrina (models trained on a dataset made "
                   "with `musesynth data --composers ...`; an unknown name lists the known ones; default: none)")
    p.add_argument("--tempo", type=float, help="tempo in BPM of the piece's header (meter encoding; default: the "
                   "primer's, or the model's choice)")
    p.add_argument("-s", "--seed", type=int, default=d.seed, help="same seed, same piece (default: a new seed "
                   "each run, printed and recorded in each piece's .json)")
    p.add_argument("--num-samples", type=int, default=d.num_samples, help="pieces per primer, "
                   "generated as one batch (default %(default)s)")
    add_particles_option(p, d.particles)
    p.add_argument("--transpose", default=d.transpose, help="semitones the model reads the primer at, its new notes "
                   "moved back, so the piece sounds at the primer's pitch: auto (default) moves only a parts "
                   "model's primer whose voices' parts stray more than a minor third past their ranges (a flute duet "
                   "an octave above the soprano and alto: read an octave down), by the fewest semitones that bring "
                   "them in; 0: as it lies")
    add_output_options(p, d.out_dir)
    add_device_option(p)
    p.add_argument("--no-cache", action="store_true", help="naive decoding (re-run the prefix every token)")
    p.add_argument("--free-repeats", action="store_true",
                   help="models with repeat marks (meter encoding): sample the notes of a passage the model "
                        "marks as a repeat instead of copying it exactly (default: exact copy)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")


def options_from_args(args: argparse.Namespace) -> GenerateOptions:
    names = set(GenerateOptions.__dataclass_fields__) - {"sampling"}
    return GenerateOptions(**{k: v for k, v in vars(args).items() if k in names}, sampling=_sampling(args))


def run(args: argparse.Namespace) -> int:
    from musesynth.commands.progress_bar import share_bar
    from musesynth.generate.run import run_generate, summarize

    if args.out_dir == "":
        raise MusesynthError("-o/--out-dir is empty: name a folder (default generated)")
    note = (lambda line: print(line, file=sys.stderr)) if args.quiet else print
    with share_bar("generating", disable=args.quiet) as progress:
        results = run_generate(options_from_args(args), log=note, progress=progress)
    if not args.quiet:
        print(summarize(results))  # its lines warn about pieces without notes
        print(seed_line(results, args.seed, "these pieces"))
    for r in results if args.quiet else []:  # quiet prints nothing on success, but an empty piece is no success
        if r["notes"] == 0:
            print(f"musesynth: warning: {r['midi']} has no notes (try a higher --top-k or --temperature)",
                  file=sys.stderr)
    return 0


def add_parser(sub: Subparsers) -> None:
    p = add_command(sub, "generate", "write new pieces from a trained model and a primer (MIDI, WAV, PNG)", EXAMPLE)
    add_generate_options(p)
    p.set_defaults(func=run)
