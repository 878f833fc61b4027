from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
import torch

from musesynth.cli import main
from musesynth.errors import MusesynthError
from musesynth.training.checkpoint import load_model, load_raw
from musesynth.training.config import TrainConfig
from musesynth.training.loop import train

TINY = dict(seq_len=32, embed_dim=32, hidden_dim=64, num_layers=2, num_heads=4, batch_size=16, lr=3e-3,
            warmup_steps=5, dropout=0.1, tensorboard=False, quiet=True, patience=0)


def tiny_cfg(dataset, tmp_path, model="gru", **kw) -> TrainConfig:
    return TrainConfig(dataset=str(dataset), model=model, out_dir=str(tmp_path), **{**TINY, "epochs": 2, **kw})


def train_losses(run_dir) -> list[float]:
    with open(run_dir / "metrics.csv") as fh:
        return [float(r["loss"]) for r in csv.DictReader(fh) if r["kind"] == "train"]


@pytest.mark.parametrize("family", ["gru", "lstm", "transformer"])
def test_loss_goes_down_for_each_family(family, bach_dataset, tmp_path):
    s = train(tiny_cfg(bach_dataset, tmp_path, family, epochs=3, log_every=5))
    losses = train_losses(tmp_path / family)
    assert losses[-1] < losses[0] - 0.5, losses
    vals = [v for _, _, v in s.val_history]
    assert vals[-1] < vals[0] and s.best_val_loss == min(vals)
    assert (tmp_path / family / "best.pt").is_file() and (tmp_path / family / "last.pt").is_file()
    assert (tmp_path / family / "config.json").is_file()


@pytest.mark.parametrize("family", ["gru", "transformer"])
def test_interrupted_and_resumed_run_matches_uninterrupted(family, bach_dataset, tmp_path):
    torch.use_deterministic_algorithms(True)
    try:
        full = train(tiny_cfg(bach_dataset, tmp_path, family, run_name="full", augment_transpose=2))
        steps_per_epoch = full.steps // 2
        halt = steps_per_epoch + 3  # in the middle of the second epoch
        part = tiny_cfg(bach_dataset, tmp_path, family, run_name="part", augment_transpose=2,
                        halt_after_steps=halt)
        s1 = train(part)
        assert s1.stop_reason == "halted" and s1.steps == halt
        part.halt_after_steps, part.resume = 0, True
        s2 = train(part)
    finally:
        torch.use_deterministic_algorithms(False)
    assert s2.steps == full.steps
    a, b = load_raw(tmp_path / "full" / "last.pt"), load_raw(tmp_path / "part" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["meta"].progress.best_val == b["meta"].progress.best_val


def test_checkpoint_is_self_describing_and_safe(bach_dataset, tmp_path):
    train(tiny_cfg(bach_dataset, tmp_path, "lstm", epochs=1))
    model, enc, meta = load_model(tmp_path / "lstm")
    assert meta.family == "lstm" and len(enc.vocab) == 312
    assert meta.path.endswith("best.pt")
    # weights_only loading: an arbitrary pickle is refused, not executed
    evil = tmp_path / "evil.pt"
    torch.save({"format": "musesynth-checkpoint-v1", "x": _Evil()}, evil)
    with pytest.raises(MusesynthError, match="cannot read checkpoint"):
        load_raw(evil)
    (tmp_path / "junk.pt").write_text("junk")
    with pytest.raises(MusesynthError, match="cannot read checkpoint"):
        load_raw(tmp_path / "junk.pt")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_resume_with_other_family_is_a_clear_error(bach_dataset, tmp_path, capsys):
    train(tiny_cfg(bach_dataset, tmp_path, "gru", epochs=1, run_name="r"))
    rc = main(["train", "-d", str(bach_dataset), "-m", "lstm", "-o", str(tmp_path), "--run-name", "r", "--resume"])
    assert rc == 2 and "checkpoint is a gru model, but -m lstm was asked" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-m", "rnn"], "invalid choice: 'rnn'"),
        (["-m", "gru", "--seq-len", "100000"], "--seq-len 100000 is larger than the training data"),
        (["-m", "gru", "--resume", "--run-name", "none"], "no checkpoint to resume from"),
        (["-m", "gru", "--device", "cuda:3"], None),
    ],
)
def test_bad_training_arguments(argv, message, bach_dataset, tmp_path, capsys):
    if message is None:  # CUDA asked: no CUDA here, or fewer than 4 devices (decided before anything trains)
        if torch.cuda.device_count() > 3:
            pytest.skip("this machine has a cuda:3, so asking for it is no error")
        message = "CUDA device(s)" if torch.cuda.is_available() else "CUDA is not available"
    rc = main(["train", "-d", str(bach_dataset), "-o", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1


def test_missing_dataset_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "-d", str(tmp_path / "nope"), "-m", "gru"]) == 2
    assert "dataset not found" in capsys.readouterr().err


