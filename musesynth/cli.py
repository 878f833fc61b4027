"""The `musesynth` command: corpus -> data -> train -> generate -> evaluate, and ablate.

Every user error ends as one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from musesynth.errors import MusesynthError

DEFAULT_CORPUS_DIR = "data/bach_midi"


def _add_corpus(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("corpus", help="export the embedded classical corpus (music21) to MIDI files")
    p.add_argument("--name", default="bach", help="bach (default), beethoven, mozart, haydn, palestrina, "
                   "monteverdi, classical")
    p.add_argument("-o", "--out", default=DEFAULT_CORPUS_DIR, help="output folder (default %(default)s)")
    p.add_argument("--limit", type=int, default=None, help="export only the first N scores")
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=_run_corpus)


def _run_corpus(args: argparse.Namespace) -> int:
    from musesynth.data.corpus import export_corpus

    stats = export_corpus(args.name, args.out, limit=args.limit, workers=args.workers)
    print(f"{args.name}: {stats['scores']} scores, {stats['exported']} exported, {stats['kept']} already "
          f"there, {stats['failed']} failed -> {args.out}")
    return 0


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="tokenize a MIDI folder into a cached, split dataset")
    p.add_argument("-d", "--midi-dir", required=True, help="folder searched recursively for .mid/.midi")
    p.add_argument("-o", "--out", required=True, help="dataset folder to write")
    p.add_argument("--encoding", default="chord", help="chord (reference, default) or performance")
    p.add_argument("--resolution", type=int, default=None, help="chord grid steps per beat (default 12)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.set_defaults(func=_run_data)


def _run_data(args: argparse.Namespace) -> int:
    from musesynth.data.build import build_dataset, report

    params = {}
    if args.resolution is not None:
        if args.encoding != "chord":
            raise MusesynthError("--resolution applies to the chord encoding only")
        if args.resolution < 1:
            raise MusesynthError("--resolution must be a positive number of steps per beat")
        params["resolution"] = args.resolution
    manifest = build_dataset(args.midi_dir, args.out, encoding=args.encoding, params=params,
                             workers=args.workers)
    print(report(manifest))
    print(f"dataset written to {args.out} in {manifest['seconds']} s")
    return 0


def _lazy(module: str, adder: str) -> Callable[[argparse._SubParsersAction], None]:
    def add(sub: argparse._SubParsersAction) -> None:
        import importlib

        getattr(importlib.import_module(module), adder)(sub)

    return add


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_corpus,
    _add_data,
    _lazy("musesynth.train", "add_parser"),
    _lazy("musesynth.predict", "add_parser"),
    _lazy("musesynth.evaluate.run", "add_parser"),
    _lazy("musesynth.ablate", "add_parser"),
    _lazy("musesynth.demo", "add_parser"),
]


def build_parser() -> argparse.ArgumentParser:
    from musesynth import __version__

    parser = argparse.ArgumentParser(prog="musesynth", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"musesynth {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def run_guarded(func: Callable[[], int]) -> int:
    """Run a command body: user errors become one line on stderr with exit code 2."""
    try:
        return func()
    except MusesynthError as exc:
        print(f"musesynth: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("musesynth: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_guarded(lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
