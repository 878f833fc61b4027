from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from musesynth.cli import main
from musesynth.evaluate.baselines import bigram, score_bigram, score_unigram, unigram
from musesynth.evaluate.music_stats import Piece, compare, features, kl, overlap_distance
from musesynth.training.config import TrainConfig
from musesynth.training.loop import train


def piece(onsets, pitches, durs=None) -> Piece:
    on = np.asarray(onsets, float)
    return Piece(on, np.asarray(durs if durs is not None else [1.0] * len(on), float), np.asarray(pitches))


def test_identical_sets_have_zero_distance():
    rng = np.random.default_rng(0)
    pieces = [piece(np.sort(rng.integers(0, 64, 50)) / 4, rng.integers(40, 80, 50)) for _ in range(5)]
    for v in compare(pieces, pieces).values():
        assert v["distance"] == pytest.approx(0.0, abs=1e-12) and v["kl"] == pytest.approx(0.0, abs=1e-9)


def test_disjoint_pitch_classes_have_distance_one():
    c_major = [piece(range(8), [60, 62, 64, 65, 67, 69, 71, 72])]
    black_keys = [piece(range(8), [61, 63, 66, 68, 70, 73, 75, 78])]
    r = compare(c_major, black_keys)
    assert r["pitch_class"]["distance"] == pytest.approx(1.0)
    assert r["pitch_class"]["kl"] > 3


def test_features_on_a_known_piece():
    # a C major triad on beat 0, then single notes every half beat, then a repeat of the whole pattern
    pattern_on = [0, 0, 0, 1, 1.5, 2, 2.5]
    pattern_p = [60, 64, 67, 62, 64, 65, 67]
    p = piece(pattern_on + [x + 3 for x in pattern_on], pattern_p * 2, [0.5] * 14)
    f = features(p)
    assert f["pitch_range"][0] == 7
    np.testing.assert_array_equal(f["polyphony"], [3, 1, 1, 1, 1, 3, 1, 1, 1, 1])
    np.testing.assert_allclose(f["ioi"], [1, 0.5, 0.5, 0.5, 0.5, 1, 0.5, 0.5, 0.5])
    assert f["note_density"][0] == pytest.approx(14 / 6.0)
    assert f["repetition"][0] == pytest.approx(2 / 7)  # 7 four-onset windows; the last two repeat the first two


def test_distance_and_kl_basics():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])
    assert overlap_distance(p, q) == pytest.approx(0.5)
    assert kl(p, p) == pytest.approx(0.0) and kl(p, q) > 0


def test_baselines_on_a_known_sequence():
    train = np.array([1, 2, 1, 2, 1, 2, 1, 2])
    test = np.array([1, 2, 1, 2])
    uni = unigram(train, 4, alpha=0.0)
    np.testing.assert_allclose(uni, [0, 0.5, 0.5, 0])
    assert score_unigram(uni, test).nll == pytest.approx(np.log(2))
    bi = bigram(train, 4, beta=1e-9)
    s = score_bigram(bi, test)
    assert s.nll == pytest.approx(0.0, abs=1e-6) and s.accuracy == 1.0


