"""The model that ships inside the package (``musesynth/pretrained/<name>/``): fp16 weights as
safetensors (loading runs no code) and a config.json with the model config, vocabulary, key prior,
training recipe, figures and the SHA-256 of the safetensors file. ``export`` makes one from a training
checkpoint, and refuses weights that are damaged or do not fit their config."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from musesynth.artifacts.checkpoint import build_checked, load_raw
from musesynth.artifacts.jsonsafe import loads
from musesynth.artifacts.meta import CheckpointMeta
from musesynth.artifacts.weights import FLOATS
from musesynth.atomic import atomic_replace_dir, public_mode, write_failure
from musesynth.errors import MusesynthError

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
DEFAULT_MODEL = PRETRAINED_DIR / "bach"  # generate's default: the meter model
PARTS_MODEL = PRETRAINED_DIR / "bach-parts"  # harmonize's and infill's: the model that knows the four voices
WEIGHTS, CONFIG = "model.safetensors", "config.json"
DIGEST = "safetensors_sha256"  # config.json's record of the weights file (absent in exports before it)
# what `make pretrained` keeps in a shipped folder: replaced together by a new export
MAX_CONFIG = 16 * 2**20  # a model's config (vocabulary, training record) is tens of KB
MAX_HEADER = 100 * 2**20  # safetensors' own limit on its JSON header
SHIPPED_FILES = {WEIGHTS, CONFIG, "evaluation.json", "harmonization.json", "MODEL_CARD.md"}


def is_shipped(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / WEIGHTS).is_file() and (p / CONFIG).is_file()


def read_config(path: str | Path) -> dict[str, Any]:
    """A shipped folder's config.json, parsed with the depth limit; must be an object."""
    p = Path(path) / CONFIG
    try:
        if p.stat().st_size > MAX_CONFIG:  # read whole and parsed, a huge one took minutes and gigabytes
            raise MusesynthError(f"cannot read {p}: {p.stat().st_size} bytes, far larger than a model config")
        text = p.read_bytes()
    except OSError as exc:
        raise MusesynthError(f"cannot read {p}: {exc.strerror or exc}") from None
    config = loads(text, f"cannot read {p}")
    if not isinstance(config, dict):
        raise MusesynthError(f"cannot read {p}: not a JSON object")
    return config


def check_weights_size(path: Path) -> None:
    """A safetensors file is exactly 8 bytes + its header + the data its header places: anything longer or
    shorter is damaged, and is refused from the header alone (read whole, a file grown to gigabytes was read
    into memory just to find that its SHA-256 did not match)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8).ljust(8, b"\xff"), "little")
        if n > min(size - 8, MAX_HEADER):
            raise MusesynthError(f"damaged model weights {path}: not a safetensors file ({size} bytes)")
        try:
            header = json.loads(f.read(n))
            end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
            raise MusesynthError(f"damaged model weights {path}: its safetensors header is not readable") from None
    if size != 8 + n + end:
        raise MusesynthError(f"damaged model weights {path}: {size} bytes, but its header describes "
                             f"{8 + n + end}")


def load_shipped(path: str | Path) -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    """Weights (fp32, ties restored) and metadata of a shipped folder, the file checked against its SHA-256."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    p = Path(path)
    config = read_config(p)
    expected = config.get(DIGEST)
    sha_error = MusesynthError(f"damaged model {p}: {WEIGHTS} does not match its SHA-256 in {CONFIG} (changed or "
                               f"corrupted since export); reinstall or re-export it")
    try:
        check_weights_size(p / WEIGHTS)
        blob = (p / WEIGHTS).read_bytes()
    except OSError as exc:
        raise MusesynthError(f"cannot read model weights {p / WEIGHTS}: {exc.strerror or exc}") from None
    except MusesynthError:
        if expected is not None:  # a file of the wrong size cannot match its hash: say so, as for any change
            raise sha_error from None
        raise
    if expected is not None and expected != hashlib.sha256(blob).hexdigest():
        raise sha_error
    try:
        raw = load(blob)
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as exc:
        raise MusesynthError(f"cannot read model weights {p / WEIGHTS}: {str(exc).splitlines()[0][:160]}") from None
    bad = next((n for n, t in raw.items() if t.dtype not in FLOATS), None)
    if bad is not None:
        raise MusesynthError(f"damaged model {p}: {bad} is {str(raw[bad].dtype).removeprefix('torch.')}, not "
                             f"floating point")
    weights = {k: v.float() for k, v in raw.items()}
    ties = config.get("ties", {})
    if not isinstance(ties, dict) or not all(isinstance(k, str) and isinstance(v, str) and v in weights
                                             and k not in weights for k, v in ties.items()):
        raise MusesynthError(f"damaged model {p}: {CONFIG} 'ties' is not a map from missing to stored tensors")
    weights.update({name: weights[src] for name, src in ties.items()})
    return weights, CheckpointMeta.from_dict(config, str(p))


def export(checkpoint: str | Path, out_dir: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the shipped form of a checkpoint: fp16 weights (tied tensors stored once) + config.json with
    their SHA-256. The checkpoint is verified first (digest, config, shapes, finiteness): what cannot be
    loaded is never shipped."""
    from safetensors.torch import save

    state = load_raw(checkpoint)
    meta: CheckpointMeta = state["meta"]
    build_checked(state["model"], meta)
    weights, seen = {}, {}
    for name, t in state["model"].items():
        key = (t.data_ptr(), tuple(t.shape))
        if key in seen:  # a tied head: stored once, restored from its twin on load
            continue
        seen[key] = name
        weights[name] = t.detach().to(torch.float16).contiguous()
        if not bool(weights[name].isfinite().all()):
            raise MusesynthError(f"checkpoint {meta.path}: {name} does not fit in fp16 (values overflow)")
    ties = {n: seen[(t.data_ptr(), tuple(t.shape))] for n, t in state["model"].items() if n not in weights}
    blob = save(weights)
    config = {**meta.to_dict(), "ties": ties, **(extra or {}), DIGEST: hashlib.sha256(blob).hexdigest()}
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as exc:
        raise write_failure(exc, out) or exc from None
    try:  # the whole folder at once: weights and config always belong together
        (tmp / WEIGHTS).write_bytes(blob)  # plain writes: the temp folder is what makes them atomic
        (tmp / CONFIG).write_text(json.dumps(config, indent=2, allow_nan=False) + "\n")
        public_mode(tmp / WEIGHTS)
        atomic_replace_dir(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        failure = write_failure(exc, out, out.parent) if isinstance(exc, OSError) else None
        if failure is not None:
            raise failure from None
        raise
    return out
