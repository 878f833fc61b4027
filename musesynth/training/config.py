"""Training configuration: defaults (the reference design) <- TOML config file <- command line."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import tomllib

from musesynth.errors import MusesynthError


@dataclass
class TrainConfig:
    dataset: str = ""
    model: str = "gru"
    encoding: str = "chord"  # used when `dataset` is a raw MIDI folder
    # reference hyper-parameters
    seq_len: int = 100
    embed_dim: int = 256
    batch_size: int = 256
    epochs: int = 40
    lr: float = 1e-4
    # model sizes (None: the family's default, see models/config.py)
    hidden_dim: int | None = None
    num_layers: int | None = None
    num_heads: int = 4
    dropout: float = 0.1
    tie_weights: bool = True
    # optimisation
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    patience: int = 5  # early stopping: epochs without a better validation loss (0: off)
    # budgets (0: none). max_steps / max_tokens also set the length of the LR schedule.
    max_steps: int = 0
    max_tokens: int = 0
    max_time: float = 0.0
    halt_after_steps: int = 0  # stop as if interrupted, leaving a resumable checkpoint
    # logging / evaluation
    eval_every: int = 0  # also evaluate every N steps (0: once per epoch)
    log_every: int = 10
    augment_transpose: int = 0
    augment_tempo: int = 0
    # runtime
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast)
    compile: bool = False
    num_workers: int = 0
    out_dir: str = "training_checkpoints"
    run_name: str = ""
    resume: bool = False
    tensorboard: bool = True
    quiet: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise MusesynthError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return cls(**d)

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / (self.run_name or self.model)


def load_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise MusesynthError(f"config file not found: {path}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise MusesynthError(f"bad config file {path}: {exc}") from None
    return {k.replace("-", "_"): v for k, v in data.get("train", data).items()}


def resolve(file_values: dict[str, Any], cli_values: dict[str, Any]) -> TrainConfig:
    """Defaults, overridden by the config file, overridden by options given on the command line."""
    merged = {**file_values, **{k: v for k, v in cli_values.items() if v is not None}}
    return TrainConfig.from_dict(merged)
