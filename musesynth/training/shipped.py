"""The model that ships inside the package (``musesynth/pretrained/<name>/``): fp16 weights as
safetensors (loading runs no code) and a config.json with the model config, vocabulary, key prior,
training recipe and figures. ``export`` makes one from a training checkpoint."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from musesynth.atomic import atomic_replace_dir, atomic_write_json, public_mode
from musesynth.errors import MusesynthError
from musesynth.training.checkpoint import CheckpointMeta, load_raw

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
DEFAULT_MODEL = PRETRAINED_DIR / "bach"
WEIGHTS, CONFIG = "model.safetensors", "config.json"
# what `make pretrained` keeps in a shipped folder: replaced together by a new export
SHIPPED_FILES = {WEIGHTS, CONFIG, "evaluation.json", "MODEL_CARD.md"}


def is_shipped(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / WEIGHTS).is_file() and (p / CONFIG).is_file()


def load_shipped(path: str | Path) -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    try:
        weights = {k: v.float() for k, v in load_file(p / WEIGHTS).items()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise MusesynthError(f"cannot read model weights {p / WEIGHTS}: {exc}") from None
    try:
        text = (p / CONFIG).read_text()
        ties = json.loads(text).get("ties", {})
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise MusesynthError(f"cannot read {p / CONFIG}: {exc}") from None
    weights.update({name: weights[src] for name, src in ties.items() if src in weights})
    return weights, CheckpointMeta.from_json(text, str(p))


def export(checkpoint: str | Path, out_dir: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the shipped form of a checkpoint: fp16 weights (tied tensors stored once) + config.json."""
    from safetensors.torch import save_file

    state = load_raw(checkpoint)
    meta: CheckpointMeta = state["meta"]
    out = Path(out_dir)
    weights, seen = {}, {}
    for name, t in state["model"].items():
        key = (t.data_ptr(), tuple(t.shape))
        if key in seen:  # a tied head: stored once, restored from its twin on load
            continue
        seen[key] = name
        weights[name] = t.detach().to(torch.float16).contiguous()
    ties = {n: seen[(t.data_ptr(), tuple(t.shape))] for n, t in state["model"].items() if n not in weights}
    config = {**json.loads(meta.to_json()), "ties": ties, **(extra or {})}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:  # the whole folder at once: weights and config always belong together
        save_file(weights, str(tmp / WEIGHTS))
        atomic_write_json(tmp / CONFIG, config)
        public_mode(tmp / WEIGHTS)
        atomic_replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
