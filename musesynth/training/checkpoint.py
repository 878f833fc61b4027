"""What ``--resume`` needs beyond the checkpoint format (``musesynth.artifacts``): the RNG states restored,
the run's settings compared, and the optimizer and schedule state checked before they are trusted."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import torch

from musesynth.artifacts.checkpoint import FORMAT, load_raw, resolve_path, save_checkpoint
from musesynth.artifacts.jsonsafe import loads
from musesynth.artifacts.load import load_model
from musesynth.artifacts.meta import CheckpointMeta
from musesynth.artifacts.weights import load_weights
from musesynth.errors import MusesynthError
from musesynth.models import ModelConfig
from musesynth.tokenize import Vocabulary

__all__ = ["FORMAT", "CheckpointMeta", "check_compatible", "check_resume_state", "load_model", "load_raw",
           "load_weights", "resolve_path", "restore_rng", "save_checkpoint"]


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["rng_torch"])
    random.setstate(_tuples(loads(state["rng_python"], "damaged Python RNG state")))
    np_state = loads(state["rng_numpy"], "damaged NumPy RNG state")
    np_state["state"]["key"] = np.asarray(np_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(np_state)
    if "rng_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])


def _tuples(x: Any) -> Any:
    return tuple(_tuples(i) for i in x) if isinstance(x, list) else x


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_FLAGS = ("amsgrad", "maximize", "foreach", "capturable", "differentiable", "fused", "decoupled_weight_decay")


def check_resume_state(state: dict[str, Any], optimizer: torch.optim.Optimizer) -> None:
    """The optimizer and schedule state a resumed run steps with: the types and shapes torch would only
    trip over steps later (or silently train on), checked up front. Raises ``ValueError`` naming the part."""
    opt, sched = state.get("optimizer"), state.get("scheduler")
    if not isinstance(opt, dict) or not isinstance(opt.get("state"), dict) or not isinstance(
            opt.get("param_groups"), list):
        raise ValueError("optimizer state is not {state, param_groups}")
    params = [p for g in optimizer.param_groups for p in g["params"]]  # the order the saved indices follow
    for g in opt["param_groups"]:
        if not isinstance(g, dict) or not all(_number(g.get(k)) and g[k] >= 0 for k in ("lr", "weight_decay", "eps")):
            raise ValueError("an optimizer group's lr/weight_decay/eps is not a number")
        if not isinstance(g.get("params"), list) or not all(isinstance(i, int) for i in g["params"]):
            raise ValueError("an optimizer group's params are not indices")
        betas = g.get("betas")  # read by every step: garbage here failed mid-run with a traceback
        if not isinstance(betas, (list, tuple)) or len(betas) != 2 or not all(_number(b) and 0 <= b < 1 for b in betas):
            raise ValueError("an optimizer group's betas are not two numbers in [0, 1)")
        if not all(g.get(k) is None or isinstance(g[k], bool) for k in _FLAGS):
            raise ValueError("an optimizer group's flags are not true/false")
    for i, s in opt["state"].items():
        if not isinstance(i, int) or not 0 <= i < len(params) or not isinstance(s, dict):
            raise ValueError(f"optimizer state {i!r} does not belong to a parameter")
        for k in ("exp_avg", "exp_avg_sq"):
            t = s.get(k)
            if not torch.is_tensor(t) or t.shape != params[i].shape or not t.is_floating_point() or not bool(
                    t.isfinite().all()):
                raise ValueError(f"optimizer {k} of parameter {i} is damaged (type, shape or NaN)")
        step = s.get("step")
        if torch.is_tensor(step):
            step = float(step) if step.numel() == 1 and not step.is_complex() and step.layout is torch.strided else None
        if not _number(step) or step < 0:  # a negative step made AdamW's bias correction complex (a traceback)
            raise ValueError(f"optimizer step of parameter {i} is not a step count")
    if not isinstance(sched, dict):
        raise ValueError("scheduler state is not an object")
    if not isinstance(sched.get("last_epoch"), int) or isinstance(sched["last_epoch"], bool) or sched["last_epoch"] < 0:
        raise ValueError("scheduler last_epoch is not a step count")
    for k in ("base_lrs", "_last_lr"):
        v = sched.get(k, [])
        if not isinstance(v, list) or not all(map(_number, v)):
            raise ValueError(f"scheduler {k} is not a list of numbers")
    lambdas = sched.get("lr_lambdas", [])
    if not isinstance(lambdas, list) or not all(x is None or (isinstance(x, dict) and all(
            _number(x.get(k, 0)) for k in ("warmup", "total", "min_ratio"))) for x in lambdas):
        raise ValueError("scheduler lr_lambdas are not the warm-up/cosine settings")


def check_compatible(meta: CheckpointMeta, family: str, vocab: Vocabulary, model_config: ModelConfig) -> None:
    """Resuming needs the same model family, vocabulary and sizes; say which differs."""
    if meta.family != family:
        raise MusesynthError(f"checkpoint is a {meta.family} model, but -m {family} was asked")
    if meta.vocab.fingerprint != vocab.fingerprint:
        raise MusesynthError(
            f"checkpoint vocabulary ({meta.vocab.encoding}, {len(meta.vocab)} tokens, {meta.vocab.fingerprint}) "
            f"differs from the dataset's ({vocab.encoding}, {len(vocab)} tokens, {vocab.fingerprint})"
        )
    old, new = meta.model_config.to_dict(), model_config.to_dict()
    ignore = {"dropout"} | ({"num_heads"} if family != "transformer" else set())  # no effect on the weights
    diff = [k for k in old if k not in ignore and old[k] != new.get(k)]
    if diff:
        k = diff[0]
        raise MusesynthError(f"--resume: the checkpoint has {k}={old[k]}, this run asks {k}={new.get(k)}; "
                             f"use the run's original settings or a new --run-name")
