"""Everything a training run needs before its first step, resolved and checked in one place: the
dataset, the model, the data loader, the optimizer and schedule, and the state of a resumed run."""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler

from musesynth.artifacts.checkpoint import load_raw
from musesynth.artifacts.meta import CheckpointMeta
from musesynth.artifacts.weights import load_weights
from musesynth.data.augment import Augmenter, WindowAugmenter
from musesynth.data.cache import cached_dataset
from musesynth.data.dataset import Manifest, is_dataset, load_manifest, load_offsets, load_split, load_vocab
from musesynth.data.fim import Chain, FimTransform
from musesynth.data.key_frame import frame_tonics, pieces_to_frame
from musesynth.data.loader import DeviceBatches, WindowDataset
from musesynth.data.melody_first import MelodyFirst
from musesynth.errors import MusesynthError
from musesynth.models import ModelConfig, build_model, count_params
from musesynth.tokenize import Encoding, encoding_from_vocab, key_token_ids
from musesynth.training import distributed
from musesynth.training.checkpoint import check_compatible, check_resume_state, restore_rng
from musesynth.training.config import TrainConfig
from musesynth.training.progress import Progress
from musesynth.training.schedule import resize, warmup_cosine

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_dataset(cfg: TrainConfig, quiet: bool) -> Path:
    path = Path(cfg.dataset)
    if not cfg.dataset:
        raise MusesynthError("no dataset given (-d DATASET_DIR or a MIDI folder)")
    if not path.exists():
        raise MusesynthError(f"dataset not found: {path}")
    if is_dataset(path):
        return path
    return cached_dataset(path, encoding=cfg.encoding, quiet=quiet)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def use_deterministic_kernels() -> None:
    """Bit-identical reruns and resumes on CUDA: deterministic kernels (cuBLAS with a fixed workspace,
    cuDNN without autotuning, sort-based embedding/scatter backward). Costs speed (measure it with
    benchmarks/train.py); ops without a deterministic CUDA kernel only warn."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() >= 2 and "embed" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@dataclass
class TrainData:
    dataset_dir: Path
    manifest: Manifest
    enc: Encoding
    train_tokens: np.ndarray  # as the model reads them (moved to C for --key-relative)
    val_tokens: np.ndarray
    key_prior: list[float] | None = None  # of the pieces' own keys, before any move to C
    composer_prior: list[float] | None = None


def load_data(cfg: TrainConfig, quiet: bool) -> TrainData:
    dataset_dir = resolve_dataset(cfg, quiet)
    vocab = load_vocab(dataset_dir)
    train_tokens, val_tokens = load_split(dataset_dir, "train"), load_split(dataset_dir, "val")
    if len(val_tokens) < 2:
        raise MusesynthError(f"dataset {dataset_dir} has no validation data; add more MIDI files")
    if len(train_tokens) < cfg.seq_len + 1:
        raise MusesynthError(f"--seq-len {cfg.seq_len} is larger than the training data ({len(train_tokens)} tokens)"
                             f" of {dataset_dir}; use a smaller --seq-len")
    enc = encoding_from_vocab(vocab)
    priors = key_prior(enc, train_tokens), composer_prior(enc, train_tokens)
    if cfg.key_relative:
        frames = frame_tonics(cfg.key_relative)
        train_tokens, val_tokens = (pieces_to_frame(enc, load_split(dataset_dir, s), load_offsets(dataset_dir, s),
                                                    frames)[0]
                                    for s in ("train", "val"))
    return TrainData(dataset_dir, load_manifest(dataset_dir), enc, train_tokens, val_tokens, *priors)


def available_memory() -> int:
    """Bytes of memory this process could still use (MemAvailable; the physical total where unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def step_memory(cfg: TrainConfig, mcfg: ModelConfig, windows: int) -> int:
    """A rough upper estimate of one training step's activation memory (bytes, fp32), so a setting that
    would swap or be killed is refused before the first step rather than found out after minutes."""
    b, t = min(cfg.batch_size, max(1, windows)), cfg.seq_len
    per_token = 12 * mcfg.vocab_size + 4 * mcfg.num_layers * (8 * mcfg.embed_dim + 6 * mcfg.hidden_dim)
    attention = 4 * b * mcfg.num_heads * t * t * mcfg.num_layers if mcfg.family == "transformer" else 0
    return b * t * per_token + attention


def check_memory(cfg: TrainConfig, mcfg: ModelConfig, windows: int, device: torch.device) -> None:
    if device.type != "cpu":
        return
    need, have = step_memory(cfg, mcfg, windows), available_memory()
    if need > 0.8 * have:
        raise MusesynthError(f"one training step would need about {need / 2**30:.1f} GiB, more than the "
                             f"{have / 2**30:.1f} GiB available; use a smaller --seq-len ({cfg.seq_len}) or "
                             f"--batch-size ({cfg.batch_size})")


def model_config(cfg: TrainConfig, vocab_size: int) -> ModelConfig:
    """The training options that describe the network, as the model's own config."""
    return ModelConfig(family=cfg.model, vocab_size=vocab_size, embed_dim=cfg.embed_dim, hidden_dim=cfg.hidden_dim,
                       num_layers=cfg.num_layers, num_heads=cfg.num_heads, dropout=cfg.dropout,
                       tie_weights=cfg.tie_weights, seq_len=cfg.seq_len)


@dataclass
class TrainSetup:
    """A run ready for its first (or next, when resumed) step."""

    cfg: TrainConfig
    device: torch.device
    dist: distributed.DistInfo
    data: TrainData
    raw_model: torch.nn.Module
    model: torch.nn.Module  # compiled and/or DDP-wrapped ``raw_model``
    train_ds: WindowDataset
    sampler: DistributedSampler
    loader: DataLoader
    batches: DeviceBatches | None  # the same batches cut on the device (None with augmentation)
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    total_steps: int
    progress: Progress
    meta: CheckpointMeta

    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader)


