"""`musesynth train` / `python -m musesynth.train`: train a GRU, LSTM or Transformer on a dataset.

Multi-GPU / multi-node: `torchrun --nproc_per_node N -m musesynth.train -d DATA -m transformer`.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from musesynth.commands.options import Subparsers, add_command
from musesynth.device import DEVICE_HELP
from musesynth.errors import MusesynthError
from musesynth.models import FAMILIES
from musesynth.models.config import FAMILY_DEFAULTS
from musesynth.tokenize import ENCODINGS
from musesynth.training.config import PRECISIONS, PRESETS, TrainConfig

EXAMPLE = "musesynth train -d datasets/bach -m transformer --batch-size 32 --lr 1e-3 --max-time 600"
MODEL_OPTIONS = [
    ("seq_len", int, "tokens per training window (the model's context)"), ("embed_dim", int, "token embedding size"),
    ("batch_size", int, "windows per step (per process under DDP)"), ("epochs", int, "epochs"),
    ("lr", float, "peak learning rate (AdamW)"),
    ("hidden_dim", int, "RNN state size / Transformer feed-forward width (default per family: "
     + ", ".join(f"{k} {v['hidden_dim']}" for k, v in FAMILY_DEFAULTS.items()) + ")"),
    ("num_layers", int, "layers (default per family: "
     + ", ".join(f"{k} {v['num_layers']}" for k, v in FAMILY_DEFAULTS.items()) + ")"),
    ("num_heads", int, "Transformer attention heads"), ("dropout", float, "dropout probability, in [0, 1)"),
    ("weight_decay", float, "AdamW weight decay"), ("warmup_steps", int, "linear warm-up steps"),
    ("min_lr_ratio", float, "cosine floor as a share of the peak LR"),
    ("grad_clip", float, "gradient norm clip (0: off)"), ("patience", int, "early-stopping epochs (0: off)"),
]
RUN_OPTIONS = [
    ("max_steps", int, "stop after N steps (also sizes the LR schedule; 0: none)"),
    ("max_tokens", int, "stop after N training tokens (also sizes the schedule; 0: none)"),
    ("max_time", float, "stop after N seconds of training; the LR schedule is sized to it (0: none)"),
    ("halt_after_steps", int, "stop as if interrupted after N steps, leaving a resumable last.pt (0: off)"),
    ("save_every", int, "also save last.pt every N steps inside an epoch (0: off)"),
    ("save_every_seconds", float, "also save last.pt every N seconds inside an epoch (0: off)"),
    ("eval_every", int, "also validate every N steps (0: once per epoch)"),
    ("log_every", int, "log the train loss every N steps"),
    ("augment_transpose", int, "random transposition of each window by up to +/- N semitones (0: off)"),
    ("augment_tempo", int, "random tempo shift of each window by up to +/- N tempo bins (0: off)"),
    ("piece_starts", float, "share of training windows that begin at a piece's start, so the header (key, "
     "meter) and the opening bars are in view as when generating from scratch (0: windows at random cuts)"),
    ("fim_rate", float, "share of windows reordered fill-in-the-middle, for `musesynth infill` (datasets made "
     "with `musesynth data --infill` only)"),
    ("melody_first", float, "share of windows that hold a piece's start shown with one part's notes first, so "
     "`musesynth harmonize` reads a whole melody (datasets made with `musesynth data --encoding parts` only; 0: off)"),
    ("seed", int, "random seed (same seed, same run)"), ("num_workers", int, "DataLoader worker processes"),
    ("run_name", str, "run folder name under -o (default: the model family)"),
]


def _default(name: str) -> object:
    return {f.name: f.default for f in fields(TrainConfig)}[name]


def add_train_options(p: argparse.ArgumentParser, skip: frozenset[str] = frozenset()) -> None:
    """Every TrainConfig field as an option, less those in ``skip`` (a command that sets them itself, like
    ablate, does not offer them); parsed defaults are None so a config file can fill them."""
    p.add_argument("-d", "--dataset", help="dataset folder (musesynth data) or a raw MIDI folder (built once and "
                   "cached); required, here or in --config (no default)")
    if "model" not in skip:
        p.add_argument("-m", "--model", choices=FAMILIES, help=f"model family (default {_default('model')})")
    p.add_argument("--config", help="TOML file with training options (a [train] table or top-level keys); the "
                   "command line wins (default: none)")
    p.add_argument("--preset", choices=list(PRESETS), help="named settings under the config file and the command "
                   "line; large: a ~57M-parameter Transformer, context 1024, bf16, compiled (for a GPU; default: none)")
    p.add_argument("--encoding", choices=list(ENCODINGS), help="encoding when -d is a MIDI folder (default "
                   f"{_default('encoding')})")
    g = p.add_argument_group("model and optimisation (defaults: the reference design)")
    for name, typ, hlp in (o for o in MODEL_OPTIONS if o[0] not in skip):
        d = _default(name)
        g.add_argument(f"--{name.replace('_', '-')}", type=typ, default=None,
                       help=hlp if d is None else f"{hlp} (default {d})")
    g.add_argument("--no-tie-weights", dest="tie_weights", action="store_const", const=False, default=None,
                   help="a separate output head instead of the tied embedding")
    b = p.add_argument_group("budgets and run control")
    for name, typ, hlp in (o for o in RUN_OPTIONS if o[0] not in skip):
        d = _default(name)
        b.add_argument(f"--{name.replace('_', '-')}", type=typ, default=None,
                       help=f"{hlp} (default {d})" if d not in ("", None) else hlp)
    if "out_dir" not in skip:
        b.add_argument("-o", "--out-dir", default=None,
                       help=f"checkpoint root folder (default {_default('out_dir')})")
    b.add_argument("--key-relative", type=int, nargs="?", const=1, default=None, metavar="N",
                   help="learn every piece moved to the nearest of N tonics (1: C; 2: C or F#; up to 4), and have "
                   "generation move each piece back to the key asked for: on small corpora the model holds a key far "
                   "better (1) or is as realistic with a better hold (2); datasets with key tokens (--encoding "
                   "meter). Alone: 1 (default: 0, pieces in their written keys)")
    b.add_argument("--device", default=None, help=f"{DEVICE_HELP} (default auto)")
    b.add_argument("--precision", default=None, choices=PRECISIONS, help="autocast precision (default fp32)")
    b.add_argument("--compile", action="store_const", const=True, default=None, help="torch.compile the model")
    b.add_argument("--deterministic", action="store_const", const=True, default=None,
                   help="deterministic kernels, so a resumed CUDA run matches an uninterrupted one bit for bit "
                   "(slower; CPU runs are deterministic already; default: off)")
    if "resume" not in skip:
        b.add_argument("--resume", action="store_const", const=True, default=None,
                       help="continue the run from its last.pt exactly (default: a new run)")
        b.add_argument("--overwrite", action="store_const", const=True, default=None,
                       help="replace an earlier run of the same name (default: refused)")
    b.add_argument("--no-tensorboard", dest="tensorboard", action="store_const", const=False, default=None,
                   help="write metrics.csv only")
    b.add_argument("-q", "--quiet", action="store_const", const=True, default=None, help="no progress output")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    from musesynth.training.config import load_config_file, resolve

    file_values = load_config_file(args.config) if args.config else {}
    cli = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__}
    cfg = resolve(file_values, cli)
    cfg.validate()
    if cfg.fim_rate > 0 and (args.fim_rate is not None or "fim_rate" in file_values):
        check_fim_dataset(cfg)
    return cfg


def check_fim_dataset(cfg: TrainConfig) -> None:
    """A --fim-rate asked for on a dataset without infill tokens would be ignored in silence: refused instead."""
    from musesynth.data.dataset import is_dataset, load_manifest

    path = Path(cfg.dataset)
    if is_dataset(path):
        manifest = load_manifest(path)
        if manifest.encoding_params.get("infill"):
            return
        what = f"{path} ({manifest.encoding} encoding) has none"
    elif path.is_dir():
        what = f"{path} is a MIDI folder, whose dataset is built without them"
    else:
        return  # a missing dataset is reported by training, with its own message
    raise MusesynthError(f"--fim-rate {cfg.fim_rate:g} trains infilling, which needs a dataset with infill tokens "
                         f"(musesynth data --encoding meter --infill); {what}: leave --fim-rate out")


def run(args: argparse.Namespace) -> int:
    from musesynth.training.loop import train

    train(config_from_args(args))
    return 0


def add_parser(sub: Subparsers) -> None:
    p = add_command(sub, "train", "train a GRU, LSTM or Transformer on a dataset", EXAMPLE)
    add_train_options(p)
    p.set_defaults(func=run)
