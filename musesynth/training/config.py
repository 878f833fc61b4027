"""Training configuration: defaults (the reference design) <- TOML config file <- command line."""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from musesynth.errors import MusesynthError

PRECISIONS = ("fp32", "bf16", "fp16")
# Named starting points (``--preset``), applied under the config file and the command line.
PRESETS: dict[str, dict[str, Any]] = {
    # ~57M parameters at context 1024, shaped for GPU throughput (aim: >= 40% MFU on an H100-class GPU):
    # wide matmuls (768 / 3072, 12 heads of 64 for flash attention), bf16 autocast, torch.compile (no graph
    # breaks in the Transformer), fused AdamW (always on CUDA), no dropout (large corpora; raise it for small
    # ones). Check the figure with benchmarks/train.py and the same sizes.
    "large": {"model": "transformer", "seq_len": 1024, "embed_dim": 768, "hidden_dim": 3072, "num_layers": 8,
              "num_heads": 12, "dropout": 0.0, "batch_size": 32, "lr": 6e-4, "warmup_steps": 500,
              "precision": "bf16", "compile": True},
}


@dataclass
class TrainConfig:
    dataset: str = ""
    preset: str = ""  # a name in PRESETS: its values sit under the config file and the command line
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
    # saving inside an epoch, so a killed run loses at most this much (0: off)
    save_every: int = 0  # steps
    save_every_seconds: float = 300.0
    # logging / evaluation
    eval_every: int = 0  # also evaluate every N steps (0: once per epoch)
    log_every: int = 10
    augment_transpose: int = 0
    augment_tempo: int = 0
    piece_starts: float = 0.0  # share of training windows that begin at a piece's BOS
    fim_rate: float = 0.5  # share of windows reordered fill-in-the-middle (encodings with infill tokens only)
    melody_first: float = 0.0  # share of windows shown melody first (parts encoding: data.melody_first)
    key_relative: int = 0  # frames (tonics) pieces are learnt on, each moved to the nearest (data.key_frame); 0: off
    # runtime
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast)
    compile: bool = False
    deterministic: bool = False  # deterministic kernels: bit-exact resume on CUDA, at some speed cost
    num_workers: int = 0
    out_dir: str = "training_checkpoints"
    run_name: str = ""
    resume: bool = False
    overwrite: bool = False  # replace an earlier run of the same name (else refused)
    tensorboard: bool = True
    quiet: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        types = {f.name: f.type for f in fields(cls)}
        unknown = set(d) - set(types)
        if unknown:
            raise MusesynthError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return cls(**{k: _typed(k, v, types[k]) for k, v in d.items()})

    def validate(self) -> None:
        """Every range check of a training option, in one place (the CLI and the Python API both call it)."""
        from musesynth.models import FAMILIES

        if self.preset and self.preset not in PRESETS:
            raise MusesynthError(f"unknown preset '{self.preset}' (choose from: {', '.join(PRESETS)})")
        if self.model not in FAMILIES:
            raise MusesynthError(f"unknown model '{self.model}' (choose from: {', '.join(FAMILIES)})")
        if self.precision not in PRECISIONS:
            raise MusesynthError(f"unknown precision '{self.precision}' (choose from: {', '.join(PRECISIONS)})")
        at_least = {"seq_len": 1, "embed_dim": 1, "batch_size": 1, "epochs": 1, "num_heads": 1, "log_every": 1,
                    "hidden_dim": 1, "num_layers": 1, "warmup_steps": 0, "patience": 0, "max_steps": 0,
                    "max_tokens": 0, "halt_after_steps": 0, "eval_every": 0, "save_every": 0,
                    "augment_transpose": 0, "augment_tempo": 0, "num_workers": 0}
        for name, low in at_least.items():
            value = getattr(self, name)
            if value is not None and value < low:
                raise MusesynthError(f"--{name.replace('_', '-')} must be at least {low} (got {value})")
        positive = {"lr": self.lr}
        non_negative = {"weight_decay": self.weight_decay, "grad_clip": self.grad_clip, "max_time": self.max_time,
                        "save_every_seconds": self.save_every_seconds}
        for name, value in {**positive, **non_negative}.items():
            if not math.isfinite(value) or value < 0 or (name in positive and value == 0):
                kind = "positive" if name in positive else "zero or more"
                raise MusesynthError(f"--{name.replace('_', '-')} must be a finite number, {kind} (got {value})")
        if not 0 <= self.dropout < 1:
            raise MusesynthError(f"--dropout must be in [0, 1) (got {self.dropout})")
        if not 0 <= self.key_relative <= 4:
            raise MusesynthError(f"--key-relative takes 1 to 4 frames, or 0 for written keys (got {self.key_relative})")
        if not 0 <= self.fim_rate <= 1:
            raise MusesynthError(f"--fim-rate must be in [0, 1] (got {self.fim_rate})")
        if not 0 <= self.melody_first <= 1:
            raise MusesynthError(f"--melody-first must be in [0, 1] (got {self.melody_first})")
        if not 0 <= self.min_lr_ratio <= 1:
            raise MusesynthError(f"--min-lr-ratio must be in [0, 1] (got {self.min_lr_ratio})")
        if not 0 <= self.piece_starts <= 1:
            raise MusesynthError(f"--piece-starts must be in [0, 1] (got {self.piece_starts})")
        if self.augment_transpose > 11:
            raise MusesynthError("--augment-transpose must be at most 11 semitones")
        if self.model == "transformer" and self.embed_dim % self.num_heads:
            raise MusesynthError(f"--embed-dim {self.embed_dim} must be divisible by --num-heads {self.num_heads}")
        if self.run_name and (Path(self.run_name).name != self.run_name or self.run_name in (".", "..")):
            raise MusesynthError(f"--run-name must be a plain folder name, not a path: {self.run_name}")

    @property
    def time_budget_only(self) -> bool:
        """Only --max-time bounds the run: the LR schedule is then sized from the measured speed."""
        return bool(self.max_time and not (self.max_steps or self.max_tokens))

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / (self.run_name or self.model)


def _typed(name: str, value: Any, annotation: str) -> Any:
    """A config-file or API value of the option's type (an int where a float goes is fine), else an error."""
    wanted = annotation.replace(" | None", "")
    if value is None and "None" in annotation:
        return None
    ok = {"int": isinstance(value, int) and not isinstance(value, bool),
          "float": isinstance(value, (int, float)) and not isinstance(value, bool),
          "bool": isinstance(value, bool), "str": isinstance(value, str)}.get(wanted, True)
    if not ok:
        raise MusesynthError(f"training option {name} must be {wanted}, not {type(value).__name__} ({value!r})")
    return float(value) if wanted == "float" else value


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
    """Defaults, overridden by a preset, by the config file, by options given on the command line."""
    merged = {**file_values, **{k: v for k, v in cli_values.items() if v is not None}}
    preset = merged.get("preset") or ""
    if preset and preset not in PRESETS:
        raise MusesynthError(f"unknown preset '{preset}' (choose from: {', '.join(PRESETS)})")
    return TrainConfig.from_dict({**PRESETS.get(preset, {}), **merged})
