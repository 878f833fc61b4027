"""Infilling (meter encoding with HOLE/FILL/FILL_END): the FIM reordering of training windows, and
`musesynth infill` keeping every note outside the rewritten bars exactly. Control tokens (composer, key,
tempo) from the dataset through the checkpoint to `musesynth generate`. One tiny model serves both."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import symusic

from musesynth.cli import main
from musesynth.data.build import build_dataset
from musesynth.data.dataset import load_pieces
from musesynth.data.fim import FimTransform
from musesynth.tokenize import encoding_from_vocab, get_encoding
from musesynth.training.checkpoint import load_model
from musesynth.training.config import TrainConfig
from musesynth.training.loop import train


@pytest.fixture(scope="module")
def infill_run(bach_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("infill")
    files = sorted(p.relative_to(bach_dir).as_posix() for p in bach_dir.rglob("*.mid"))
    (root / "who.json").write_text(json.dumps({f: ("Bach" if i % 2 else "Palestrina") for i, f in enumerate(files)}))
    build_dataset(bach_dir, root / "ds", encoding="meter", params={"infill": True}, workers=1, quiet=True,
                  composers=str(root / "who.json"))
    train(TrainConfig(dataset=str(root / "ds"), model="gru", out_dir=str(root), seq_len=128, embed_dim=32,
                      hidden_dim=64, num_layers=1, batch_size=16, lr=3e-3, epochs=1, warmup_steps=2,
                      tensorboard=False, quiet=True, patience=0))
    return root


def notes_of(score: symusic.Score) -> np.ndarray:
    """time, duration, pitch, velocity and track of every note"""
    parts = [t.notes.numpy() for t in score.tracks]
    cols = [np.concatenate([p[k] for p in parts]) for k in ("time", "duration", "pitch", "velocity")]
    track = np.repeat(np.arange(len(parts)), [p["time"].size for p in parts])
    return np.stack([*cols, track], 1).astype(np.int64)


def as_set(rows: np.ndarray) -> set[tuple[int, ...]]:
    return {tuple(int(x) for x in r) for r in rows}


def test_infill_tokens_leave_older_vocabularies_and_fingerprints_alone():
    plain = get_encoding("meter")
    assert len(plain.vocab) == 570 and "infill" not in plain.vocab.params
    assert get_encoding("meter", infill=False, composers=[]).vocab == plain.vocab
    enc = get_encoding("meter", infill=True)
    assert enc.vocab.tokens[:570] == plain.vocab.tokens and enc.vocab.tokens[570:] == ("HOLE", "FILL", "FILL_END")
    assert encoding_from_vocab(enc.vocab.to_dict()).infill
    assert not encoding_from_vocab(plain.vocab.to_dict()).infill


def test_fim_windows_keep_their_length_and_read_back_in_time_order(infill_run):
    enc = encoding_from_vocab(json.loads((infill_run / "ds" / "vocab.json").read_text()))
    tokens = np.concatenate(load_pieces(infill_run / "ds", "train")).astype(np.int64)
    fim = FimTransform(enc, rate=1.0)
    fired = 0
    for i in range(40):
        a = 97 * i
        w = tokens[a : a + 129]
        out = fim(w, np.random.default_rng(i))
        assert out.size == w.size
        if not np.array_equal(out, w):
            fired += 1
            assert (out == enc.hole_id).sum() == (out == enc.fill_id).sum() == (out == enc.fill_end_id).sum() == 1
            assert out[0] == enc.hole_id  # suffix, then prefix and middle in one run (SPM)
            back = enc.natural_order(out)  # the window in time order, less the 3 tokens cut to make room
            assert any(np.array_equal(back, np.r_[w[:i], w[i + 3 :]]) for i in range(w.size - 2))
            fill, end = np.flatnonzero(out == enc.fill_id)[0], np.flatnonzero(out == enc.fill_end_id)[0]
            assert np.isin(enc.bar_id, out[fill + 1 : end])
            assert not np.isin(out[1:fill], [enc.bos_id]).any()  # the suffix never reaches into the next piece
    # at rate 1 a window is left alone only where no bar of one piece can be cut out of it: the checks above must
    # have run on at least half the windows, never on none
    assert fired >= 20, fired


@pytest.mark.parametrize("bars", ["3-4", "1-2"])  # 1-2: the pickup bar of bwv1.6 is bar 1
def test_infill_keeps_every_note_outside_the_span_exactly(bars, infill_run, bach_dir, tmp_path, capsys):
    """The result is the input file with the span's notes rewritten: every other note is the file's own (time,
    length, pitch and velocity, in its own ticks per beat), on its own track; before, the piece came back as the
    encoding read it, one Piano track at velocity 80 and 480 ticks per beat."""
    piece = sorted(bach_dir.rglob("*.mid"))[0]
    png = [] if bars == "3-4" else ["--no-png"]
    rc = main(["infill", "-c", str(infill_run / "gru"), "--input", str(piece), "--bars", bars, "--num-samples", "3",
               "-t", "1.2", "-s", "3", "--no-wav", *png, "-o", str(tmp_path)])
    assert rc == 0
    src = symusic.Score(str(piece))
    ref = notes_of(src)
    outs = sorted(tmp_path.glob("*.mid"))
    assert len(outs) == 3 and len(list(tmp_path.glob("*.png"))) == (3 if not png else 0)
    news = []
    for mid in outs:
        info = json.loads(mid.with_suffix(".json").read_text())
        score = symusic.Score(str(mid))
        tpq = score.ticks_per_quarter
        assert tpq == src.ticks_per_quarter and [t.name for t in score.tracks] == [t.name for t in src.tracks]
        s, e = (round(b * tpq) for b in info["span_beats"])
        got = notes_of(score)
        out_got, out_ref = (n[(n[:, 0] < s) | (n[:, 0] >= e)] for n in (got, ref))
        assert as_set(out_got) == as_set(out_ref) and len(out_got) == len(out_ref)
        inside = got[(got[:, 0] >= s) & (got[:, 0] < e)]
        assert (inside[:, 0] + inside[:, 1] <= e).all()
        assert info["bars"] == bars and e > s and (inside[:, 0] >= 0).all()
        news.append(info["new_notes"])
    assert "new notes" in capsys.readouterr().out and max(news) > 0


def test_infill_of_a_played_piece_keeps_its_timing_dynamics_pedal_and_tempo(infill_run, bach_dir, tmp_path):
    """A piece as played (onsets off the grid, velocities 40-109, a sustain pedal, two tempos, a text marker): every
    note outside the rewritten bars keeps its own time, length, pitch and velocity, the pedal, tempos and marker
    are the file's, and the new notes take the velocity of the notes they replace (before, the whole piece came
    back on the grid at velocity 80 and the tempo in the encoding's bins)."""
    import musesynth

    rng = np.random.default_rng(0)
    src = symusic.Score(str(sorted(bach_dir.rglob("*.mid"))[1]))
    tpq = src.ticks_per_quarter
    src.tempos = [symusic.Tempo(0, 97), symusic.Tempo(tpq * 20, 83)]
    for t in src.tracks:
        a = t.notes.numpy()
        late = np.maximum(a["time"] + rng.integers(-tpq // 20, tpq // 20, a["time"].size), 0)
        t.notes = symusic.Note.from_numpy(time=late.astype(np.int32), duration=a["duration"], pitch=a["pitch"],
                                          velocity=rng.integers(40, 110, a["time"].size).astype(np.int8))
        t.controls.append(symusic.ControlChange(tpq * 2, 64, 127))
    src.markers.append(symusic.TextMeta(tpq * 3, "verse"))
    src.dump_midi(str(tmp_path / "played.mid"))
    src = symusic.Score(str(tmp_path / "played.mid"))  # as the file holds it
    made = musesynth.infill(tmp_path / "played.mid", "3-4", model=str(infill_run / "gru"), seed=1)[0]
    out = made.score
    lo, hi = (round(b * tpq) for b in made.info["span_beats"])
    ref, got = notes_of(src), notes_of(out)
    outside = lambda n: n[(n[:, 0] < lo - tpq // 20) | (n[:, 0] >= hi + tpq // 20)]  # noqa: E731 (clear of the grid)
    assert as_set(outside(ref)) <= as_set(got) and made.info["new_notes"] > 0
    new = np.array(sorted(as_set(got) - as_set(ref)))
    assert ((new[:, 0] >= lo) & (new[:, 0] < hi)).all() and np.isin(new[:, 3], ref[:, 3]).all()
    assert [(c.time, c.number, c.value) for t in out.tracks for c in t.controls] == [
        (c.time, c.number, c.value) for t in src.tracks for c in t.controls]
    assert [(x.time, x.mspq) for x in out.tempos] == [(x.time, x.mspq) for x in src.tempos]
    assert "verse" in [m.text for m in out.markers]


@pytest.mark.parametrize("bars, message", [("0-2", "bars count from 1"), ("4-2", "bars count from 1"),
                                           ("x", "--bars must be"), ("3-999", "the piece has only")])
def test_infill_errors_are_one_line(bars, message, infill_run, bach_dir, tmp_path, capsys):
    piece = sorted(bach_dir.rglob("*.mid"))[0]
    assert main(["infill", "-c", str(infill_run / "gru"), "--input", str(piece), "--bars", bars,
                 "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_piece_with_a_rest_the_encoding_would_shorten_is_refused(infill_run, bach_dir, tmp_path, capsys):
    """Reading squeezes a stretch of more than 64 beats without an onset or an end, which would move every note
    infill keeps after it: refused in one line, nothing written."""
    score = symusic.Score(str(sorted(bach_dir.rglob("*.mid"))[0]))
    tpq = score.ticks_per_quarter
    late = score.tracks[0].notes[-1].copy()
    late.time, late.duration = late.time + 200 * tpq, tpq
    score.tracks[0].notes.append(late)
    src = tmp_path / "gap.mid"
    score.dump_midi(str(src))
    out = tmp_path / "out"
    assert main(["infill", "-c", str(infill_run / "gru"), "--input", str(src), "--bars", "2-3", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "beats in which no note starts or ends" in err and err.count("\n") == 1
    assert not out.exists() or not any(out.iterdir())


def test_a_model_without_fill_tokens_is_refused(bach_dir, tmp_path, capsys):
    piece = sorted(bach_dir.rglob("*.mid"))[0]
    assert main(["infill", "-c", "musesynth/pretrained/bach", "--input", str(piece), "--bars", "2-3",
                 "-o", str(tmp_path)]) == 2
    assert "not trained for infilling" in capsys.readouterr().err


def test_evaluate_reports_infill_against_continuation_nll(infill_run, capsys):
    assert main(["evaluate", "-c", str(infill_run / "gru"), "--samples", "0", "--split", "train"]) == 0
    out = capsys.readouterr().out
    assert "seeing the bars after the span" in out and "continuing" in out


def test_the_manifest_records_each_files_header(infill_run):
    files = json.loads((infill_run / "ds" / "manifest.json").read_text())["files"]
    assert {f["composer"] for f in files} == {"bach", "palestrina"}
    assert all({"key", "time_signature", "tempo"} <= f.keys() for f in files)


def test_controls_round_trip_from_dataset_to_generated_piece(infill_run, tmp_path):
    rc = main(["generate", "-c", str(infill_run / "gru"), "--composer", "Palestrina", "--key", "G major",
               "--tempo", "90", "-n", "60", "--num-samples", "2", "--no-wav", "--no-png", "-q", "-o", str(tmp_path)])
    assert rc == 0
    for side in tmp_path.glob("*.json"):
        info = json.loads(side.read_text())
        assert (info["composer"], info["key"]) == ("palestrina", "G major") and abs(info["tempo"] - 90) < 3
        tempos = symusic.Score(info["midi"]).tempos.numpy()
        assert abs(60e6 / tempos["mspq"][0] - info["tempo"]) < 0.5
    # without --composer each piece still gets one, drawn from the training corpus' shares the checkpoint keeps
    _, _, meta = load_model(infill_run / "gru")
    assert meta.composer_prior is not None and sum(meta.composer_prior) == pytest.approx(1.0)
    free = tmp_path / "free"
    assert main(["generate", "-c", str(infill_run / "gru"), "-n", "30", "--num-samples", "4", "--no-wav", "--no-png",
                 "-q", "-o", str(free)]) == 0
    assert {json.loads(f.read_text())["composer"] for f in free.glob("*.json")} <= {"bach", "palestrina"}


@pytest.mark.parametrize("extra, message", [
    (["--composer", "mozart"], "unknown composer 'mozart' (known: bach, palestrina)"),
    (["--tempo", "999"], "unknown tempo 999 BPM (known: "),
    (["--key", "H major"], "unknown key"),
])
def test_unknown_controls_are_one_line_errors_listing_the_known(extra, message, infill_run, tmp_path, capsys):
    assert main(["generate", "-c", str(infill_run / "gru"), *extra, "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_control_report_measures_key_composer_and_tempo(infill_run):
    import torch

    from musesynth.evaluate.control import _requests, control_report, format_control, generate_controlled
    from musesynth.generate.model import Model
    from musesynth.generate.sampling import Sampling
    from musesynth.training.checkpoint import load_model

    model = Model(*load_model(infill_run / "gru", torch.device("cpu")))
    enc = model.encoding
    real = [(enc.composer_of(t), t) for t in load_pieces(infill_run / "ds", "train")]
    requests = _requests(["bach", "palestrina"], [(7, "major"), (2, "minor")], [90.0], 1)
    seqs = generate_controlled(model, requests, 80, Sampling(top_k=20), 0)
    r = control_report(enc, requests, seqs, real)
    assert r["pieces"] == 4 and r["tempo_in_bin"] == 1.0 and np.sum(r["confusion_real_vs_real"]) == len(real)
    assert 0 <= r["key_accuracy"] <= 1 and "confusion, generated" in format_control(r)


def test_the_ablation_report_compares_families_on_both_jobs():
    from types import SimpleNamespace

    from musesynth.ablate import _infill_table

    i = {"spans": 3, "tokens": 400, "continuation_nll": 1.5, "infill_nll": 1.2, "fill_end_nll": 0.3,
         "gain_95": [0.1, 0.45]}
    rows = [SimpleNamespace(model="lstm", eval=SimpleNamespace(infill=i)),
            SimpleNamespace(model="gru", eval=SimpleNamespace(infill=None))]
    table = _infill_table(rows)
    assert "| lstm | 3 | 400 | 1.5000 | 1.2000 | +0.3000 (+0.1000 to +0.4500) | 0.3000 |" in table
    assert not any("| gru" in x for x in table)


def test_a_fill_opens_with_the_spans_first_bar_line(infill_run):
    """The prompt ends inside the prefix (suffix-prefix-middle), so the grammar alone would let a fill add
    notes to the bar before the span: the fill constraint allows only a bar line first."""
    import torch

    from musesynth.generate.infill import FillConstraint

    enc = encoding_from_vocab(json.loads((infill_run / "ds" / "vocab.json").read_text()))
    c = FillConstraint(enc, n_bars=2, bar_len=48, batch=3, device=torch.device("cpu"))
    grammar = torch.as_tensor(enc.grammar())
    prev = torch.full((3,), enc.note0 + 40, dtype=torch.long)  # the prefix ended on a note
    first = c.allowed(grammar[prev], prev)
    assert first.sum(1).tolist() == [1, 1, 1] and first[:, enc.bar_id].all()
    c.advance(torch.full((3,), enc.bar_id))
    assert c.allowed(grammar[torch.full((3,), enc.bar_id)], torch.full((3,), enc.bar_id)).sum(1).min() > 1


def test_bar_one_of_a_piece_without_a_pickup_is_filled_from_its_first_beat(infill_run, parts_run, bach_dir, tmp_path):
    """With no bar before it, the model read bar 1 as the pickup most chorales open with: the shipped model's
    ``--bars 1`` of bwv10.7 (no pickup) wrote every voice's only note on beat 4, seeds 1-5, and on 7 of 8 chorales
    (fuzzing helper). A plain fill of a bar 1 that the input opens with a note opens with a note too (the fill
    constraint's first position is POS_0; the voice rules' first onset is the span's start)."""
    import torch

    import musesynth
    from musesynth.generate.infill import FillConstraint, find_span, infilling, parts_constraint, read_input

    enc = encoding_from_vocab(json.loads((infill_run / "ds" / "vocab.json").read_text()))
    c = FillConstraint(enc, n_bars=1, bar_len=48, batch=1, device=torch.device("cpu"), open_first=True)
    grammar = torch.as_tensor(enc.grammar())
    c.advance(torch.tensor([enc.bar_id]))
    ok = c.allowed(grammar[torch.tensor([enc.bar_id])], torch.tensor([enc.bar_id]))[0].numpy()
    pos0 = enc.vocab.id("POS_0")
    assert ok[pos0] and not ok[pos0 + 1:pos0 + 48].any() and not ok[enc.bar_id]
    c.advance(torch.tensor([pos0]))
    assert c.allowed(None, torch.tensor([pos0]))[0, pos0 + 36].item()  # then free
    parts = encoding_from_vocab(json.loads((parts_run.parent / "ds" / "vocab.json").read_text()))
    piece = next(p for p in sorted(bach_dir.rglob("*.mid"))  # one with no pickup
                 if parts.decode_quantized(read_input(parts, str(p)))["offset"] == 0)
    span = find_span(parts, read_input(parts, str(piece)), 0, 1)
    voices = parts_constraint(parts, span, [0, 1, 2, 3], 1)
    voices.advance(torch.tensor([parts.bar_id]))
    ok = voices.allowed(None, torch.tensor([parts.bar_id]))[0].numpy()
    assert ok[parts.pos0] and not ok[parts.pos0 + 1:parts.pos0 + 48].any() and not ok[parts.bar_id]
    assert not ok[infilling(parts).fill_end_id]  # nor closed empty (review helper)
    made = musesynth.infill(piece, "1", model=str(parts_run), seed=0)[0]
    assert min(n.time for t in made.score.tracks for n in t.notes) == 0


def test_a_fill_of_a_short_last_bar_ends_where_the_piece_does(parts_run, bach_dir):
    """A chorale with a pickup ends on a short bar (bwv1.6: 3 beats): a fill of it lasted to its meter's full bar,
    beat 81 in a piece of 80 (fuzzing helper). The span of a last bar ends where the piece does, so no new note
    starts or lasts past the input's end."""
    import musesynth
    from musesynth.generate.infill import find_span, read_input, span_steps

    parts = encoding_from_vocab(json.loads((parts_run.parent / "ds" / "vocab.json").read_text()))
    for piece in sorted(bach_dir.rglob("*.mid")):
        ids = read_input(parts, str(piece))
        q = parts.decode_quantized(ids)
        start, length = parts.bar_times(ids)
        end = int((q["onset"] + q["duration"]).max())
        if q["offset"] > 0 and end < start[-1] + length[-1]:
            break
    else:
        pytest.skip("no chorale with a short last bar in the test corpus")
    n = start.size
    assert span_steps(parts, find_span(parts, ids, n - 1, n)) == (int(start[-1]), end)
    made = musesynth.infill(piece, str(n), model=str(parts_run), seed=1, temperature=1.5)[0]
    given = symusic.Score(str(piece))
    last = max(n.time + n.duration for t in given.tracks for n in t.notes) / given.ticks_per_quarter
    assert max(n.time + n.duration for t in made.score.tracks for n in t.notes) / made.score.ticks_per_quarter <= last
