"""`musesynth data`: tokenize a MIDI folder into a split dataset."""

from __future__ import annotations

import argparse

from musesynth.commands.options import Subparsers, add_command
from musesynth.errors import MusesynthError
from musesynth.tokenize import ENCODINGS
from musesynth.tokenize.grid import MAX_RESOLUTION


def add_parser(sub: Subparsers) -> None:
    p = add_command(sub, "data", "tokenize a MIDI folder into a dataset split 0.8/0.1/0.1 by file",
                    "musesynth data -d data/bach_midi -o datasets/bach")
    p.add_argument("-d", "--midi-dir", required=True, help="folder searched recursively for .mid/.midi (any case)")
    p.add_argument("-o", "--out", required=True, help="dataset folder to write: a new folder, or an earlier "
                   "dataset (replaced); any other existing folder is refused")
    p.add_argument("--encoding", default="chord", choices=list(ENCODINGS), help="token encoding (default "
                   "%(default)s: the 312-token reference)")
    p.add_argument("--resolution", type=int, default=None, help="grid steps per beat of the chord and meter "
                   "encodings (default 12)")
    p.add_argument("--infill", action="store_true", help="meter and parts encodings: add the HOLE/FILL/FILL_END "
                   "tokens, so a model trained on the dataset can also fill bars in (`musesynth infill`)")
    p.add_argument("--max-parts", type=int, default=None, help="parts encoding: the most parts a piece keeps, 1-64; "
                   "parts beyond it join the last (default 16; 4 for SATB chorales: the vocabulary shrinks "
                   "from 2,023 tokens to 967, and no stray fifth part can be sampled)")
    p.add_argument("--extra-parts", choices=("merge", "drop"), default=None, help="parts encoding: what becomes of "
                   "the parts beyond --max-parts: 'merge' them into the last part, or 'drop' them (and a voice's "
                   "second track, e.g. 'Soprano 2'), so a chorale with a continuo or violins is read as its four "
                   "voices (default merge)")
    p.add_argument("--chords", action="store_true", help="parts encoding: name the harmony at every onset (a "
                   "CHORD_<root>_<quality> token after the first part's notes, read from the notes sounding "
                   "there), so a model picks a chord before it writes the voices under the melody; decoding "
                   "ignores the tokens (default off)")
    p.add_argument("--composers", metavar="folder|FILE", help="meter encoding: put each file's composer in its "
                   "header (COMPOSER_<name> tokens, for `generate --composer`): 'folder' reads it from the first "
                   "folder of each path (as `musesynth corpus` writes them), or a CSV (file,composer) / JSON "
                   "({file: composer}) with paths relative to -d (default: no composer tokens)")
    p.add_argument("--train-only", action="append", metavar="DIR", default=[], help="a folder of more MIDI files "
                   "that all go to the training split, never to validation or test, e.g. the JS Fake Chorales "
                   "beside the 410 chorales: the held-out splits stay the corpus's own pieces, the same as without "
                   "it (repeatable; each folder apart from -d and the others; default: none)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musesynth.data.build import build_dataset

    params = {}
    if args.resolution is not None:
        if args.encoding == "performance":
            raise MusesynthError("--resolution applies to the grid encodings only (not performance)")
        if not 1 <= args.resolution <= MAX_RESOLUTION:
            raise MusesynthError(f"--resolution must be from 1 to {MAX_RESOLUTION} steps per beat "
                                 f"(got {args.resolution})")
        params["resolution"] = args.resolution
    if args.infill:
        if args.encoding not in ("meter", "parts"):
            raise MusesynthError("--infill needs --encoding meter or parts (infilling works on whole bars)")
        params["infill"] = True
    if args.max_parts is not None:
        if args.encoding != "parts":
            raise MusesynthError("--max-parts applies to --encoding parts only")
        if not 1 <= args.max_parts <= 64:
            raise MusesynthError(f"--max-parts must be 1-64 (got {args.max_parts})")
        params["max_parts"] = args.max_parts
    if args.extra_parts is not None:
        if args.encoding != "parts":
            raise MusesynthError("--extra-parts applies to --encoding parts only")
        params["drop_extra_parts"] = args.extra_parts == "drop"
    if args.chords:
        if args.encoding != "parts":
            raise MusesynthError("--chords applies to --encoding parts only")
        params["chords"] = True
    if args.workers is not None and args.workers < 1:
        raise MusesynthError(f"--workers must be at least 1 (got {args.workers})")
    manifest = build_dataset(args.midi_dir, args.out, encoding=args.encoding, params=params, workers=args.workers,
                             composers=args.composers, train_only=args.train_only)
    print(manifest.report())
    print(f"dataset written to {args.out} in {manifest.seconds} s")
    return 0
