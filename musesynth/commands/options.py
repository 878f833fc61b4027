"""Options several commands share, with help text that states each default."""

from __future__ import annotations

import argparse
from typing import Any

from musesynth.device import DEVICE_HELP
from musesynth.errors import BadRequest
from musesynth.generate.sampling import Sampling

Subparsers = argparse._SubParsersAction


def add_command(sub: Subparsers, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    """A subcommand with its one-line description and an example under its options."""
    return sub.add_parser(name, help=summary, description=summary, epilog=f"example:\n  {example}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_sampling_options(p: argparse.ArgumentParser, short: bool = True, ending: bool = True,
                         defaults: Sampling | None = None) -> None:
    """The sampling dials, built from ``Sampling``'s fields (default, range, help); ``short``: with their short
    flags (-t, -k, -p); ``ending`` False where a piece's end is not the sampler's to choose (infill); ``defaults``: a
    command's own (harmonize's temperature)."""
    g = p.add_argument_group("sampling")
    for name, (default, dial) in Sampling.dials().items():
        if name == "ending" and not ending:
            continue
        default = getattr(defaults, name) if defaults is not None else default
        flag = "--" + name.replace("_", "-")
        names = (dial.short, flag) if short and dial.short else (flag,)
        shown = "" if default is None else "; default %(default)s"
        g.add_argument(*names, dest=name, type=int if dial.whole else float, default=default,
                       help=dial.help.replace("%", "%%") + shown)


def add_particles_option(p: argparse.ArgumentParser, default: int) -> None:
    """`generate`'s and `evaluate`'s --particles: SMC for a parts model's free pieces (``generate.particles``)."""
    p.add_argument("--particles", type=int, default=default, help="parts models (one line per voice): particles per "
                   "piece (1-64, default %(default)s). Sequential Monte Carlo: samples the model would lead into what "
                   "the voice rules forbid (a voice starting a note over its own, parallel fifths or octaves) give way "
                   "to copies of those that keep them, so a piece is drawn as the model would write it knowing the "
                   "rules. Time grows with the number")


def add_output_options(p: argparse.ArgumentParser, out_dir: str) -> None:
    """Where `generate` and `infill` write, and what: the same options for both."""
    p.add_argument("-o", "--out-dir", default=out_dir, help="output folder (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier pieces musesynth wrote under the "
                   "same name and nobody changed since (files, folders or links of yours so named, or a piece you "
                   "edited in place, are kept: a new name is used; default: a new name such as NAME-2)")
    p.add_argument("--no-wav", dest="wav", action="store_false", help="skip FluidSynth rendering")
    p.add_argument("--no-png", dest="png", action="store_false", help="skip the piano-roll picture")
    p.add_argument("--soundfont", help="General MIDI .sf2 file (default: $MUSESYNTH_SOUNDFONT or a system "
                   "soundfont); a missing or non-sf2 file is an error")


def sampling_from_args(args: argparse.Namespace) -> Sampling:
    """The dials ``add_sampling_options`` added, by name; errors name the flags."""
    from musesynth.generate.request import cli_flag

    try:
        return Sampling(**{n: getattr(args, n) for n in Sampling.dials() if hasattr(args, n)}).validate()
    except BadRequest as exc:
        raise exc.named(cli_flag) from None


def add_device_option(p: argparse.ArgumentParser, default: str | None = "auto") -> None:
    p.add_argument("--device", default=default, help=f"{DEVICE_HELP} (default auto)")


def seed_line(results: list[dict[str, Any]], asked: int | None, what: str = "these") -> str:
    """The seed the results were sampled with, and, when it was drawn rather than asked for, how to remake them."""
    seed = results[0]["sampling"]["seed"]
    return f"seed {seed}" + ("" if asked is not None else f" (make {what} again with -s {seed})")
