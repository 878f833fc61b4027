"""The `musesynth` command: corpus -> data -> train -> generate -> evaluate, ablate, and the studio.

Every user error ends as one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from musesynth.commands import ablate, corpus, data, demo, evaluate, export, generate, harmonize, infill, studio, train
from musesynth.errors import MusesynthError

COMMANDS = [corpus, data, train, generate, infill, harmonize, evaluate, ablate, export, demo, studio]


class Parser(argparse.ArgumentParser):
    """A usage error is one line (the message and where to find help) and exit code 2, like every error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from musesynth import __version__

    parser = Parser(prog="musesynth", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"musesynth {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def safe_streams() -> None:
    """File names need not be UTF-8 (they reach Python as surrogates): print them escaped, never crash."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass


def run_guarded(func: Callable[[], int]) -> int:
    """Run a command body: user errors become one line on stderr with exit code 2."""
    safe_streams()
    try:
        return func()
    except MusesynthError as exc:
        print(f"musesynth: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("musesynth: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        return _out_of_memory()
    except RuntimeError as exc:  # torch reports running out of memory (CPU or GPU) as a RuntimeError
        if "out of memory" in str(exc).lower() or "allocate" in str(exc).lower():
            return _out_of_memory()
        raise
    except OSError as exc:  # a full disk, a vanished folder, a permission changed mid-run
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"musesynth: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


def _out_of_memory() -> int:
    print("musesynth: error: out of memory (try a smaller --batch-size, --num-samples, --seq-len or model)",
          file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    safe_streams()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error: argparse has printed it
        return exc.code if isinstance(exc.code, int) else 2
    return run_guarded(lambda: args.func(args))


def main_for(module, prog: str, argv: Sequence[str] | None = None) -> int:
    """`python -m musesynth.train` / `musesynth.predict`: one command's parser on its own."""
    safe_streams()
    sub = Parser(prog=prog).add_subparsers()
    module.add_parser(sub)
    parser = next(iter(sub.choices.values()))
    parser.prog = prog
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    return run_guarded(lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
