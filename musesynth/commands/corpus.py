"""`musesynth corpus`: export the embedded classical corpus (music21) to MIDI files."""

from __future__ import annotations

import argparse

from musesynth.commands.options import Subparsers, add_command
from musesynth.data.corpus import CORPORA, DEFAULT_CORPUS_DIR
from musesynth.errors import MusesynthError
from musesynth.outputs import check_writable_dir


def add_parser(sub: Subparsers) -> None:
    p = add_command(sub, "corpus", "export the embedded classical corpus (music21, offline) to MIDI files",
                    "musesynth corpus --name bach -o data/bach_midi\n"
                    "  musesynth corpus --name classical --per-composer 150 -o data/classical_midi")
    p.add_argument("--name", default="bach", choices=list(CORPORA), help="which corpus (default %(default)s)")
    p.add_argument("-o", "--out", default=DEFAULT_CORPUS_DIR, help="output folder; files already there are kept "
                   "(default %(default)s)")
    p.add_argument("--limit", type=int, default=None, help="export only the first N scores (default: all)")
    p.add_argument("--per-composer", type=int, default=None, help="export at most N scores of each composer "
                   "(the first by name), e.g. for a balanced `--name classical` (default: all)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musesynth.data.corpus import export_corpus

    if args.limit is not None and args.limit < 1:
        raise MusesynthError(f"--limit must be at least 1 (got {args.limit})")
    if args.per_composer is not None and args.per_composer < 1:
        raise MusesynthError(f"--per-composer must be at least 1 (got {args.per_composer})")
    if args.workers is not None and args.workers < 1:
        raise MusesynthError(f"--workers must be at least 1 (got {args.workers})")
    check_writable_dir(args.out, "-o/--out")
    stats = export_corpus(args.name, args.out, limit=args.limit, workers=args.workers,
                          per_composer=args.per_composer)
    print(f"{args.name}: {stats['scores']} scores, {stats['exported']} exported, {stats['kept']} already "
          f"there, {stats['failed']} failed -> {args.out}")
    return 1 if stats["failed"] and not (stats["exported"] or stats["kept"]) else 0
