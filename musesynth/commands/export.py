"""`musesynth export`: a training checkpoint in the form the package ships (fp16 safetensors + config)."""

from __future__ import annotations

import argparse
from pathlib import Path

from musesynth.commands.options import Subparsers, add_command
from musesynth.errors import MusesynthError


def add_parser(sub: Subparsers) -> None:
    p = add_command(sub, "export", "write a checkpoint as a shipped model: fp16 safetensors + config.json (no code "
                    "runs on load)", "musesynth export -c training_checkpoints/pretrained-bach -o my_model")
    p.add_argument("-c", "--checkpoint", required=True, help="run folder (uses best.pt) or checkpoint file")
    p.add_argument("-o", "--out", required=True, help="folder to write (new, or an earlier export with --overwrite)")
    p.add_argument("--summary", help="the run's summary.json, copied into the config as the training record "
                   "(default: none)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export in --out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musesynth.artifacts.jsonsafe import loads
    from musesynth.artifacts.shipped import SHIPPED_FILES, export, is_shipped
    from musesynth.outputs import check_writable_dir

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not is_shipped(out):
            raise MusesynthError(f"{out} exists and is not an exported model; choose a new folder")
        if not args.overwrite:
            raise MusesynthError(f"{out} already holds an exported model; pass --overwrite to replace it")
        extra = sorted(f.name for f in out.iterdir() if f.name not in SHIPPED_FILES)
        if extra:
            raise MusesynthError(f"{out} also holds files export did not write ({extra[0]}); move them first")
    check_writable_dir(out, "-o/--out")
    extra = {}
    if args.summary:
        try:
            text = Path(args.summary).read_bytes()
        except OSError as exc:
            raise MusesynthError(f"cannot read --summary {args.summary}: {exc.strerror or exc}") from None
        extra["training"] = loads(text, f"cannot read --summary {args.summary}")
    export(args.checkpoint, out, extra)
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"exported {args.checkpoint} -> {out} ({size / 1e6:.1f} MB)")
    return 0
