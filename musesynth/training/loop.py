"""The training loop (nanoGPT-like): one function, explicit state, resumable at any step boundary."""

from __future__ import annotations

import csv
import math
import random
import signal
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from musesynth.atomic import atomic_write_json
from musesynth.data.augment import Augmenter, WindowAugmenter
from musesynth.data.build import cached_dataset, is_dataset, load_manifest, load_split, load_vocab
from musesynth.data.loader import WindowDataset
from musesynth.errors import MusesynthError
from musesynth.evaluate.likelihood import split_loss
from musesynth.models import FAMILIES, ModelConfig, build_model, count_params
from musesynth.tokenize import encoding_from_vocab
from musesynth.training import distributed
from musesynth.training.checkpoint import check_compatible, load_raw, restore_rng, save_checkpoint
from musesynth.training.config import TrainConfig
from musesynth.training.schedule import warmup_cosine

STOP_REASONS = ["", "max_steps", "max_tokens", "max_time", "halted", "interrupted"]
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MusesynthError(f"--device {name} asked, but CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError:
        raise MusesynthError(f"unknown device '{name}' (use auto, cpu, cuda or cuda:N)") from None


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


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() >= 2 and "embed" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class MetricsLog:
    """metrics.csv (always) and TensorBoard events (when available), written by rank 0 only."""

    FIELDS = ["kind", "step", "epoch", "tokens", "loss", "lr", "tokens_per_s", "elapsed_s"]

    def __init__(self, run_dir: Path, tensorboard: bool, append: bool) -> None:
        self.path = run_dir / "metrics.csv"
        new = not (append and self.path.exists())
        self.fh = open(self.path, "w" if new else "a", newline="")
        self.csv = csv.DictWriter(self.fh, fieldnames=self.FIELDS)
        if new:
            self.csv.writeheader()
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:
                self.tb = None

    def write(self, **row: Any) -> None:
        self.csv.writerow({k: row.get(k, "") for k in self.FIELDS})
        self.fh.flush()
        if self.tb is not None:
            self.tb.add_scalar(f"loss/{row['kind']}", row["loss"], row["tokens"])
            if row.get("lr") not in (None, ""):
                self.tb.add_scalar("lr", row["lr"], row["step"])

    def close(self) -> None:
        self.fh.close()
        if self.tb is not None:
            self.tb.close()


class _Interrupt:
    """First Ctrl-C / SIGTERM: finish the step, save a resumable checkpoint, stop."""

    def __init__(self) -> None:
        self.hit = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Interrupt:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread
                pass
        return self

    def _handler(self, *_: Any) -> None:
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *_: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train per ``cfg``; returns a summary (best/last validation loss, steps, paths)."""
    if cfg.model not in FAMILIES:
        raise MusesynthError(f"unknown model '{cfg.model}' (choose from: {', '.join(FAMILIES)})")
    if cfg.precision not in DTYPES:
        raise MusesynthError(f"unknown precision '{cfg.precision}' (choose from: fp32, bf16, fp16)")
    for name in ("seq_len", "batch_size", "epochs", "embed_dim"):
        if getattr(cfg, name) < 1:
            raise MusesynthError(f"--{name.replace('_', '-')} must be at least 1")
    device = pick_device(cfg.device)
    dist = distributed.setup(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    main = dist.is_main
    quiet = cfg.quiet or not main
    try:
        return _train(cfg, device, dist, main, quiet)
    finally:
        distributed.teardown(dist)


def _train(cfg: TrainConfig, device: torch.device, dist: distributed.DistInfo, main: bool, quiet: bool):
    dataset_dir = resolve_dataset(cfg, quiet)
    vocab = load_vocab(dataset_dir)
    enc = encoding_from_vocab(vocab)
    manifest = load_manifest(dataset_dir)
    train_tokens, val_tokens = load_split(dataset_dir, "train"), load_split(dataset_dir, "val")
    if len(val_tokens) < 2:
        raise MusesynthError(f"dataset {dataset_dir} has no validation data; add more MIDI files")

    run_dir = cfg.run_dir
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    resume_state = None
    if cfg.resume:
        if not last_path.is_file():
            raise MusesynthError(f"--resume: no checkpoint to resume from at {last_path}")
        resume_state = load_raw(last_path)
        check_compatible(resume_state["meta"], cfg.model, vocab.fingerprint,
                         f"{vocab.encoding}, {len(vocab)} tokens")

    seed_everything(cfg.seed)
    mcfg = ModelConfig(
        family=cfg.model, vocab_size=len(vocab), embed_dim=cfg.embed_dim, hidden_dim=cfg.hidden_dim,
        num_layers=cfg.num_layers, num_heads=cfg.num_heads, dropout=cfg.dropout, tie_weights=cfg.tie_weights,
        context=cfg.seq_len,
    )
    if cfg.model == "transformer" and cfg.embed_dim % cfg.num_heads:
        raise MusesynthError(f"--embed-dim {cfg.embed_dim} must be divisible by --num-heads {cfg.num_heads}")
    raw_model = build_model(mcfg).to(device)
    augment = None
    if cfg.augment_transpose or cfg.augment_tempo:
        augment = WindowAugmenter(enc, Augmenter(cfg.augment_transpose, cfg.augment_tempo))
    train_ds = WindowDataset(train_tokens, cfg.seq_len, train=True, pad_id=enc.pad_id, seed=cfg.seed,
                             augment=augment)
    sampler = DistributedSampler(train_ds, num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=cfg.seed)
    loader = DataLoader(train_ds, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                        drop_last=False, generator=torch.Generator().manual_seed(cfg.seed),
                        pin_memory=device.type == "cuda", persistent_workers=cfg.num_workers > 0)
    steps_per_epoch = len(loader)
    tokens_per_step = cfg.batch_size * cfg.seq_len * dist.world
    if cfg.max_steps:
        total_steps = cfg.max_steps
    elif cfg.max_tokens:
        total_steps = math.ceil(cfg.max_tokens / tokens_per_step)
    else:
        total_steps = cfg.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(_param_groups(raw_model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.95),
                                  fused=device.type == "cuda")
    scheduler = warmup_cosine(optimizer, cfg.warmup_steps, total_steps, cfg.min_lr_ratio)

    prog = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "tokens": 0, "best_val": float("inf"),
            "bad_epochs": 0, "elapsed": 0.0, "val_history": []}
    if resume_state is not None:
        raw_model.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        prog.update(resume_state["meta"]["progress"])
        restore_rng(resume_state)

    model: torch.nn.Module = raw_model
    if cfg.compile:
        model = torch.compile(model)
    if dist.enabled:
        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    amp_dtype = DTYPES[cfg.precision]
    if amp_dtype is torch.float16 and device.type != "cuda":
        raise MusesynthError("--precision fp16 needs a CUDA device (use bf16 on CPU)")
    scaler = torch.amp.GradScaler(enabled=amp_dtype is torch.float16)

    meta_static = {
        "model_config": mcfg.to_dict(), "train_config": cfg.to_dict(), "vocab": vocab.to_dict(),
        "vocab_fingerprint": vocab.fingerprint, "dataset": str(dataset_dir),
        "num_params": count_params(raw_model), "world_size": dist.world,
    }
    metrics = None
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "config.json", {**cfg.to_dict(), "resolved_model": mcfg.to_dict(),
                                                    "dataset_dir": str(dataset_dir),
                                                    "dataset_splits": manifest["splits"]})
        metrics = MetricsLog(run_dir, cfg.tensorboard, append=cfg.resume)
        if not quiet:
            print(f"{cfg.model}: {meta_static['num_params']:,} parameters, {len(train_tokens):,} train tokens, "
                  f"{steps_per_epoch} steps/epoch, {total_steps} scheduled steps, device {device}"
                  f"{f' x{dist.world}' if dist.enabled else ''}")

    def save(path: Path) -> None:
        if main:
            save_checkpoint(path, raw_model, {**meta_static, "progress": prog}, optimizer, scheduler)

    def validate() -> float:
        s = split_loss(raw_model if not dist.enabled else model.module, val_tokens, cfg.seq_len,
                       cfg.batch_size, device, enc.pad_id, dist.rank, dist.world, amp_dtype)
        nll_sum, n = distributed.all_sum([s.nll_sum, float(s.tokens)], dist, device)
        return nll_sum / max(1.0, n)

    def log_val(val: float) -> None:
        prog["val_history"].append([prog["step"], prog["tokens"], val])
        if metrics:
            metrics.write(kind="val", step=prog["step"], epoch=prog["epoch"], tokens=prog["tokens"], loss=val,
                          elapsed_s=round(prog["elapsed"], 2))

    stop_reason = ""
    t_start = time.perf_counter() - prog["elapsed"]
    model.train()
    with _Interrupt() as interrupt:
        while prog["epoch"] < cfg.epochs and not stop_reason:
            epoch = prog["epoch"]
            train_ds.set_epoch(epoch)
            sampler.set_epoch(epoch)
            skip = prog["batch_in_epoch"]
            budgeted = cfg.max_steps or cfg.max_tokens or cfg.max_time
            desc = f"epoch {epoch + 1}" + ("" if budgeted else f"/{cfg.epochs}")
            bar = tqdm(total=steps_per_epoch, initial=skip, desc=desc, disable=quiet, unit="step", leave=False)
            t_log, tok_log, loss_acc, n_acc = time.perf_counter(), 0, 0.0, 0
            for b, (x, y) in enumerate(loader):
                if b < skip:
                    continue
                x = x.to(device, non_blocking=True)
                y = y.to(device, non_blocking=True)
                ctx = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext()
                with ctx:
                    logits, _ = model(x)
                loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1),
                                       ignore_index=enc.pad_id)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if cfg.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                prog["step"] += 1
                prog["batch_in_epoch"] = b + 1
                prog["tokens"] += x.numel() * dist.world
                prog["elapsed"] = time.perf_counter() - t_start
                loss_acc += loss.item()
                n_acc += 1
                tok_log += x.numel() * dist.world
                bar.update(1)
                if prog["step"] % cfg.log_every == 0 or b + 1 == steps_per_epoch:
                    dt = time.perf_counter() - t_log
                    tps = tok_log / max(dt, 1e-9)
                    bar.set_postfix(step=f"{prog['step']}/{total_steps}", loss=f"{loss_acc / n_acc:.3f}",
                                    tok_s=f"{tps:,.0f}")
                    if metrics:
                        metrics.write(kind="train", step=prog["step"], epoch=epoch, tokens=prog["tokens"],
                                      loss=loss_acc / n_acc, lr=scheduler.get_last_lr()[0],
                                      tokens_per_s=round(tps, 1), elapsed_s=round(prog["elapsed"], 2))
                    t_log, tok_log, loss_acc, n_acc = time.perf_counter(), 0, 0.0, 0
                if cfg.eval_every and prog["step"] % cfg.eval_every == 0 and b + 1 < steps_per_epoch:
                    log_val(validate())
                budget = (
                    (cfg.max_steps and prog["step"] >= cfg.max_steps and "max_steps")
                    or (cfg.max_tokens and prog["tokens"] >= cfg.max_tokens and "max_tokens")
                    or (cfg.max_time and prog["elapsed"] >= cfg.max_time and "max_time")
                    or (cfg.halt_after_steps and prog["step"] >= cfg.halt_after_steps and "halted")
                    or (interrupt.hit and "interrupted")
                )
                # every rank must take the same branch below (validate() is a collective)
                code = distributed.broadcast_int(STOP_REASONS.index(budget or ""), dist, device)
                if code:
                    stop_reason = STOP_REASONS[code]
                    break
            bar.close()
            if stop_reason in ("halted", "interrupted"):
                save(last_path)
                break
            if not stop_reason:  # epoch finished
                prog["epoch"] += 1
                prog["batch_in_epoch"] = 0
            val = validate()
            log_val(val)
            improved = val < prog["best_val"]
            if improved:
                prog["best_val"], prog["bad_epochs"] = val, 0
            else:
                prog["bad_epochs"] += 1
            save(last_path)
            if improved:
                save(best_path)
            if main and not quiet:
                print(f"epoch {epoch + 1}: step {prog['step']}, val loss {val:.4f}"
                      f"{' (best)' if improved else ''}, {prog['elapsed']:.0f} s")
            if cfg.patience and prog["bad_epochs"] >= cfg.patience and not stop_reason:
                stop_reason = f"early stopping (no better validation loss in {cfg.patience} epochs)"
    if metrics:
        metrics.close()
    summary = {
        "run_dir": str(run_dir), "best_val_loss": prog["best_val"],
        "last_val_loss": prog["val_history"][-1][2] if prog["val_history"] else None,
        "steps": prog["step"], "tokens": prog["tokens"], "elapsed_s": prog["elapsed"],
        "stop_reason": stop_reason or "epochs done", "num_params": meta_static["num_params"],
        "tokens_per_s": prog["tokens"] / max(prog["elapsed"], 1e-9), "val_history": prog["val_history"],
        "dataset_dir": str(dataset_dir),
    }
    if main:
        atomic_write_json(run_dir / "summary.json", summary)
        if not quiet:
            print(f"done ({summary['stop_reason']}): best val loss {prog['best_val']:.4f}, checkpoints in {run_dir}")
    return summary
