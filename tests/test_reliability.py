"""Never lose a user's file, never show a traceback: every command with bad arguments, the run-folder
rules, killed and corrupted checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from musesynth.cli import main
from musesynth.errors import MusesynthError
from musesynth.training.checkpoint import load_raw
from musesynth.training.config import TrainConfig
from musesynth.training.loop import train
from musesynth.training.rundir import RunDir

TINY = dict(seq_len=16, embed_dim=16, hidden_dim=32, num_layers=1, num_heads=2, batch_size=8, lr=3e-3,
            warmup_steps=2, tensorboard=False, quiet=True, patience=0)


@pytest.fixture(scope="module")
def ckpt(bach_dataset, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rel")
    train(TrainConfig(dataset=str(bach_dataset), model="gru", out_dir=str(root), epochs=1, **TINY))
    return root / "gru"


def listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """An empty current folder holding a plain file, a text file and a zero-byte file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("a user's file\n")
    (tmp_path / "text.sf2").write_text("not a soundfont\n")
    (tmp_path / "zero.pt").write_bytes(b"")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    (tmp_path / "pwa").mkdir()
    (tmp_path / "pwa" / "manifest.json").write_text('{"name": "my web app"}')
    (tmp_path / "bad.toml").write_text('lr = "abc"\n')
    return tmp_path


