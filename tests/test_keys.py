"""Key control (meter encoding): --key writes in the asked key, unprimed pieces follow the corpus' keys."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from musesynth.cli import main
from musesynth.data.build import build_dataset
from musesynth.training.checkpoint import load_model
from musesynth.training.config import TrainConfig
from musesynth.training.loop import train


@pytest.fixture(scope="module")
def meter_run(bach_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("keys")
    build_dataset(bach_dir, root / "ds", encoding="meter", workers=1, quiet=True)
    train(TrainConfig(dataset=str(root / "ds"), model="transformer", out_dir=str(root), seq_len=64, embed_dim=32,
                      hidden_dim=64, num_layers=1, num_heads=2, batch_size=16, lr=3e-3, epochs=1, warmup_steps=2,
                      augment_transpose=3, tensorboard=False, quiet=True, patience=0))
    return root / "transformer"


def test_the_key_prior_is_the_corpus_key_distribution(meter_run):
    _, enc, meta = load_model(meter_run)
    prior = np.array(meta.key_prior)
    assert prior.shape == (24,) and prior.sum() == pytest.approx(1.0)
    assert (prior > 0).sum() <= 16  # 16 chorales: at most 16 keys, whatever augmentation taught the model


def test_generate_in_the_asked_key(meter_run, bach_dir, tmp_path):
    primer = sorted(bach_dir.rglob("*.mid"))[0]
    for extra in ([], ["--primer", str(primer), "--primer-tokens", "20"]):
        out = tmp_path / ("p" if extra else "u")
        assert main(["generate", "-c", str(meter_run), "--key", "f# minor", "-n", "30", "--num-samples", "3",
                     "--no-wav", "--no-png", "-q", "-o", str(out), *extra]) == 0
        keys = [json.loads(p.read_text())["key"] for p in out.glob("*.json")]
        assert keys == ["F# minor"] * 3


def test_unprimed_pieces_draw_their_keys_from_the_prior(meter_run, tmp_path):
    _, enc, meta = load_model(meter_run)
    assert main(["generate", "-c", str(meter_run), "-n", "10", "--num-samples", "12", "--no-wav", "--no-png", "-q",
                 "-o", str(tmp_path)]) == 0
    keys = {json.loads(p.read_text())["key"] for p in tmp_path.glob("*.json")}
    from musesynth.tokenize.meter import key_name

    allowed = {key_name(k % 12, "minor" if k >= 12 else "major") for k, w in enumerate(meta.key_prior) if w > 0}
    assert keys <= allowed and len(keys) >= 2


@pytest.mark.parametrize("key, message", [("H major", "key"), ("D dorian", "key")])
def test_bad_key_is_a_one_line_error(key, message, meter_run, tmp_path, capsys):
    assert main(["generate", "-c", str(meter_run), "--key", key, "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_key_on_a_model_without_key_tokens_is_a_clear_error(bach_dataset, tmp_path, capsys):
    train(TrainConfig(dataset=str(bach_dataset), model="gru", out_dir=str(tmp_path), seq_len=16, embed_dim=16,
                      hidden_dim=16, num_layers=1, batch_size=8, max_steps=2, tensorboard=False, quiet=True))
    assert main(["generate", "-c", str(tmp_path / "gru"), "--key", "D major", "-o", str(tmp_path / "o")]) == 2
    assert "--key needs a model whose encoding has key tokens" in capsys.readouterr().err
