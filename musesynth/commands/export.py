"""`musesynth export`: a training checkpoint in the form the package ships (fp16 safetensors + config)."""

from __future__ import annotations

import argparse
import os
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


def _legacy_export(folder: Path) -> bool:
    """An export made before the marker existed: our config.json, told by its content (a Hugging Face or
    other config.json beside a model.safetensors is not ours), and the weights as a plain file."""
    from musesynth.ownership import is_plain_file, read_json

    d = read_json(folder / "config.json")
    return (isinstance(d, dict) and {"model_config", "vocab", "vocab_fingerprint", "ties"} <= d.keys()
            and is_plain_file(folder / "model.safetensors"))


def _export_entry(entry: Path) -> bool:
    """What a new export may replace in an earlier one: the plain files export wrote, and those `make
    pretrained` adds (an evaluation, a harmonisation benchmark and a model card), each told by its content."""
    from musesynth.ownership import MARKER, is_plain_file, read_json

    if not is_plain_file(entry):
        return False
    if entry.name in {"model.safetensors", "config.json", MARKER}:
        return True
    if entry.name == "evaluation.json":  # `musesynth evaluate --json`
        d = read_json(entry)
        return isinstance(d, dict) and "model_metrics" in d
    if entry.name == "harmonization.json":  # benchmarks/harmonize.py --json (a parts model)
        d = read_json(entry)
        return isinstance(d, dict) and {"nll", "harmonizations"} <= d.keys()
    if entry.name == "MODEL_CARD.md":  # scripts/model_card.py
        try:
            with open(entry, "rb") as fh:
                return fh.read(14) == b"# Model card: "
        except OSError:
            return False
    return False


def check_export_target(out: Path, overwrite: bool) -> None:
    """``out`` may be new, empty, or an earlier export of ours (with --overwrite, and only if everything in
    it is ours); anything else is refused in one line and nothing is touched."""
    from musesynth.ownership import check_owned, first_foreign, has_entries, refuse_foreign

    if os.path.lexists(out) and not out.is_dir():
        raise MusesynthError(f"-o/--out {out} is a file; choose a new folder")
    if not out.is_dir() or not has_entries(out):
        return
    check_owned(out, "export", _legacy_export, "an exported model musesynth wrote", "choose a new folder")
    extra = first_foreign(out, _export_entry)
    if extra is not None:
        raise refuse_foreign(extra, "export folder")
    if not overwrite:
        raise MusesynthError(f"{out} already holds an exported model; pass --overwrite to replace it")


def run(args: argparse.Namespace) -> int:
    from musesynth.artifacts.jsonsafe import loads
    from musesynth.artifacts.shipped import export
    from musesynth.outputs import check_writable_dir
    from musesynth.ownership import replacing, resolve_target, write_marker

    out = resolve_target(args.out, "-o/--out")
    check_export_target(out, args.overwrite)
    check_writable_dir(out, "-o/--out")
    extra = {}
    if args.summary:
        if not Path(args.summary).is_file():  # a FIFO would block the read forever
            raise MusesynthError(f"--summary {args.summary} is not a file")
        try:
            text = Path(args.summary).read_bytes()
        except OSError as exc:
            raise MusesynthError(f"cannot read --summary {args.summary}: {exc.strerror or exc}") from None
        extra["training"] = loads(text, f"cannot read --summary {args.summary}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out):
        check_export_target(out, args.overwrite)  # again, under the lock: it may have changed meanwhile
        export(args.checkpoint, out, extra)
        write_marker(out, "export")
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"exported {args.checkpoint} -> {args.out} ({size / 1e6:.1f} MB)")
    return 0