BAD = [
    (["generate", "-c", "{ck}", "-k", "-3"], "--top-k"),
    (["generate", "-c", "{ck}", "-k", "100000"], "--top-k"),
    (["generate", "-c", "{ck}", "-t", "-1"], "--temperature"),
    (["generate", "-c", "{ck}", "-t", "nan"], "--temperature"),
    (["generate", "-c", "{ck}", "-p", "0"], "--top-p"),
    (["generate", "-c", "{ck}", "-n", "0"], "--length"),
    (["generate", "-c", "{ck}", "--num-samples", "0"], "--num-samples"),
    (["generate", "-c", "{ck}", "-o", "FILE/sub"], "is a file"),
    (["generate", "-c", "{ck}", "-o", "FILE"], "is a file"),
    (["generate", "-c", "{ck}", "-o", "/proc/x"], "its parent /proc is read-only"),
    (["generate", "-c", "{ck}", "--soundfont", "/nope.sf2"], "soundfont not found"),
    (["generate", "-c", "{ck}", "--soundfont", "text.sf2"], "not a SoundFont"),
    (["generate", "-c", "{ck}", "--device", "tpu"], "device"),
    (["generate", "-c", "{ck}", "--device", "cuda:7"], "CUDA"),
    (["generate", "-c", "FILE"], "not a PyTorch checkpoint file"),
    (["generate", "-c", "{ck}", "--primer-seconds", "4"], "--primer-seconds cuts a primer: give one with --primer"),
    (["generate", "-c", "zero.pt"], "cannot read checkpoint"),
    (["train", "-d", "{ds}", "--lr", "-1"], "--lr"),
    (["train", "-d", "{ds}", "--lr", "0"], "--lr"),
    (["train", "-d", "{ds}", "--dropout", "2"], "--dropout"),
    (["train", "-d", "{ds}", "--batch-size", "0"], "--batch-size"),
    (["train", "-d", "{ds}", "--max-time", "-5"], "--max-time"),
    (["train", "-d", "{ds}", "--run-name", "../x"], "--run-name"),
    (["train", "-d", "{ds}", "-o", "FILE/runs"], "is a file"),
    (["train", "-d", "{ds}", "-m", "mamba"], "invalid choice"),
    (["train", "-d", "{ds}", "--seq-len", "100000"], "larger than the training data"),
    (["train", "-d", "{ds}", "-o", ".", "--run-name", "notes", "--max-steps", "1"], "not a musesynth run folder"),
    (["train", "-d", "{ds}", "--config", "bad.toml"], "must be float"),
    (["evaluate", "-c", "{ck}", "--json", "FILE"], "not a result musesynth wrote"),
    (["ablate", "-d", "{ds}", "--budget-tokens", "10", "--report", "notes"], "not an earlier report"),
    (["data", "-d", "{midi}", "-o", "pwa"], "not a musesynth dataset"),
    (["export", "-c", "{ck}", "-o", "notes"], "not an exported model"),
    (["evaluate", "-c", "{ck}", "--batch-size", "0"], "--batch-size"),
    (["evaluate", "-c", "{ck}", "-t", "-1"], "--temperature"),
    (["evaluate", "-c", "{ck}", "--samples", "-1"], "--samples"),
    (["evaluate", "-c", "{ck}", "--length", "0"], "--length"),
    (["evaluate", "-c", "{ck}", "--json", "FILE/x.json"], "is a file"),
    (["data", "-d", "{midi}", "-o", "FILE/ds"], "is a file"),
    (["data", "-d", "{midi}", "-o", "FILE"], "is a file"),
    (["data", "-d", "{midi}", "--encoding", "nope"], "invalid choice"),
    (["data", "-d", "{midi}", "-o", "ds", "--resolution", "0"], "--resolution"),
    (["data", "-d", "{midi}", "-o", "ds", "--max-parts", "4"], "--max-parts applies to --encoding parts only"),
    (["data", "-d", "{midi}", "-o", "ds", "--encoding", "parts", "--max-parts", "0"], "--max-parts must be 1-64"),
    (["data", "-d", "{midi}", "-o", "ds", "--extra-parts", "drop"], "--extra-parts applies to --encoding parts"),
    (["data", "-d", "{midi}", "-o", "ds", "--encoding", "chord", "--infill"], "--infill needs --encoding meter or"),
    (["infill", "--input", "{midi}/x.mid", "--bars", "1", "--parts", "A", "-c", "{ck}"], "not trained for infill"),
    (["corpus", "-o", "FILE/midi", "--limit", "1"], "is a file"),
    (["corpus", "--limit", "0"], "--limit"),
    (["corpus", "--name", "nope"], "invalid choice"),
    (["demo", "--minutes", "0"], "--minutes"),
    (["demo", "--minutes", "-1"], "--minutes"),
    (["ablate", "-d", "{ds}", "--budget-tokens", "0"], "budget"),
    (["ablate", "-d", "{ds}", "--budget-tokens", "10", "--models", "gru", "lstm", "gru"], "names gru twice"),
    (["train", "-d", "{ds}", "--fim-rate", "0.9"], "--fim-rate 0.9 trains infilling"),
    (["train", "-d", "{midi}", "--fim-rate", "0.9"], "is a MIDI folder"),
    (["ablate", "-d", "{ds}", "--budget-tokens", "10", "--report", "FILE"], "is a file"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a[:1] + a[3:]) for a, _ in BAD])
def test_bad_arguments_one_line_rc2_nothing_written(argv, message, ckpt, bach_dataset, bach_dir, work, capsys):
    if "cuda:7" in argv and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    before = listing(work)
    argv = [a.format(ck=ckpt, ds=bach_dataset, midi=bach_dir) for a in argv]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err and "Traceback" not in err and err.count("\n") == 1, err
    assert listing(work) == before
    assert (work / "FILE").read_text() == "a user's file\n"
    assert (work / "notes" / "mine.txt").read_text() == "keep me"


