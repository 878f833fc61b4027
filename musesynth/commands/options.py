"""Options several commands share, with help text that states each default."""

from __future__ import annotations

import argparse

from musesynth.device import DEVICE_HELP
from musesynth.generate.sampling import Sampling

Subparsers = argparse._SubParsersAction


def add_command(sub: Subparsers, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    """A subcommand with its one-line description and an example under its options."""
    return sub.add_parser(name, help=summary, description=summary, epilog=f"example:\n  {example}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_sampling_options(p: argparse.ArgumentParser, short: bool = True, ending: bool = True) -> None:
    """The sampling dials; ``ending`` False where a piece's end is not the sampler's to choose (infill)."""
    d = Sampling()
    g = p.add_argument_group("sampling")
    names = (("-t", "--temperature"), ("-k", "--top-k"), ("-p", "--top-p")) if short else \
        (("--temperature",), ("--top-k",), ("--top-p",))
    g.add_argument(*names[0], type=float, default=d.temperature,
                   help="divide the logits by T: < 1 safer, > 1 wilder (default %(default)s)")
    g.add_argument(*names[1], type=int, default=d.top_k, help="keep only the K most likely tokens (0: off; "
                   "default %(default)s)")
    g.add_argument(*names[2], type=float, default=d.top_p, help="nucleus sampling: keep the smallest set of "
                   "tokens with this probability mass (1: off; default %(default)s)")
    g.add_argument("--repeat-bias", type=float, default=d.repeat_bias,
                   help="models with repeat marks (meter encoding): log-odds added to the marks, i.e. how readily "
                        "a passage repeats an earlier one (0: the model's own rate; default %(default)s)")
    g.add_argument("--key-strength", type=float, default=d.key_strength,
                   help="models with key tokens (meter encoding): log-odds taken from notes outside the piece's key, "
                        "i.e. how firmly it stays in the key asked for (0: the model's own; default %(default)s)")
    if not ending:
        return
    g.add_argument("--ending", type=float, default=d.ending,
                   help="log-odds added to the end of the piece near --length, rising to this, so it stops at a "
                        "close rather than mid-bar at the limit. For models with key tokens (meter encoding) only "
                        "on a full chord on the key's tonic, over the last 50%% of --length (default 20); for "
                        "others wherever the model would end, over the last 30%% (default 8). 0: off, the piece "
                        "runs to --length or to where the model ends it")


def add_output_options(p: argparse.ArgumentParser, out_dir: str) -> None:
    """Where `generate` and `infill` write, and what: the same options for both."""
    p.add_argument("-o", "--out-dir", default=out_dir, help="output folder (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier pieces musesynth wrote under the "
                   "same name (files, folders or links of yours so named are kept: a new name is used; default: a "
                   "new name such as NAME-2)")
    p.add_argument("--no-wav", dest="wav", action="store_false", help="skip FluidSynth rendering")
    p.add_argument("--no-png", dest="png", action="store_false", help="skip the piano-roll picture")
    p.add_argument("--soundfont", help="General MIDI .sf2 file (default: $MUSESYNTH_SOUNDFONT or a system "
                   "soundfont); a missing or non-sf2 file is an error")


def sampling_from_args(args: argparse.Namespace) -> Sampling:
    return Sampling(args.temperature, args.top_k, args.top_p, args.repeat_bias, args.key_strength,
                    getattr(args, "ending", Sampling.ending)).validate()


def add_device_option(p: argparse.ArgumentParser, default: str | None = "auto") -> None:
    p.add_argument("--device", default=default, help=f"{DEVICE_HELP} (default auto)")
