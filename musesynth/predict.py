"""`musesynth generate` / `python -m musesynth.predict`: primer in, new music out (MIDI, WAV, PNG)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def add_generate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--checkpoint", required=True, help="run folder (uses best.pt) or checkpoint file")
    p.add_argument("--primer", help="MIDI file, or a folder whose every file primes one piece (default: "
                   "no primer, start from BOS)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--primer-tokens", type=int,
                   help="use the first N tokens of the primer (default: half the model context)")
    g.add_argument("--primer-seconds", type=float, help="use the first S seconds of the primer")
    p.add_argument("-n", "--length", type=int, default=512, help="new tokens per piece (default 512)")
    p.add_argument("-t", "--temperature", type=float, default=1.0)
    p.add_argument("-k", "--top-k", type=int, default=0, help="keep the K most likely tokens (0: off)")
    p.add_argument("-p", "--top-p", type=float, default=1.0, help="nucleus sampling mass (1: off)")
    p.add_argument("-s", "--seed", type=int, default=0, help="same seed, same piece")
    p.add_argument("--num-samples", type=int, default=1, help="pieces per primer, generated as one batch")
    p.add_argument("-o", "--out-dir", default="generated")
    p.add_argument("--no-wav", dest="wav", action="store_false", help="skip FluidSynth rendering")
    p.add_argument("--no-png", dest="png", action="store_false", help="skip the piano-roll picture")
    p.add_argument("--soundfont", help="General MIDI .sf2 (default: a system soundfont)")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-cache", action="store_true", help="naive decoding (re-run the prefix every token)")
    p.add_argument("-q", "--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from musesynth.generate.run import GenerateOptions, run_generate, summarize

    names = set(GenerateOptions.__dataclass_fields__)
    opt = GenerateOptions(**{k: v for k, v in vars(args).items() if k in names})
    results = run_generate(opt)
    if not args.quiet:
        print(summarize(results))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="write new pieces from a trained model and a primer")
    add_generate_options(p)
    p.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    from musesynth.cli import run_guarded

    p = argparse.ArgumentParser(prog="python -m musesynth.predict", description=__doc__.splitlines()[0])
    add_generate_options(p)
    args = p.parse_args(argv)
    return run_guarded(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