def test_data_never_writes_over_its_input(tiny_midi_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "songs"
    src.mkdir()
    for f in sorted(tiny_midi_dir.rglob("*.mid"))[:4]:
        (src / f.name).write_bytes(f.read_bytes())
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    assert main(["data", "-d", str(src), "-o", str(src)]) == 2
    assert main(["data", "-d", str(src), "-o", str(src / "ds")]) == 2
    assert main(["demo", "--midi-dir", str(src), "--dataset", str(src)]) == 2
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    assert "overlaps the input folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["songs"]  # the refused demo wrote no piece either


def test_data_refuses_a_folder_it_did_not_make_and_replaces_its_own(tiny_midi_dir, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.txt").write_text("years of work")
    assert main(["data", "-d", str(tiny_midi_dir), "-o", str(other)]) == 2
    assert "not a musesynth dataset" in capsys.readouterr().err
    assert (other / "thesis.txt").read_text() == "years of work"
    ds = tmp_path / "ds"
    assert main(["data", "-d", str(tiny_midi_dir), "-o", str(ds), "--workers", "1"]) == 0
    assert main(["data", "-d", str(tiny_midi_dir), "-o", str(ds), "--workers", "1"]) == 0  # its own: replaced
    mode = (ds / "manifest.json").stat().st_mode & 0o777
    assert mode == 0o666 & ~_umask() and (ds.stat().st_mode & 0o777) == 0o777 & ~_umask()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ds.") and not p.name.endswith(".lock")]


@pytest.mark.parametrize("argv", [["data", "-d", "{midi}", "-o", "{ro}"], ["export", "-c", "{ck}", "-o", "{ro}"],
                                  ["generate", "-c", "{ck}", "-n", "8", "-o", "{ro}"],
                                  ["corpus", "--limit", "1", "-o", "{ro}/midi"]],
                         ids=["data", "export", "generate", "corpus-under"])
def test_a_read_only_folder_is_refused_and_left_as_it_was(argv, ckpt, bach_dir, tmp_path, capsys):
    """``chmod a-w`` marks a folder as not ours to fill or replace, even for root (whom the system lets write)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc = main([a.format(ck=ckpt, midi=bach_dir, ro=ro) for a in argv])
        err = capsys.readouterr().err
        assert rc == 2 and "is read-only" in err and err.count("\n") == 1, err
        assert ro.is_dir() and (ro.stat().st_mode & 0o777) == 0o555 and not any(ro.iterdir())
    finally:
        ro.chmod(0o755)


def test_a_dataset_holding_a_users_file_is_not_replaced(tiny_midi_dir, tmp_path, capsys):
    ds = tmp_path / "ds"
    assert main(["data", "-d", str(tiny_midi_dir), "-o", str(ds), "--workers", "1"]) == 0
    (ds / "my_notes.txt").write_text("keep")
    assert main(["data", "-d", str(tiny_midi_dir), "-o", str(ds), "--workers", "1"]) == 2
    assert "also holds files musesynth did not write (my_notes.txt)" in capsys.readouterr().err
    assert (ds / "my_notes.txt").read_text() == "keep"


def test_resume_from_a_damaged_optimizer_state_is_one_line(bach_dataset, tmp_path, capsys):
    cfg = TrainConfig(dataset=str(bach_dataset), model="gru", out_dir=str(tmp_path), max_steps=2, **TINY)
    train(cfg)
    state = torch.load(tmp_path / "gru" / "last.pt", weights_only=True)
    state["optimizer"] = {"state": {}, "param_groups": []}
    torch.save(state, tmp_path / "gru" / "last.pt")
    rc = main(["train", "-d", str(bach_dataset), "-m", "gru", "-o", str(tmp_path), "--resume", "--seq-len", "16",
               "--embed-dim", "16", "--hidden-dim", "32", "--num-layers", "1", "--max-steps", "4"])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot resume from" in err and err.count("\n") == 1


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_a_finished_run_is_never_replaced_without_overwrite(bach_dataset, tmp_path, capsys):
    cfg = TrainConfig(dataset=str(bach_dataset), model="gru", out_dir=str(tmp_path), max_steps=3, **TINY)
    train(cfg)
    best = (tmp_path / "gru" / "best.pt").read_bytes()
    argv = ["train", "-d", str(bach_dataset), "-m", "gru", "-o", str(tmp_path), "--max-steps", "3", "--seq-len", "16",
            "--embed-dim", "16", "--hidden-dim", "32", "--num-layers", "1", "--no-tensorboard", "-q"]
    assert main(argv) == 2
    assert "already holds a trained run" in capsys.readouterr().err
    assert (tmp_path / "gru" / "best.pt").read_bytes() == best
    assert main([*argv, "--overwrite"]) == 0


def test_generating_twice_keeps_the_earlier_pieces(ckpt, tmp_path):
    argv = ["generate", "-c", str(ckpt), "-n", "20", "--no-wav", "--no-png", "-q", "-s", "0", "-o", str(tmp_path)]
    assert main(argv) == 0
    first = (tmp_path / "unconditioned_gru_seed0_0.mid").read_bytes()
    assert main(argv) == 0
    assert (tmp_path / "unconditioned_gru_seed0_0.mid").read_bytes() == first
    assert (tmp_path / "unconditioned_gru_seed0_0-2.mid").is_file()
    assert (tmp_path / "unconditioned_gru_seed0_0-2.json").is_file()
    assert main([*argv, "--overwrite"]) == 0 and not (tmp_path / "unconditioned_gru_seed0_0-3.mid").exists()


def test_two_trainings_of_one_run_at_once_the_second_is_refused(bach_dataset, tmp_path, capsys):
    cfg = TrainConfig(dataset=str(bach_dataset), model="gru", out_dir=str(tmp_path), max_steps=2, **TINY)
    with RunDir(cfg.run_dir, resume=False, overwrite=False):
        assert main(["train", "-d", str(bach_dataset), "-m", "gru", "-o", str(tmp_path), "--max-steps", "2"]) == 2
    assert "another training is using" in capsys.readouterr().err


def test_resume_of_a_finished_budget_takes_no_step(bach_dataset, tmp_path):
    cfg = TrainConfig(dataset=str(bach_dataset), model="gru", out_dir=str(tmp_path), max_steps=5, epochs=100, **TINY)
    assert train(cfg).steps == 5
    cfg.resume = True
    assert train(cfg).steps == 5


def test_interrupted_run_summary_is_strict_json(bach_dataset, tmp_path):
    cfg = TrainConfig(dataset=str(bach_dataset), model="gru", out_dir=str(tmp_path), halt_after_steps=2, **TINY)
    s = train(cfg)
    assert s.stop_reason == "halted" and s.best_val_loss is None
    summary = json.loads((tmp_path / "gru" / "summary.json").read_text(), parse_constant=_no_constants)
    assert summary["best_val_loss"] is None


def _no_constants(name: str):
    raise AssertionError(f"non-JSON constant {name}")


def test_a_diverging_run_stops_with_a_clear_error_and_keeps_the_good_checkpoint(bach_dataset, tmp_path):
    cfg = TrainConfig(dataset=str(bach_dataset), model="gru", out_dir=str(tmp_path), max_steps=50, save_every=1,
                      **{**TINY, "lr": 1e3, "warmup_steps": 0})  # step 1 is saved, then it diverges
    with pytest.raises(MusesynthError, match="training diverged at step [0-9]+: the (loss|weights) .* last good"):
        train(cfg)
    from musesynth.training.checkpoint import load_model

    _, _, meta = load_model(tmp_path / "gru" / "last.pt")  # finite weights, or load_model would refuse
    assert 1 <= meta.progress.step < 50


def test_the_memory_guard_refuses_a_step_that_cannot_fit(bach_dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("musesynth.training.setup.available_memory", lambda: 10 * 2**20)
    assert main(["train", "-d", str(bach_dataset), "-m", "gru", "-o", str(tmp_path), "--seq-len", "512"]) == 2
    assert "would need about" in capsys.readouterr().err


# ---------------------------------------------------------------------- damaged checkpoints
def _damaged(kind: str, ckpt: Path, tmp_path: Path) -> Path:
    path = tmp_path / f"{kind}.pt"
    if kind == "zero":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes((ckpt / "best.pt").read_bytes()[:5000])
    else:
        state = torch.load(ckpt / "best.pt", weights_only=True)
        if kind == "metadata":
            state["meta"] = json.dumps({"model_config": {"family": "gru"}, "vocab": 3})
        elif kind == "shape":
            state["model"]["embed.weight"] = torch.zeros(3, 3)
        elif kind == "nan":
            state["model"]["embed.weight"][0, 0] = float("nan")
        torch.save(state, path)
    return path


@pytest.mark.parametrize("kind, message", [("zero", "cannot read checkpoint {path}: the file is empty"),
                                           ("truncated", "the file is damaged or cut short"),
                                           ("metadata", "damaged checkpoint"),
                                           # edited weights no longer match the SHA-256 saved with them (the value
                                           # checks behind it: tests/test_damaged_checkpoints.py)
                                           ("shape", "do not match their SHA-256"),
                                           ("nan", "do not match their SHA-256")])
def test_a_damaged_checkpoint_is_one_line_naming_the_file(kind, message, ckpt, tmp_path, capsys):
    path = _damaged(kind, ckpt, tmp_path)
    assert main(["generate", "-c", str(path), "-n", "5", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message.format(path=path) in err and str(path) in err and err.count("\n") == 1, err


def test_resume_with_other_sizes_is_a_clear_error(bach_dataset, tmp_path, capsys):
    train(TrainConfig(dataset=str(bach_dataset), model="gru", out_dir=str(tmp_path), max_steps=2, **TINY))
    rc = main(["train", "-d", str(bach_dataset), "-m", "gru", "-o", str(tmp_path), "--resume", "--seq-len", "16",
               "--embed-dim", "16", "--hidden-dim", "64", "--num-layers", "1"])
    assert rc == 2 and "hidden_dim=32, this run asks hidden_dim=64" in capsys.readouterr().err


# ---------------------------------------------------------------------- kill -9
def test_kill_9_inside_the_first_epoch_loses_at_most_one_save_interval(bach_dataset, tmp_path):
    run = tmp_path / "gru"
    cmd = [sys.executable, "-m", "musesynth.train", "-d", str(bach_dataset), "-m", "gru", "-o", str(tmp_path),
           "--seq-len", "16", "--embed-dim", "16", "--hidden-dim", "32", "--num-layers", "1", "--batch-size", "4",
           "--max-steps", "60", "--save-every", "5", "--no-tensorboard", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (run / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = load_raw(run / "last.pt")  # loadable whenever the kill came
    saved = state["meta"].progress.step
    steps_per_epoch = len(_windows(bach_dataset)) // 4
    assert 5 <= saved < steps_per_epoch and saved % 5 == 0  # inside the first epoch
    r = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert load_raw(run / "last.pt")["meta"].progress.step == 60
    assert not list(run.glob(".*.tmp"))


def _windows(dataset: Path):
    from musesynth.data.dataset import load_split

    return range(len(load_split(dataset, "train")) // 16)


def test_demo_end_to_end_in_seconds(tiny_midi_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--midi-dir", str(tiny_midi_dir), "--minutes", "0.03", "--length", "20"]) == 0
    out = capsys.readouterr().out
    assert "[4/4] generating" in out and '"best_val_loss"' in out
    assert list((tmp_path / "generated").glob("*_lstm_seed0_0.mid"))
    first = tmp_path / "training_checkpoints" / "demo-lstm" / "best.pt"
    assert first.is_file()
    before = first.read_bytes()
    assert main(["demo", "--midi-dir", str(tiny_midi_dir), "--minutes", "0.03", "--length", "20"]) == 0  # again
    assert "demo-lstm holds an earlier run: kept" in capsys.readouterr().out
    assert first.read_bytes() == before  # the earlier run is the user's: a second demo trains demo-lstm-2
    assert (tmp_path / "training_checkpoints" / "demo-lstm-2" / "best.pt").is_file()
