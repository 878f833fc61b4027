"""The shipped-model format: export, load without running code, generate with no -c."""

from __future__ import annotations

import importlib
import json

import pytest
import torch

from musesynth.artifacts.load import load_model
from musesynth.artifacts.shipped import CONFIG, WEIGHTS, is_shipped
from musesynth.cli import main
from musesynth.training.config import TrainConfig
from musesynth.training.loop import train


@pytest.fixture(scope="module")
def run_dir(bach_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("ship")
    train(TrainConfig(dataset=str(bach_dataset), model="transformer", out_dir=str(root), seq_len=32, embed_dim=32,
                      hidden_dim=64, num_layers=1, num_heads=2, batch_size=16, max_steps=4, tensorboard=False,
                      quiet=True))
    return root / "transformer"


def test_export_loads_to_the_same_model_in_fp16(run_dir, tmp_path):
    out = tmp_path / "model"
    assert main(["export", "-c", str(run_dir), "-o", str(out), "--summary", str(run_dir / "summary.json")]) == 0
    assert is_shipped(out) and (out / WEIGHTS).stat().st_size < 200_000
    config = json.loads((out / CONFIG).read_text())
    assert config["training"]["steps"] == 4 and config["ties"] == {"head.weight": "embed.weight"}
    a, enc, _ = load_model(run_dir)
    b, enc2, meta = load_model(out)
    assert enc2.vocab.tokens == enc.vocab.tokens and meta.model_config == a.cfg
    x = torch.randint(3, 300, (2, 20))
    with torch.no_grad():
        torch.testing.assert_close(a(x)[0], b(x)[0], atol=2e-2, rtol=1e-2)
    assert b.head.weight is b.embed.weight  # ties restored


def test_export_never_replaces_what_it_did_not_make(run_dir, tmp_path, capsys):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep")
    assert main(["export", "-c", str(run_dir), "-o", str(other)]) == 2
    out = tmp_path / "m"
    assert main(["export", "-c", str(run_dir), "-o", str(out)]) == 0
    assert main(["export", "-c", str(run_dir), "-o", str(out)]) == 2
    assert main(["export", "-c", str(run_dir), "-o", str(out), "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert "is not an exported model" in err and "--overwrite" in err and (other / "mine.txt").exists()


def test_generate_without_checkpoint_uses_the_shipped_model(run_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "model"
    assert main(["export", "-c", str(run_dir), "-o", str(out)]) == 0
    run_module = importlib.import_module("musesynth.generate.model")  # musesynth.generate is the API function
    monkeypatch.setattr(run_module, "DEFAULT_MODEL", out)
    assert main(["generate", "-n", "20", "--no-wav", "--no-png", "-q", "-o", str(tmp_path / "g")]) == 0
    side = json.loads(next((tmp_path / "g").glob("*.json")).read_text())
    assert side["checkpoint"] == str(out)
    monkeypatch.setattr(run_module, "DEFAULT_MODEL", tmp_path / "missing")
    assert main(["generate", "-n", "20", "-o", str(tmp_path / "h")]) == 2
    assert "shipped model is missing" in capsys.readouterr().err


def test_damaged_shipped_weights_are_a_one_line_error(run_dir, tmp_path, capsys):
    out = tmp_path / "model"
    assert main(["export", "-c", str(run_dir), "-o", str(out)]) == 0
    (out / WEIGHTS).write_bytes(b"garbage")
    assert main(["generate", "-c", str(out), "-o", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert "does not match its SHA-256" in err and err.count("\n") == 1


def test_the_shipped_model_is_signed_and_a_changed_copy_is_refused(tmp_path):
    """The package's own model carries the SHA-256 of its weights (scripts/sign_shipped.py), so a damaged
    install is one line instead of music from damaged weights."""
    import hashlib
    import shutil

    from musesynth.artifacts.shipped import DEFAULT_MODEL, DIGEST
    from musesynth.errors import MusesynthError

    config = json.loads((DEFAULT_MODEL / CONFIG).read_text())
    assert config[DIGEST] == hashlib.sha256((DEFAULT_MODEL / WEIGHTS).read_bytes()).hexdigest()
    copy = tmp_path / "bach"
    shutil.copytree(DEFAULT_MODEL, copy)
    blob = bytearray((copy / WEIGHTS).read_bytes())
    blob[len(blob) // 2] ^= 0x01  # one bit of one weight
    (copy / WEIGHTS).write_bytes(bytes(blob))
    with pytest.raises(MusesynthError, match="does not match its SHA-256"):
        load_model(copy)