@pytest.fixture(scope="module")
def trained(bach_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("ev")
    train(TrainConfig(dataset=str(bach_dataset), model="gru", out_dir=str(root), seq_len=32, embed_dim=64,
                      hidden_dim=128, num_layers=1, batch_size=16, lr=5e-3, epochs=6, warmup_steps=5,
                      tensorboard=False, quiet=True, patience=0))
    return root / "gru"


def test_evaluate_command_reports_model_and_baselines(trained, bach_dataset, bach_dir, tmp_path, capsys):
    """One run: NLL against baselines, the classifier with its controls, and a reference set made of copies of
    the training pieces, which the report flags as memorised."""
    out = tmp_path / "r.json"
    copies = tmp_path / "copies"
    copies.mkdir()
    for f in sorted(bach_dir.rglob("*.mid")):
        shutil.copy(f, copies / f.name)
    assert main(["evaluate", "-c", str(trained), "--samples", "4", "--length", "64", "--json", str(out),
                 "--windows", "8", "--repeats", "1", "--reference-set", str(copies)]) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "evaluate: generating 4 pieces" in captured.err  # progress of the long steps
    assert "control: real vs real" in text and "control: 5% notes a semitone off" in text
    assert "reference set (16 pieces)" in text and "MEMORISED" in text
    assert "unigram" in text and "bigram" in text and "pitch_class" in text
    r = json.loads(out.read_text())
    m, b = r["model_metrics"], r["baselines"]
    assert m["tokens"] == b["unigram"]["tokens"]  # same targets for model and baselines
    assert m["perplexity"] == pytest.approx(np.exp(m["nll"]))
    assert m["nll"] < b["unigram"]["nll"] - 0.2  # a trained model beats the unigram baseline
    assert 0 <= r["music_stats_mean_distance"] <= 1
    mu = r["musicality"]
    assert 0 <= mu["classifier"]["accuracy"] <= 1 and 0 <= mu["repetition"]["share_with_repeat"] <= 1
    assert mu["memorisation"]["max_beats"] >= 0 and "key_distribution_distance" in mu["keys"]
    assert not mu["memorisation"]["memorised"] and mu["reference_set"]["memorisation"]["memorised"]
    judged = mu["classifier"]["by_window"]["8"]
    assert set(judged["controls"]) == {"real_vs_real", "semitone_5pct", "pitch_shuffled"}
    assert set(judged["sets"]) == {"generated", "reference_set"} and r["reference_set"]["pieces"] == 16


def test_evaluate_over_seeds_reports_each_seed_and_the_spread(trained, bach_dir, tmp_path, capsys):
    """`--seeds 0,3`: one report per seed, then the classifier's figures over them (each seed's, their mean and
    range, the model's lead over the reference set), all of it in the JSON too."""
    out = tmp_path / "seeds.json"
    assert main(["evaluate", "-c", str(trained), "--samples", "4", "--length", "64", "--windows", "8", "--repeats",
                 "1", "--reference-set", str(bach_dir), "--seeds", "0,3", "--json", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    assert text.index("== seed 0") < text.index("== seed 3") < text.index("over seeds 0, 3")
    assert "model minus reference" in text.split("over seeds 0, 3")[1]
    r = json.loads(out.read_text())
    summary, other = r["over_seeds"]["summary"], r["over_seeds"]["reports"]["3"]
    assert summary["seeds"] == [0, 3] and list(r["over_seeds"]["reports"]) == ["3"]
    row = summary["classifier"]["8"]
    accuracy = lambda rep, key: rep["musicality"]["classifier"]["by_window"]["8"]["sets"][key]["accuracy"]  # noqa: E731
    for key in ("generated", "reference_set"):
        per = [accuracy(r, key), accuracy(other, key)]
        assert row[key]["per_seed"] == per and row[key]["mean"] == pytest.approx(sum(per) / 2)
        assert row[key]["min"] == min(per) and row[key]["max"] == max(per)
    gaps = row["model_minus_reference"]["per_seed"]
    assert gaps == pytest.approx([accuracy(x, "generated") - accuracy(x, "reference_set") for x in (r, other)])
    assert r["model_metrics"] == other["model_metrics"]  # only the drawn pieces depend on the seed
    for flags, message in ((["--seeds", "0,0"], "expected different seeds"), (["--seeds", "1,x"], "separated by"),
                           (["--seeds", f"1,{2**64}"], "from 0 to 2**63-1"), (["--seed", "-1"], "--seed must be"),
                           (["--windows", "8,8"], "expected different window lengths"),
                           (["--seeds", "1,,2"], "separated by commas"),
                           (["--seeds", "0,1", "--samples", "0"], "--seeds draws pieces with each seed")):
        assert main(["evaluate", "-c", str(trained), *flags]) == 2
        assert message in capsys.readouterr().err


def test_evaluate_refuses_a_missing_reference_set_and_bad_windows(trained, tmp_path, capsys):
    assert main(["evaluate", "-c", str(trained), "--reference-set", str(tmp_path / "nope")]) == 2
    assert "--reference-set" in capsys.readouterr().err
    assert main(["evaluate", "-c", str(trained), "--windows", "8,x"]) == 2
    assert "expected beats separated by commas" in capsys.readouterr().err
    assert main(["evaluate", "-c", str(trained), "--windows", "0"]) == 2
    assert "--windows" in capsys.readouterr().err


def test_evaluate_missing_checkpoint(tmp_path, capsys):
    assert main(["evaluate", "-c", str(tmp_path / "none.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_ablate_end_to_end_on_a_tiny_corpus(bach_dataset, tmp_path, capsys):
    report = tmp_path / "report"
    rc = main(["ablate", "-d", str(bach_dataset), "--budget-tokens", "20000", "--seq-len", "32", "--embed-dim", "32",
               "--hidden-dim", "48", "--num-layers", "1", "--batch-size", "16", "--lr", "3e-3", "--samples", "2",
               "--sample-length", "48", "--report", str(report), "--no-tensorboard", "-q"])
    assert rc == 0
    md = (report / "report.md").read_text()
    for fam in ("gru", "lstm", "transformer"):
        assert f"| {fam} |" in md
        png = list((report / "samples").glob(f"*_{fam}_seed0_0.png"))
        assert list((report / "samples").glob(f"*_{fam}_seed0_0.mid")) and png and png[0].stat().st_size > 1000
        assert f"![{fam} sample](samples/{png[0].name})" in md
    assert "| unigram baseline |" in md and "| bigram baseline |" in md
    assert "## Musicality" in md and "| held-out |" in md
    assert (report / "learning_curves.png").stat().st_size > 1000
    res = json.loads((report / "results.json").read_text())
    tokens = {r["summary"]["tokens"] for r in res["rows"]}
    assert len(tokens) == 1 and tokens.pop() >= 20000  # one equal budget for every family


def test_ablate_unknown_model(bach_dataset, tmp_path, capsys):
    assert main(["ablate", "-d", str(bach_dataset), "--budget-tokens", "100", "--models", "gru", "mamba",
                 "--report", str(tmp_path)]) == 2
    assert "unknown model 'mamba'" in capsys.readouterr().err
