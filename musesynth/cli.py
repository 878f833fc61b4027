"""The `musesynth` command: corpus -> data -> train -> generate -> evaluate, ablate, and the studio.

Every user error ends as one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from musesynth.commands.signals import terminate_as_interrupt
from musesynth.errors import MusesynthError

# Each command's one-line summary, as its module gives it (a test checks they agree): `musesynth --help` lists
# them without importing the commands, which import torch (seconds), so --help and --version stay instant.
SUMMARIES = {
    "corpus": "export the embedded classical corpus (music21, offline) to MIDI files",
    "data": "tokenize a MIDI folder into a dataset split 0.8/0.1/0.1 by file",
    "train": "train a GRU, LSTM or Transformer on a dataset",
    "generate": "write new pieces from a trained model and a primer (MIDI, WAV, PNG)",
    "infill": "rewrite bars in the middle of a piece, given the music before and after them (MIDI, WAV, PNG)",
    "harmonize": "write the other voices under a melody: every melody note kept exactly (MIDI with one track per "
                 "voice, WAV, PNG)",
    "evaluate": "test-set NLL/perplexity/accuracy against n-gram baselines, and musical statistics of generated vs "
                "held-out pieces",
    "ablate": "train GRU, LSTM and Transformer under one budget and compare them",
    "export": "write a checkpoint as a shipped model: fp16 safetensors + config.json (no code runs on load)",
    "demo": "build data, train a small model quickly, generate a piece (CPU, minutes)",
    "studio": "compose in the browser: pick a model and a primer, generate, listen, download",
}


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f"musesynth.commands.{name}")


class Parser(argparse.ArgumentParser):
    """A usage error is one line (the message and where to find help) and exit code 2, like every error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser; ``only``: with that command's options alone, the others listed by their summary (""
    for none: the top-level --help and --version)."""
    from musesynth import __version__

    parser = Parser(prog="musesynth", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"musesynth {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary in SUMMARIES.items():
        if only is None or name == only:
            command_module(name).add_parser(sub)
        else:
            sub.add_parser(name, help=summary)
    return parser


def safe_streams() -> None:
    """File names need not be UTF-8 (they reach Python as surrogates): print them escaped, never crash."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass


# what to ask for less of when a command runs out of memory: only the options that command has
MEMORY_HINTS = {
    "train": "a smaller --batch-size, --seq-len or model", "ablate": "a smaller --batch-size, --seq-len or model",
    "generate": "fewer --num-samples or --particles, or a smaller --length",
    "harmonize": "fewer --num-samples or --particles", "infill": "fewer --num-samples or --particles",
    "evaluate": "a smaller --batch-size, fewer --num-samples or --particles",
}


def run_guarded(func: Callable[[], int], command: str = "") -> int:
    """Run a command body: user errors become one line on stderr with exit code 2."""
    safe_streams()
    try:
        with terminate_as_interrupt():  # kill / SIGTERM: temp files cleaned up as after Ctrl-C
            return func()
    except MusesynthError as exc:
        print(f"musesynth: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("musesynth: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        return _out_of_memory(command)
    except RuntimeError as exc:  # torch reports running out of memory (CPU or GPU) as a RuntimeError
        if "out of memory" in str(exc).lower() or "allocate" in str(exc).lower():
            return _out_of_memory(command)
        raise
    except OSError as exc:  # a full disk, a vanished folder, a permission changed mid-run
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"musesynth: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


def _out_of_memory(command: str) -> int:
    hint = MEMORY_HINTS.get(command, "a smaller request")
    print(f"musesynth: error: out of memory (try {hint})", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    safe_streams()
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((w for w in words if not w.startswith("-")), "")
    parser = build_parser(command if command in SUMMARIES else "")
    try:
        args = parser.parse_args(words)
    except SystemExit as exc:  # --help, --version or a usage error: argparse has printed it
        return exc.code if isinstance(exc.code, int) else 2
    return run_guarded(lambda: args.func(args), command)


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
    return run_guarded(lambda: args.func(args), next(iter(sub.choices)))


if __name__ == "__main__":
    raise SystemExit(main())
