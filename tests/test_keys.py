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


def test_key_bias_takes_odds_from_out_of_key_notes_only():
    from musesynth.generate.key_guide import key_bias
    from musesynth.tokenize import get_encoding

    enc = get_encoding("meter")
    spec = enc.key_spec()
    rows = np.array([enc.set_key([enc.bos_id], 7, "major"), enc.set_key([enc.bos_id], 9, "minor")])
    bias = key_bias(spec, rows, 2.0)
    notes = spec.pitch_class >= 0
    assert bias.shape == (2, len(enc.vocab)) and (bias[:, ~notes] == 0).all()
    g_major, a_minor = {7, 9, 11, 0, 2, 4, 6}, {9, 11, 0, 2, 4, 5, 7, 6, 8}  # A minor with F# and G#
    for row, scale in ((0, g_major), (1, a_minor)):
        inside = np.isin(spec.pitch_class, sorted(scale)) & notes
        assert (bias[row, inside] == 0).all() and (bias[row, notes & ~inside] == -2.0).all()
    assert key_bias(spec, rows, 0.0) is None and key_bias(None, rows, 2.0) is None
    assert key_bias(spec, np.array([[enc.bos_id]]), 2.0) is None  # no key in the header: nothing to guide


def test_key_strength_keeps_the_notes_in_the_asked_key(meter_run, tmp_path):
    """At a strength no logit can overcome, every note token drawn lies in the key of its sample's header
    (two samples, two keys, one batch); the CLI option reaches the sampler and a bad value is a one-line error."""
    from musesynth.generate.sampling import Sampling, generate

    model, enc, _ = load_model(meter_run)
    rows = np.array([enc.set_key([enc.bos_id], 3, "major"), enc.set_key([enc.bos_id], 4, "minor")])
    seqs = generate(model, rows, 300, 2, Sampling(key_strength=20), enc.grammar(), enc.eos_id, seed=0, seq_len=64,
                    keys=enc.key_spec())
    scales = ({3, 5, 7, 8, 10, 0, 2}, {4, 6, 7, 9, 11, 0, 1, 2, 3})  # Eb major; E minor with C# and D#
    for seq, scale in zip(seqs, scales):
        pcs = {int(enc.pitch_of[t]) % 12 for t in seq if enc.is_note[t]}
        assert len(pcs) >= 3 and pcs <= scale
    # an infill prompt may have lost its header: the key is then read from the piece (key_source)
    headless = np.array([enc.bar_id])
    guided = generate(model, headless, 300, 2, Sampling(key_strength=20), enc.grammar(), enc.eos_id, seed=0,
                      seq_len=64, keys=enc.key_spec(), key_source=rows[:1])
    for seq in guided:
        assert {int(enc.pitch_of[t]) % 12 for t in seq if enc.is_note[t]} <= scales[0]
    free = generate(model, rows[:1], 300, 1, Sampling(), enc.grammar(), enc.eos_id, seed=0, seq_len=64)[0]
    assert {int(enc.pitch_of[t]) % 12 for t in free if enc.is_note[t]} - scales[0]  # unguided, it strays
    assert main(["generate", "-c", str(meter_run), "--key-strength", "-1", "-o", str(tmp_path / "bad")]) == 2


def test_a_close_is_a_full_chord_on_the_tonic():
    """TonicBass (the ending ramp's gate): the latest onset's bass (its first note: ascending order) is the
    header key's tonic and it has struck as many notes as the fullest chord so far (at most four)."""
    import torch

    from musesynth.generate.key_guide import TonicBass
    from musesynth.tokenize import get_encoding

    enc = get_encoding("meter")
    v = enc.vocab.id
    rows = np.array([enc.set_key([enc.bos_id], 7, "major"), [enc.bos_id, enc.bos_id]])  # G major; no key
    gate = TonicBass(enc.key_spec(), rows, torch.device("cpu"))

    def play(*tokens: str) -> list[bool]:
        for t in tokens:
            gate.advance(torch.tensor([v(t)] * 2))
        return gate.closed().tolist()

    assert gate.keyed.tolist() == [True, False]  # a row without a key is never closed: it gets the plain ramp
    assert play("BAR") == [False, False]  # no onset yet
    chord = ("NOTE_43", "DUR_24", "NOTE_59", "DUR_24", "NOTE_62", "DUR_24", "NOTE_67", "DUR_24")  # G B D G
    assert play("POS_0", *chord) == [True, False]
    assert play("POS_24", "NOTE_50", "DUR_24", "NOTE_54", "DUR_24", "NOTE_57", "DUR_24", "NOTE_62",
                "DUR_24") == [False, False]  # D F# A D: the dominant
    assert play("PHRASE", "BAR", "POS_0", *chord[:6]) == [False, False]  # three notes: a fourth may come
    assert play(*chord[6:]) == [True, False]
    assert play("POS_12", "NOTE_55", "DUR_12") == [False, False]  # G alone: not the full chord


@pytest.mark.slow  # minutes: 80 pieces from the shipped model
def test_the_ending_closes_pieces_on_the_tonic():
    """The default ending of a model with keys draws pieces to EOS only at a full tonic chord: the shipped
    model's pieces in G major end on G's bass where the plain ramp ends most of them elsewhere."""
    import dataclasses

    from musesynth.data.key_frame import KeyFrame
    from musesynth.evaluate.music_stats import piece_from_score
    from musesynth.generate.sampling import Sampling, generate
    from musesynth.tokenize.key_finding import final_bass
    from musesynth.training.shipped import DEFAULT_MODEL

    model, enc, meta = load_model(DEFAULT_MODEL)
    rows = KeyFrame(enc, meta.key_frames).to_model(np.array([[enc.bos_id, enc.vocab.id("KEY_G_major")]] * 16))
    tonic = enc.key_of(rows[0])[0] % 12  # the model's frame key (notes are in the frame while sampling)
    counts = [0, 0]
    for seed in range(3):  # 48 pieces: seeds 0-2 and 3-5 both give 26-27 against 7
        for k, spec in enumerate((enc.key_spec(), dataclasses.replace(enc.key_spec(), onset=None))):  # gated, plain
            seqs = generate(model, rows, 300, 16, Sampling(), enc.grammar(), enc.eos_id, seed=seed, seq_len=512,
                            keys=spec, repeats=enc.repeat_spec())
            ended = [piece_from_score(enc.decode(s)) for s in seqs if s[-1] == enc.eos_id]
            counts[k] += sum(final_bass(p.onset, p.pitch) == tonic for p in ended)
    assert counts[0] >= 20 and counts[0] >= counts[1] + 12, counts
    # rows without a key get the plain ramp: the same tokens as without key tables at all
    a, b = (generate(model, [enc.bos_id], 200, 8, Sampling(), enc.grammar(), enc.eos_id, seed=0, seq_len=512,
                     keys=spec) for spec in (enc.key_spec(), None))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