def _loader(cfg: TrainConfig, data: TrainData, dist: distributed.DistInfo, device: torch.device):
    augment = None
    if cfg.augment_transpose or cfg.augment_tempo:
        augment = WindowAugmenter(data.enc, Augmenter(cfg.augment_transpose, cfg.augment_tempo))
    if data.enc.parts() is not None and cfg.melody_first > 0:
        augment = Chain(augment, MelodyFirst(data.enc, cfg.melody_first))
    if data.enc.bar_infill() is not None and cfg.fim_rate > 0:
        augment = Chain(augment, FimTransform(data.enc, cfg.fim_rate))
    ds = WindowDataset(data.train_tokens, cfg.seq_len, train=True, pad_id=data.enc.pad_id, seed=cfg.seed,
                       augment=augment, piece_starts=cfg.piece_starts, bos_id=data.enc.bos_id)
    sampler = DistributedSampler(ds, num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=cfg.seed)
    loader = DataLoader(ds, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                        drop_last=False, generator=torch.Generator().manual_seed(cfg.seed),
                        pin_memory=device.type == "cuda", persistent_workers=cfg.num_workers > 0)
    batches = None if augment is not None else DeviceBatches(ds, sampler, cfg.batch_size, device)
    return ds, sampler, loader, batches


def key_prior(enc: Encoding, tokens: np.ndarray) -> list[float] | None:
    """How often each key token occurs in the training split (one per piece, before augmentation), so
    generation without a primer can follow the corpus' keys even when transposition augmentation taught
    the model every key."""
    return token_shares(enc, tokens, key_token_ids(enc))


def composer_prior(enc: Encoding, tokens: np.ndarray) -> list[float] | None:
    """How often each composer token occurs in the training split (one per piece): generation without
    ``--composer`` draws each piece's composer from it."""
    ctl = enc.header_controls()
    ids = np.array([ctl.composer_token_id(c) for c in ctl.composers], np.int64) if ctl and ctl.composers else None
    return token_shares(enc, tokens, ids)


