"""`musesynth harmonize`: the other voices written under a given melody, with a model of the parts encoding."""

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
from musesynth.generate.harmonize import HarmonizeOptions

EXAMPLE = "musesynth harmonize --melody tune.mid --num-samples 3 -s 1   (or --chorale bwv10.7)"


def add_parser(sub: Subparsers) -> None:
    d = HarmonizeOptions()
    p = add_command(sub, "harmonize", "write the other voices under a melody: every melody note kept exactly "
                    "(MIDI with one track per voice, WAV, PNG)", EXAMPLE)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--melody", help="MIDI file holding the melody (it is only read): one track with notes, or "
                     "choose one with --part; one note at a time (no default: this or --chorale)")
    src.add_argument("--chorale", help="or a chorale of the music21 Bach corpus by name (e.g. bwv10.7), exported as "
                     "`musesynth corpus` does; its Soprano unless --part says another voice (no default)")
    p.add_argument("--part", help="the melody's track in a multi-track file: its name (any case) or its index "
                   "from 0 (default: the file's one track with notes, or its one track named Soprano)")
    p.add_argument("--melody-voice", help="the voice the melody is: S, A, T or B (or soprano ... bass) (default: "
                   "the voice its track is named for; a track of another name is the Soprano, or the Bass where "
                   "its median note is F#3 or lower, a bass line)")
    p.add_argument("--voices", help="voices to write, e.g. A,T,B or alto,bass (default: the three SATB voices the "
                   "melody is not)")
    p.add_argument("--key", help="key of the piece, e.g. 'D major' (default: the melody's, found from its notes)")
    p.add_argument("-c", "--checkpoint", default=None, help="run folder (uses best.pt) or checkpoint of a model "
                   "trained on a dataset made with `musesynth data --encoding parts` (default: the shipped parts "
                   "model, musesynth/pretrained/bach-parts)")
    add_sampling_options(p, ending=False, defaults=d.sampling)
    p.add_argument("-s", "--seed", type=int, default=None, help="same seed, same harmonisation (default: a fresh "
                   "seed, printed so the result can be made again)")
    p.add_argument("--num-samples", type=int, default=d.num_samples, help="harmonisations to write, sampled as one "
                   "batch (default %(default)s)")
    p.add_argument("--particles", "--candidates", type=int, default=d.particles, help="particles per harmonisation "
                   "(1-64, default %(default)s): sequential Monte Carlo, where samples whose voices make the melody's "
                   "next notes unlikely (by the model) give way to copies of those that lead to them, so the voices "
                   "are drawn as the model would write them knowing the melody ahead. Time grows with the number; "
                   "1: each voice is drawn from the melody so far only")
    p.add_argument("--transpose", default=d.transpose, help="semitones to write the voices at, the melody moved "
                   "with them and everything moved back after, so the melody comes out as given: auto (default) "
                   "moves only a melody outside its voice's range (e.g. a fiddle tune above the soprano's A5) by "
                   "the fewest semitones that bring it in; 0: as it lies")
    p.add_argument("--top-line", action="store_true", help="for a melody track with chords, double stops or a "
                   "second line below (a piano's right hand): take its top line, dropping each note that starts with "
                   "a higher one or under the line's note still sounding, and cutting each kept note where the next "
                   "starts; both are counted in the summary and the JSON (default: such a melody is refused)")
    p.add_argument("--max-tokens", type=int, default=None, help="token budget per harmonisation (default: the "
                   "melody's tokens x (1 + 2 x voices) + 64); the melody is kept whole even where it runs out")
    add_output_options(p, d.out_dir)
    add_device_option(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musesynth.generate.harmonize import run_harmonize, summarize

    names = set(HarmonizeOptions.__dataclass_fields__) - {"sampling"}
    results = run_harmonize(HarmonizeOptions(**{k: v for k, v in vars(args).items() if k in names},
                                             sampling=_sampling(args)))
    if not args.quiet:
        print(summarize(results))
        print(seed_line(results, args.seed))
    return 0
