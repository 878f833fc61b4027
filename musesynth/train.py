"""`musesynth train` / `python -m musesynth.train`: train a GRU, LSTM or Transformer on a dataset.

Multi-GPU / multi-node: `torchrun --nproc_per_node N -m musesynth.train -d DATA -m transformer`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from musesynth.models import FAMILIES
from musesynth.training.config import TrainConfig


def add_train_options(p: argparse.ArgumentParser) -> None:
    """Every TrainConfig field as an option; defaults are None so the config file can fill them."""
    d = TrainConfig()
    p.add_argument("-d", "--dataset", help="dataset folder (musesynth data) or a raw MIDI folder (cached)")
    p.add_argument("-m", "--model", help=f"model family: {', '.join(FAMILIES)} (default {d.model})")
    p.add_argument("--config", help="TOML file with training options (a [train] table or top-level keys)")
    p.add_argument("--encoding", help="encoding when -d is a MIDI folder (default chord)")
    g = p.add_argument_group("model and optimisation (reference defaults)")
    for name, typ, hlp in [
        ("seq_len", int, "tokens per training window"), ("embed_dim", int, "token embedding size"),
        ("batch_size", int, "windows per step (per process under DDP)"), ("epochs", int, "epochs"),
        ("lr", float, "peak learning rate (AdamW)"), ("hidden_dim", int, "RNN state / Transformer FF size"),
        ("num_layers", int, "layers"), ("num_heads", int, "Transformer attention heads"),
        ("dropout", float, "dropout"), ("weight_decay", float, "AdamW weight decay"),
        ("warmup_steps", int, "linear warm-up steps"), ("min_lr_ratio", float, "cosine floor / peak LR"),
        ("grad_clip", float, "gradient norm clip (0: off)"), ("patience", int, "early-stopping epochs (0: off)"),
    ]:
        g.add_argument(f"--{name.replace('_', '-')}", type=typ, default=None,
                       help=f"{hlp} (default {getattr(d, name)})")
    g.add_argument("--no-tie-weights", dest="tie_weights", action="store_const", const=False, default=None,
                   help="separate output head instead of the tied embedding")
    b = p.add_argument_group("budgets and run control")
    b.add_argument("--max-steps", type=int, default=None, help="stop after N steps (sets the LR schedule)")
    b.add_argument("--max-tokens", type=int, default=None, help="stop after N training tokens (sets the schedule)")
    b.add_argument("--max-time", type=float, default=None, help="stop after N seconds of training")
    b.add_argument("--halt-after-steps", type=int, default=None,
                   help="stop as if interrupted after N steps, leaving a resumable last.pt")
    b.add_argument("--eval-every", type=int, default=None, help="validate every N steps too")
    b.add_argument("--log-every", type=int, default=None, help="log train loss every N steps")
    b.add_argument("--augment-transpose", type=int, default=None, help="random transposition +/- semitones")
    b.add_argument("--augment-tempo", type=int, default=None, help="random tempo shift +/- bins")
    b.add_argument("--seed", type=int, default=None)
    b.add_argument("--device", default=None, help="auto (CUDA if present), cpu, cuda, cuda:N")
    b.add_argument("--precision", default=None, choices=["fp32", "bf16", "fp16"], help="autocast precision")
    b.add_argument("--compile", action="store_const", const=True, default=None, help="torch.compile the model")
    b.add_argument("--num-workers", type=int, default=None, help="DataLoader worker processes")
    b.add_argument("-o", "--out-dir", default=None, help="checkpoint root (default training_checkpoints)")
    b.add_argument("--run-name", default=None, help="run folder name (default: the model family)")
    b.add_argument("--resume", action="store_const", const=True, default=None,
                   help="continue the run from its last.pt exactly")
    b.add_argument("--no-tensorboard", dest="tensorboard", action="store_const", const=False, default=None)
    b.add_argument("-q", "--quiet", action="store_const", const=True, default=None)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    from musesynth.training.config import load_config_file, resolve

    file_values = load_config_file(args.config) if args.config else {}
    cli = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__}
    return resolve(file_values, cli)


def run(args: argparse.Namespace) -> int:
    from musesynth.training.loop import train

    train(config_from_args(args))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a GRU, LSTM or Transformer on a dataset")
    add_train_options(p)
    p.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    from musesynth.cli import run_guarded

    p = argparse.ArgumentParser(prog="python -m musesynth.train", description=__doc__.splitlines()[0])
    add_train_options(p)
    args = p.parse_args(argv)
    return run_guarded(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
