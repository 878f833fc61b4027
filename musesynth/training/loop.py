"""The training loop (nanoGPT-like): explicit state, resumable at any step boundary.

``train(cfg)`` checks the options, joins torchrun's process group if there is one, builds the run
(``training/setup.py``) and steps until an epoch count, a budget, early stopping or a signal ends it.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from musesynth.artifacts.checkpoint import save_checkpoint
from musesynth.artifacts.weights import MAX_ABS
from musesynth.atomic import atomic_write_json
from musesynth.device import pick_device
from musesynth.errors import MusesynthError
from musesynth.models.likelihood import split_loss
from musesynth.outputs import check_writable_dir
from musesynth.training import distributed
from musesynth.training.config import TrainConfig
from musesynth.training.interrupt import Interrupt
from musesynth.training.metrics import MetricsLog
from musesynth.training.progress import TrainSummary, run_left
from musesynth.training.rundir import RunDir
from musesynth.training.schedule import resize
from musesynth.training.setup import TrainSetup, prepare

STOP_REASONS = ["", "max_steps", "max_tokens", "max_time", "halted", "interrupted"]


def train(cfg: TrainConfig, interrupt_hint: str | None = None) -> TrainSummary:
    """Train per ``cfg``; returns the summary (best/last validation loss, steps, paths). ``interrupt_hint``:
    what to print after Ctrl-C instead of how to resume (a caller that goes on with the model as it is)."""
    cfg.validate()
    device = pick_device(cfg.device)
    dist = distributed.setup(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    quiet = cfg.quiet or not dist.is_main
    finished = False
    try:
        if dist.is_main:
            check_writable_dir(cfg.out_dir, "-o/--out-dir")
        setup = prepare(cfg, device, dist, quiet)
        run_dir = RunDir(cfg.run_dir, resume=cfg.resume, overwrite=cfg.overwrite) if dist.is_main else None
        with run_dir or nullcontext():
            summary = Trainer(setup, quiet, interrupt_hint).run()
        finished = True
        return summary
    finally:
        distributed.teardown(dist, finished)


def clock(seconds: float) -> str:
    return f"{seconds / 60:g}-minute" if seconds >= 60 else f"{seconds:g}-second"


class Trainer:
    def __init__(self, s: TrainSetup, quiet: bool, interrupt_hint: str | None = None) -> None:
        self.s, self.cfg, self.p, self.quiet = s, s.cfg, s.progress, quiet
        self.interrupt_hint = interrupt_hint or "resume with the same command plus --resume (from {last})"
        self.main = s.dist.is_main
        self.run_dir = self.cfg.run_dir
        self.last_path, self.best_path = self.run_dir / "last.pt", self.run_dir / "best.pt"
        self.metrics: MetricsLog | None = None
        self.last_save = time.perf_counter()
        self.saved_last = False  # whether this run wrote last.pt: only then is it known to be good

    # ------------------------------------------------------------------ bookkeeping
    def save(self, path: Path) -> None:
        params = list(self.s.raw_model.parameters())
        if not bool(torch.stack([p.isfinite().all() & (p.abs().max() <= MAX_ABS) for p in params]).all()):  # one sync
            self.diverged(f"the weights are not finite or over {MAX_ABS:g} (loading would refuse them)")
        if self.main:
            save_checkpoint(path, self.s.raw_model, self.s.meta, self.s.optimizer, self.s.scheduler,
                            self.s.scaler)
            self.saved_last = self.saved_last or path == self.last_path
        self.last_save = time.perf_counter()

    def validate(self) -> float:
        s, dist = self.s, self.s.dist
        st = split_loss(s.raw_model, s.data.val_tokens, self.cfg.seq_len, self.cfg.batch_size, s.device,
                        s.data.enc.pad_id, dist.rank, dist.world, s.amp_dtype)
        nll_sum, n = distributed.all_sum([st.nll_sum, float(st.tokens)], dist, s.device)
        return nll_sum / max(1.0, n)

    def log_val(self, val: float) -> None:
        self.p.val_history.append([self.p.step, self.p.tokens, val])
        if self.metrics:
            self.metrics.write(kind="val", step=self.p.step, epoch=self.p.epoch, tokens=self.p.tokens, loss=val,
                               elapsed_s=round(self.p.elapsed, 2))

    def _start(self) -> None:
        if not self.main:
            return
        s = self.s
        atomic_write_json(self.run_dir / "config.json", {
            **self.cfg.to_dict(), "resolved_model": s.meta.model_config.to_dict(),
            "dataset_dir": str(s.data.dataset_dir), "dataset_splits": s.data.manifest.splits})
        self.metrics = MetricsLog(self.run_dir, self.cfg.tensorboard, append=self.cfg.resume)
        if not self.quiet:
            print(f"{self.cfg.model}: {s.meta.num_params:,} parameters, {len(s.data.train_tokens):,} train tokens, "
                  f"{s.steps_per_epoch} steps/epoch, "
                  + (f"a {clock(self.cfg.max_time)} budget (the schedule follows the clock)"
                     if self.cfg.time_budget_only else f"{s.total_steps} scheduled steps")
                  + f", device {s.device}"
                  f"{f' x{s.dist.world}' if s.dist.enabled else ''}")

    # ------------------------------------------------------------------ one step
    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimizer step; returns the loss as a device tensor: reading it (``.item()``) would make the
        host wait for the device every step, so the loop reads it at log time (each step on CPU, where
        reading costs nothing and a non-finite loss is caught before the update)."""
        s = self.s
        x, y = x.to(s.device, non_blocking=True), y.to(s.device, non_blocking=True)
        with torch.autocast(s.device.type, dtype=s.amp_dtype) if s.amp_dtype else nullcontext():
            logits, _ = s.model(x)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1),
                               ignore_index=s.data.enc.pad_id)
        if s.device.type == "cpu":
            self.check_finite(loss.item())
        s.optimizer.zero_grad(set_to_none=True)
        s.scaler.scale(loss).backward()
        if self.cfg.grad_clip > 0:
            s.scaler.unscale_(s.optimizer)
            torch.nn.utils.clip_grad_norm_(s.raw_model.parameters(), self.cfg.grad_clip, foreach=True)
        s.scaler.step(s.optimizer)
        s.scaler.update()
        s.scheduler.step()
        return loss.detach()

    def check_finite(self, value: float) -> None:
        if not math.isfinite(value):
            self.diverged(f"the loss is {value}")

    def diverged(self, what: str) -> None:
        """Stop with a clear error; nothing non-finite is saved, so a last.pt this run wrote is the last good one
        (one it only resumed from is not claimed: the divergence may come from it)."""
        kept = f"; the last good checkpoint is {self.last_path}" if self.saved_last else ""
        raise MusesynthError(f"training diverged at step {self.p.step + 1}: {what}{kept}; try a lower --lr "
                             f"(now {self.cfg.lr:g}) or --precision fp32")

    def budget_reason(self, interrupt: Interrupt) -> str:
        c, p = self.cfg, self.p
        return (
            (c.max_steps and p.step >= c.max_steps and "max_steps")
            or (c.max_tokens and p.tokens >= c.max_tokens and "max_tokens")
            or (c.max_time and p.elapsed >= c.max_time and "max_time")
            or (c.halt_after_steps and p.step >= c.halt_after_steps and "halted")
            or (interrupt.hit and "interrupted")
            or ""
        )

    def _due_save(self) -> bool:
        c = self.cfg
        return bool((c.save_every and self.p.step % c.save_every == 0)
                    or (c.save_every_seconds and time.perf_counter() - self.last_save >= c.save_every_seconds))

    # ------------------------------------------------------------------ one epoch
    def run_epoch(self, interrupt: Interrupt, t_start: float) -> str:
        s, c, p = self.s, self.cfg, self.p
        epoch, skip = p.epoch, p.batch_in_epoch
        s.train_ds.set_epoch(epoch)
        s.sampler.set_epoch(epoch)
        budgeted = c.max_steps or c.max_tokens or c.max_time
        bar = tqdm(total=s.steps_per_epoch, initial=skip, desc=f"epoch {epoch + 1}" + ("" if budgeted else
                   f"/{c.epochs}"), disable=self.quiet, unit="step", leave=False)
        t_log, tok_log, loss_acc, n_acc = time.perf_counter(), 0, 0.0, 0
        reason = ""
        for b, (x, y) in enumerate(self.batches(skip), start=skip):
            loss_acc = loss_acc + self.step(x, y)  # stays on the device until logged
            n_acc += 1
            p.step, p.batch_in_epoch = p.step + 1, b + 1
            p.tokens += x.numel() * s.dist.world
            tok_log += x.numel() * s.dist.world
            p.elapsed = time.perf_counter() - t_start
            bar.update(1)
            if p.step % c.log_every == 0 or b + 1 == s.steps_per_epoch:
                loss = float(loss_acc) / n_acc  # the one host sync every log_every steps
                self.check_finite(loss)
                tps = tok_log / max(time.perf_counter() - t_log, 1e-9)
                self._log_train(bar, loss, tps)
                t_log, tok_log, loss_acc, n_acc = time.perf_counter(), 0, 0.0, 0
            if c.eval_every and p.step % c.eval_every == 0 and b + 1 < s.steps_per_epoch:
                self.log_val(self.validate())
            # every rank must take the same branch (validate() is a collective): rank 0 decides
            code = distributed.broadcast_int(STOP_REASONS.index(self.budget_reason(interrupt)), s.dist, s.device)
            if code:
                reason = STOP_REASONS[code]
                break
            if b + 1 < s.steps_per_epoch and self._due_save():
                self.save(self.last_path)
        bar.close()
        return reason

    def batches(self, skip: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This epoch's batches from ``skip`` on: cut on the device when possible, else from the DataLoader
        (augmentation), whose skipped batches are drawn and dropped so the rest stay the same."""
        if self.s.batches is not None:
            return self.s.batches.epoch(skip)
        return itertools.islice(iter(self.s.loader), skip, None)

    def _log_train(self, bar: tqdm, loss: float, tps: float) -> None:
        s, p = self.s, self.p
        if self.cfg.time_budget_only and p.step >= 10:  # size the LR schedule to the time budget
            total = max(p.step + 1, round(p.step * self.cfg.max_time / max(p.elapsed, 1e-9)))
            total = min(total, self.cfg.epochs * s.steps_per_epoch)  # the epoch limit may end the run first
            s.total_steps = distributed.broadcast_int(total, s.dist, s.device)  # one schedule on every rank
            resize(s.scheduler, s.total_steps)
        bar.set_postfix(step=f"{p.step}/{s.total_steps}", loss=f"{loss:.3f}", tok_s=f"{tps:,.0f}",
                        run=run_left(p, s.total_steps, self.cfg.max_time).replace(" of the run,", ","))
        if self.metrics:
            self.metrics.write(kind="train", step=p.step, epoch=p.epoch, tokens=p.tokens, loss=loss,
                               lr=s.scheduler.get_last_lr()[0], tokens_per_s=round(tps, 1),
                               elapsed_s=round(p.elapsed, 2))

    def end_epoch(self, reason: str) -> str:
        """Validate, save last/best, early-stop; returns the (possibly new) stop reason."""
        p, c = self.p, self.cfg
        epoch = p.epoch
        if not reason:  # the epoch finished
            p.epoch, p.batch_in_epoch = p.epoch + 1, 0
        val = self.validate()
        self.log_val(val)
        improved = val < p.best_val
        p.best_val, p.bad_epochs = (val, 0) if improved else (p.best_val, p.bad_epochs + 1)
        self.save(self.last_path)
        if improved:
            self.save(self.best_path)
        if self.main and not self.quiet:
            print(f"epoch {epoch + 1}: step {p.step}, val loss {val:.4f}{' (best)' if improved else ''}, "
                  f"{p.elapsed:.0f} s; {run_left(p, self.s.total_steps, c.max_time)}")
        if c.patience and p.bad_epochs >= c.patience and not reason:
            reason = f"early stopping (no better validation loss in {c.patience} epochs)"
        return reason

    # ------------------------------------------------------------------ the run
    def run(self) -> TrainSummary:
        self._start()
        reason = ""
        t_start = time.perf_counter() - self.p.elapsed
        self.s.model.train()
        try:
            with Interrupt() as interrupt:
                reason = self.budget_reason(interrupt)  # a resumed run whose budget is already spent
                while self.p.epoch < self.cfg.epochs and not reason:
                    reason = self.run_epoch(interrupt, t_start)
                    if reason in ("halted", "interrupted"):
                        self.save(self.last_path)
                        break
                    reason = self.end_epoch(reason)
        finally:
            if self.metrics:
                self.metrics.close()
        return self._finish(reason or "epochs done")

    def _finish(self, reason: str) -> TrainSummary:
        p = self.p
        summary = TrainSummary(
            run_dir=str(self.run_dir), best_val_loss=p.best_val if math.isfinite(p.best_val) else None,
            last_val_loss=p.val_history[-1][2] if p.val_history else None, steps=p.step, tokens=p.tokens,
            elapsed_s=p.elapsed, stop_reason=reason, num_params=self.s.meta.num_params,
            tokens_per_s=p.tokens / max(p.elapsed, 1e-9), val_history=p.val_history,
            dataset_dir=str(self.s.data.dataset_dir),
        )
        if self.main:
            atomic_write_json(self.run_dir / "summary.json", summary.to_dict())
            if not self.quiet:
                best = f"{p.best_val:.4f}" if math.isfinite(p.best_val) else "none yet"
                print(f"done ({reason}): best val loss {best}, checkpoints in {self.run_dir}")
                if reason == "interrupted":
                    print(self.interrupt_hint.format(last=self.last_path))
        return summary