def test_config_file_and_cli_override(bach_dataset, tmp_path):
    from musesynth.commands.train import add_train_options, config_from_args

    (tmp_path / "c.toml").write_text('[train]\nmodel = "lstm"\nseq-len = 64\nlr = 0.001\n')
    import argparse

    p = argparse.ArgumentParser()
    add_train_options(p)
    cfg = config_from_args(p.parse_args(["--config", str(tmp_path / "c.toml"), "--lr", "0.002"]))
    assert (cfg.model, cfg.seq_len, cfg.lr, cfg.batch_size, cfg.epochs) == ("lstm", 64, 0.002, 256, 40)
    (tmp_path / "bad.toml").write_text("colour = 3\n")
    with pytest.raises(MusesynthError, match="unknown training option"):
        config_from_args(p.parse_args(["--config", str(tmp_path / "bad.toml")]))


def test_train_accepts_a_raw_midi_folder(tiny_midi_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MUSESYNTH_CACHE", str(tmp_path / "cache"))
    s = train(tiny_cfg(tiny_midi_dir, tmp_path, "gru", epochs=1, seq_len=16))
    assert "cache" in s.dataset_dir and s.steps > 0


def _free_port() -> int:
    """A port nobody listens on now, so two test runs on one machine do not meet at one rendezvous."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_gloo_on_cpu(bach_dataset, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           "-m", "musesynth.train", "-d", str(bach_dataset), "-m", "gru", "--device", "cpu", "-o", str(tmp_path),
           "--epochs", "2", "--seq-len", "32", "--embed-dim", "32", "--hidden-dim", "64", "--batch-size", "16",
           "--lr", "0.003", "--no-tensorboard", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # halted mid-epoch (every rank must stop the same way, or one waits forever), then resumed
    r = subprocess.run([*cmd, "--halt-after-steps", "3"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert load_raw(tmp_path / "gru" / "last.pt")["meta"].progress.step == 3
    r = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    state = load_raw(tmp_path / "gru" / "last.pt")
    assert state["meta"].world_size == 2
    vals = [v for _, _, v in state["meta"].progress.val_history]
    assert len(vals) == 2 and vals[1] < vals[0]


def test_device_batches_are_the_dataloaders_batches():
    """The loop's on-device batches: the same windows in the same order as DataLoader + sampler, from any
    batch on (resume), every epoch."""
    import numpy as np
    from torch.utils.data import DataLoader, DistributedSampler

    from musesynth.data.loader import DeviceBatches, WindowDataset

    tokens = np.random.default_rng(0).integers(0, 300, 5000).astype(np.uint16)
    ds = WindowDataset(tokens, 32, train=True, seed=3)
    sampler = DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=3)
    loader = DataLoader(ds, batch_size=16, sampler=sampler)
    fast = DeviceBatches(ds, sampler, 16, torch.device("cpu"))
    for epoch in range(2):
        ds.set_epoch(epoch)
        sampler.set_epoch(epoch)
        ref = list(loader)
        for skip in (0, 3):
            got = list(fast.epoch(skip))
            assert len(got) == len(ref) - skip
            for (x, y), (rx, ry) in zip(got, ref[skip:]):
                assert torch.equal(x, rx) and torch.equal(y, ry)


def test_preset_large_sits_under_the_config_file_and_the_command_line():
    from musesynth.models import build_model, count_params
    from musesynth.training.config import resolve
    from musesynth.training.setup import model_config

    cfg = resolve({"lr": 1e-3}, {"preset": "large", "batch_size": 8})
    assert (cfg.model, cfg.seq_len, cfg.precision, cfg.compile, cfg.lr, cfg.batch_size) == (
        "transformer", 1024, "bf16", True, 1e-3, 8)
    with torch.device("meta"):
        n = count_params(build_model(model_config(cfg, 312)))
    assert 45e6 < n < 65e6
    with pytest.raises(MusesynthError, match="unknown preset"):
        resolve({}, {"preset": "huge"})


def test_transformer_training_forward_has_no_graph_breaks():
    """What --compile (and the large preset's MFU) relies on: one graph for the Transformer's forward."""
    from musesynth.models import ModelConfig, build_model

    model = build_model(ModelConfig("transformer", 312, embed_dim=32, hidden_dim=64, num_layers=2, seq_len=16))
    explanation = torch._dynamo.explain(model)(torch.randint(0, 312, (2, 16)))
    assert explanation.graph_break_count == 0, explanation.break_reasons


@pytest.mark.parametrize("family", ["gru", "lstm", "transformer"])
def test_compiled_run_resumes_exactly(family, bach_dataset, tmp_path, monkeypatch):
    """--compile with --resume gives the uninterrupted compiled run's weights, for every family. Dynamo traces
    the model; its backend is "eager" here to keep CI fast on CPU (inductor itself is not exercised here)."""
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda m, **kw: real(m, backend="eager"))
    torch._dynamo.reset()
    kw = dict(compile=True, max_steps=6, epochs=100, seq_len=16, dropout=0.0)
    full = train(tiny_cfg(bach_dataset, tmp_path, family, run_name="full", **kw))
    part = tiny_cfg(bach_dataset, tmp_path, family, run_name="part", halt_after_steps=3, **kw)
    assert train(part).steps == 3
    part.halt_after_steps, part.resume = 0, True
    assert train(part).steps == full.steps == 6
    a, b = load_raw(tmp_path / "full" / "last.pt"), load_raw(tmp_path / "part" / "last.pt")
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("family", ["gru", "lstm"])
def test_layer_by_layer_rnn_is_the_stacked_rnn_bit_for_bit(family):
    """A deterministic CUDA run steps its RNN one layer at a time so that torch's generator (saved with the run)
    draws the dropout between layers, not cuDNN's own. On CPU PyTorch draws the same masks in the same order, so
    the two paths must agree there exactly: outputs, final state and gradients, from a fresh and a warm state."""
    from musesynth.models import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(family, 50, embed_dim=16, hidden_dim=24, num_layers=3, dropout=0.3,
                                    seq_len=32)).train()
    x = model.embed(torch.randint(0, 50, (4, 20))).detach()
    flat = lambda s: torch.cat(s) if isinstance(s, tuple) else s  # noqa: E731
    for warm in (False, True):
        state = None
        if warm:
            _, state = model.rnn(x[:, :5])
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        torch.manual_seed(1)
        a, sa = model.rnn(x, state)
        torch.manual_seed(1)
        b, sb = model._layerwise(x, state)
        assert torch.equal(a, b) and torch.equal(flat(sa), flat(sb))
        ga = torch.autograd.grad(a.square().sum(), list(model.rnn.parameters()))
        gb = torch.autograd.grad(b.square().sum(), list(model.rnn.parameters()))
        assert all(torch.equal(p, q) for p, q in zip(ga, gb))
    assert not torch.equal(a, model.rnn(x, state)[0])  # the dropout is on: other masks, other output
    tokens = torch.randint(0, 50, (4, 20))
    torch.manual_seed(2)
    stacked = model(tokens)[0]
    model._torch_dropout = lambda x: True  # what a deterministic CUDA run takes, through forward()
    torch.manual_seed(2)
    assert torch.equal(model(tokens)[0], stacked)
    del model._torch_dropout
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        assert not model._torch_dropout(x)  # CPU runs keep PyTorch's own kernel
    finally:
        torch.use_deterministic_algorithms(False)
