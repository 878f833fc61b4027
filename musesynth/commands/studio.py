"""`musesynth studio`: compose in the browser, on this computer only (127.0.0.1)."""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from musesynth.commands.options import Subparsers, add_command, add_device_option
from musesynth.data.corpus import DEFAULT_CORPUS_DIR
from musesynth.errors import MusesynthError

EXAMPLE = "musesynth studio --port 7860    # then open http://127.0.0.1:7860/"
DEFAULT_PORT = 7860


def add_parser(sub: Subparsers) -> None:
    p = add_command(sub, "studio", "compose in the browser: pick a model and a primer, generate, listen, download",
                    EXAMPLE)
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port on 127.0.0.1 (0: any free port; "
                   "default %(default)s)")
    p.add_argument("-o", "--out-dir", default="generated/studio", help="where pieces and uploaded primers go; "
                   "nothing there is ever replaced (default %(default)s)")
    p.add_argument("--runs", default="training_checkpoints", help="folder whose run folders are offered as models, "
                   "besides the shipped one (default %(default)s)")
    p.add_argument("--corpus-dir", default=DEFAULT_CORPUS_DIR, help="MIDI folder offered as corpus pieces "
                   "(default %(default)s; when it is absent, the Bach chorales inside music21)")
    p.add_argument("--soundfont", help="General MIDI .sf2 file for the WAVs (default: $MUSESYNTH_SOUNDFONT or a "
                   "system soundfont); a missing or non-sf2 file is an error")
    add_device_option(p)
    p.add_argument("--open", action="store_true", help="also open the page in the default browser")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    p.set_defaults(func=run)


def make_studio(args: argparse.Namespace):  # -> (Studio, StudioServer); imports kept lazy for a fast --help
    from musesynth.device import pick_device
    from musesynth.generate.run import check_soundfont
    from musesynth.outputs import check_writable_dir
    from musesynth.studio.catalog import Corpus
    from musesynth.studio.server import Studio, StudioServer

    if not 0 <= args.port <= 65535:
        raise MusesynthError(f"--port must be between 0 and 65535 (got {args.port})")
    if args.soundfont is not None:
        check_soundfont(args.soundfont)
    pick_device(args.device)
    out = check_writable_dir(args.out_dir, "-o/--out-dir")
    studio = Studio(out, Path(args.runs), Corpus(Path(args.corpus_dir), out / "corpus"), args.soundfont, args.device)
    try:
        server = StudioServer(studio, args.port, args.verbose)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise MusesynthError(f"port {args.port} is in use (choose another --port, or --port 0 for a free one)"
                                 ) from None
        raise
    return studio, server


def source_warnings(args: argparse.Namespace) -> list[str]:
    """A --runs or --corpus-dir that is no folder is said in one line each (a typo must not pass unseen); the
    defaults may be absent on a fresh clone, so they are said only when they exist as something else."""
    lines = []
    for flag, value, default, fallback in [
        ("--runs", args.runs, "training_checkpoints", "only the shipped models are offered"),
        ("--corpus-dir", args.corpus_dir, DEFAULT_CORPUS_DIR, "the corpus pieces are the Bach chorales inside music21"),
    ]:
        p = Path(value)
        if not p.is_dir() and (str(value) != str(default) or p.exists()):
            what = "not a folder" if p.exists() else "no such folder"
            lines.append(f"musesynth studio: warning: {flag} {value}: {what}; {fallback}")
    return lines


def run(args: argparse.Namespace) -> int:
    _, server = make_studio(args)
    for line in source_warnings(args):
        print(line, file=sys.stderr, flush=True)
    print(f"musesynth studio: {server.url}  (pieces go to {args.out_dir}; Ctrl-C stops)", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("musesynth studio: stopped")
    finally:
        server.server_close()
    return 0