def token_shares(enc: Encoding, tokens: np.ndarray, ids: np.ndarray | None) -> list[float] | None:
    """Each of ``ids``' share of their occurrences in ``tokens``; None without ids or occurrences."""
    if ids is None:
        return None
    counts = np.bincount(tokens, minlength=len(enc.vocab))[ids].astype(float)
    return (counts / counts.sum()).tolist() if counts.sum() else None


def scheduled_steps(cfg: TrainConfig, steps_per_epoch: int, world: int) -> int:
    if cfg.max_steps:
        return cfg.max_steps
    if cfg.max_tokens:
        return math.ceil(cfg.max_tokens / (cfg.batch_size * cfg.seq_len * world))
    return cfg.epochs * steps_per_epoch


def _resume(state: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: Any, scaler: torch.amp.GradScaler) -> Progress:
    """Load what --resume continues from; any damage in it is a one-line error naming the file."""
    path = state["meta"].path
    load_weights(model, state["model"], path)
    try:
        check_resume_state(state, optimizer)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if "scaler" in state and scaler.is_enabled():
            scaler.load_state_dict(state["scaler"])
        restore_rng(state)
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError, MusesynthError) as exc:
        raise MusesynthError(f"cannot resume from {path}: damaged optimizer, schedule or RNG state "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
    return state["meta"].progress


def prepare(cfg: TrainConfig, device: torch.device, dist: distributed.DistInfo, quiet: bool) -> TrainSetup:
    data = load_data(cfg, quiet)
    vocab = data.enc.vocab
    mcfg = model_config(cfg, len(vocab))
    resume_state = None
    if cfg.resume:
        last = cfg.run_dir / "last.pt"
        if not last.is_file():
            raise MusesynthError(f"--resume: no checkpoint to resume from at {last}")
        try:
            resume_state = load_raw(last)
        except MusesynthError as exc:
            raise MusesynthError(f"cannot resume from {last}: {exc}") from None
        check_compatible(resume_state["meta"], cfg.model, vocab, mcfg)
        resume_state["meta"].check_encoding(data.enc)
        if resume_state["meta"].key_frames != frame_tonics(cfg.key_relative):
            was = len(resume_state["meta"].key_frames)
            raise MusesynthError(f"--resume: the run was trained with --key-relative {was}; resume it the same way")
    check_memory(cfg, mcfg, len(data.train_tokens) // cfg.seq_len, device)
    amp_dtype = DTYPES[cfg.precision]
    if amp_dtype is torch.float16 and device.type != "cuda":
        raise MusesynthError("--precision fp16 needs a CUDA device (use bf16 on CPU)")

    if cfg.deterministic:
        use_deterministic_kernels()
    seed_everything(cfg.seed)
    raw_model = build_model(mcfg).to(device)
    train_ds, sampler, loader, batches = _loader(cfg, data, dist, device)
    total_steps = scheduled_steps(cfg, len(loader), dist.world)
    optimizer = torch.optim.AdamW(_param_groups(raw_model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.95),
                                  fused=device.type == "cuda")
    scheduler = warmup_cosine(optimizer, cfg.warmup_steps, total_steps, cfg.min_lr_ratio)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype is torch.float16)
    progress = Progress()
    if resume_state is not None:
        progress = _resume(resume_state, raw_model, optimizer, scheduler, scaler)
        if not cfg.time_budget_only:
            resize(scheduler, total_steps)  # a longer --max-steps/--epochs on resume lengthens the schedule

    model: torch.nn.Module = torch.compile(raw_model) if cfg.compile else raw_model
    if dist.enabled:
        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    meta = CheckpointMeta(model_config=mcfg, vocab=vocab, train_config=cfg.to_dict(), dataset=str(data.dataset_dir),
                          num_params=count_params(raw_model), world_size=dist.world, progress=progress,
                          key_prior=data.key_prior, composer_prior=data.composer_prior)
    return TrainSetup(cfg, device, dist, data, raw_model, model, train_ds, sampler, loader, batches, optimizer,
                      scheduler, scaler, amp_dtype, total_steps, progress, meta)
