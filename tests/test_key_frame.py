"""Key-relative models (train --key-relative, data.key_frame): training pieces move to a tonic of C, prompts
move there too, and what the model writes moves back to the key asked for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import symusic
import torch

from musesynth import api
from musesynth.cli import main
from musesynth.data.build import build_dataset
from musesynth.data.dataset import load_offsets, load_split
from musesynth.data.key_frame import KeyFrame, frame_move, frame_tonics, pieces_to_frame, to_frame
from musesynth.tokenize import get_encoding
from musesynth.tokenize.meter import T_NOTE, tonic_offset
from musesynth.training.checkpoint import load_model
from musesynth.training.config import TrainConfig
from musesynth.training.loop import train

ENC = get_encoding("meter", infill=True)


@pytest.fixture(scope="module")
def relative_run(bach_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("relative")
    build_dataset(bach_dir, root / "ds", encoding="meter", params={"infill": True}, workers=1, quiet=True)
    train(TrainConfig(dataset=str(root / "ds"), model="gru", out_dir=str(root), run_name="rel", seq_len=128,
                      embed_dim=32, hidden_dim=64, num_layers=1, batch_size=16, lr=3e-3, max_steps=20,
                      warmup_steps=1, key_relative=1, augment_transpose=1, tensorboard=False, quiet=True,
                      patience=0))
    return root


def notes(ids: np.ndarray) -> np.ndarray:
    return ENC.pitch_of[ids[ENC.token_type[ids] == T_NOTE]]


def test_tonic_offset_takes_the_smaller_way_and_frames_take_the_nearest_tonic():
    assert [tonic_offset(t) for t in range(12)] == [0, 1, 2, 3, 4, 5, 6, -5, -4, -3, -2, -1]
    assert tonic_offset(-3) == -3 and tonic_offset(14) == 2
    assert [frame_tonics(n) for n in range(5)] == [(), (0,), (0, 6), (0, 4, 8), (0, 3, 6, 9)]
    assert [frame_move(t, (0,)) for t in (0, 2, 6, 7, 11)] == [(0, 0), (0, -2), (0, -6), (0, 5), (0, 1)]
    # two frames: no piece moves more than a minor third (G: down a tone to F#, A: up a minor third to C)
    moves = [frame_move(t, (0, 6)) for t in range(12)]
    assert max(abs(s) for _, s in moves) == 3 and moves[7] == (6, -1) and moves[9] == (0, 3)
    assert all((t + s) % 12 == f for t, (f, s) in enumerate(moves))


def test_every_piece_moves_to_c_and_back_exactly(relative_run):
    ds = relative_run / "ds"
    tokens, offsets = load_split(ds, "train"), load_offsets(ds, "train")
    moved, new_offsets = pieces_to_frame(ENC, tokens, offsets, (0,))
    assert moved.dtype == tokens.dtype and moved.size == tokens.size + offsets.size - 1
    keys = set()
    for a, b, c, d in zip(offsets[:-1], offsets[1:], new_offsets[:-1], new_offsets[1:]):
        piece, framed = np.asarray(tokens[a:b], np.int64), moved[c:d].astype(np.int64)
        tonic, mode = ENC.key_of(piece)
        keys.add(tonic)
        at = int(np.flatnonzero(piece == ENC.key_token_id(tonic, mode))[0])
        # the frame key (the notes' tonic, C) comes first, then the piece's own key
        assert framed[at] == ENC.key_token_id(0, mode) and framed[at + 1] == piece[at]
        np.testing.assert_array_equal(framed, to_frame(ENC, piece, (0,))[0])
        shift = to_frame(ENC, piece, (0,))[1]
        assert shift == -tonic_offset(tonic)
        rest = np.delete(framed, at)
        np.testing.assert_array_equal(notes(rest), notes(piece) + shift)  # no chorale note leaves the piano
        np.testing.assert_array_equal(ENC.transpose_ids(rest, -shift, keys=False), piece)
    assert len(keys) > 3  # the slice is in several keys


def test_the_key_frame_moves_prompts_in_and_pieces_out():
    rows = np.stack([ENC.set_key([ENC.bos_id], 2, "major"), ENC.set_key([ENC.bos_id], 6, "minor")])
    frame = KeyFrame(ENC, (0,))
    inside = frame.to_model(rows)
    assert [ENC.vocab.tokens[i] for i in inside[1]] == ["BOS", "KEY_C_minor", "KEY_F#_minor"]
    assert [ENC.key_of(r) for r in inside] == [(0, "major"), (0, "minor")]  # key guidance reads C
    c4, g4 = ENC.note0 + 60 - 21, ENC.note0 + 67 - 21
    written = [np.r_[r, ENC.bar_id, ENC.pos0, c4, ENC.dur0 + 11, g4] for r in inside]
    out = frame.to_user(written)
    np.testing.assert_array_equal(out[0][:2], rows[0])  # the user's own tokens as they were, one KEY
    assert out[0].size == written[0].size - 1
    assert notes(out[0]).tolist() == [62, 69] and notes(out[1]).tolist() == [66, 73]  # D: up 2; F#: up 6
    identity = KeyFrame(ENC, ())
    assert identity.to_model(rows) is not None and identity.to_user(written) is written


def test_a_key_relative_model_writes_in_the_key_asked_for(relative_run, bach_dir, tmp_path):
    run = relative_run / "rel"
    _, _, meta = load_model(run)
    assert meta.key_frames == (0,) and meta.train_config["key_relative"] == 1
    ks = np.asarray(meta.key_prior)
    assert (ks > 0).sum() > 3  # the prior counts the pieces' own keys, not C
    for key, sharps in (("C major", 0), ("A major", 3)):
        out = tmp_path / key.split()[0]
        assert main(["generate", "-c", str(run), "--key", key, "-n", "40", "--no-wav", "--no-png", "-q",
                     "-o", str(out)]) == 0
        info = json.loads(next(out.glob("*.json")).read_text())
        assert info["key"] == key and symusic.Score(info["midi"]).key_signatures[0].key == sharps
    # the same seed: the same music, moved from C to A (down a minor third); the primer is the user's, moved
    # to the key asked for as with any model
    model = api.load_model(run)
    primer = sorted(bach_dir.rglob("*.mid"))[2]
    c, a = (api.generate(model, primer, 120, primer_tokens=40, key=k, seed=4, key_strength=0)[0]
            for k in ("C major", "A major"))
    assert c.primer_tokens == a.primer_tokens == 40
    new_c, new_a = notes(c.tokens[40:]), notes(a.tokens[40:])
    assert new_c.size and np.array_equal(new_c - 3, new_a)
    own = ENC.encode_file(primer)[:40]
    np.testing.assert_array_equal(a.tokens[:40], ENC.set_key(own, 9, "major", transpose=True))


def test_key_relative_training_needs_key_tokens_and_a_matching_resume(relative_run, tiny_dataset, tmp_path, capsys):
    assert main(["train", "-d", str(tiny_dataset), "--key-relative", "--max-steps", "1", "-o", str(tmp_path),
                 "-q"]) == 2
    err = capsys.readouterr().err
    assert "--key-relative needs a dataset with key tokens" in err and err.count("\n") == 1
    assert main(["train", "-d", str(relative_run / "ds"), "-m", "gru", "--seq-len", "128", "--embed-dim", "32",
                 "--hidden-dim", "64", "--num-layers", "1", "--batch-size", "16", "--max-steps", "8",
                 "-o", str(relative_run), "--run-name", "rel", "--resume", "-q"]) == 2
    assert "trained with --key-relative 1; resume it the same way" in capsys.readouterr().err


def test_infill_with_a_key_relative_model_keeps_the_outside_and_evaluate_scores_in_c(relative_run, bach_dir,
                                                                                       tmp_path, capsys):
    piece = sorted(bach_dir.rglob("*.mid"))[1]
    assert main(["infill", "-c", str(relative_run / "rel"), "--input", str(piece), "--bars", "2-3", "-s", "1",
                 "--no-wav", "--no-png", "-o", str(tmp_path)]) == 0
    ref = symusic.Score(str(piece))  # the file's own notes
    mid = next(tmp_path.glob("*.mid"))
    info = json.loads(mid.with_suffix(".json").read_text())
    got, want = (np.stack([np.concatenate([t.notes.numpy()[k] for t in s.tracks]) for k in ("time", "pitch")], 1)
                 for s in (symusic.Score(str(mid)), ref))
    tpq = ref.ticks_per_quarter
    s, e = (round(b * tpq) for b in info["span_beats"])
    keep = lambda n: {tuple(r) for r in n[(n[:, 0] < s) | (n[:, 0] >= e)].tolist()}  # noqa: E731
    assert keep(got) == keep(want) and info["new_notes"] >= 0
    capsys.readouterr()
    assert main(["evaluate", "-c", str(relative_run / "rel"), "--split", "train", "--samples", "4", "--length",
                 "60"]) == 0
    assert "in the key asked for" in capsys.readouterr().out


def test_evaluate_scores_a_key_relative_model_on_the_notes_it_reads(relative_run, tmp_path):
    from musesynth.models.likelihood import split_loss

    ds, out = relative_run / "ds", tmp_path / "eval.json"
    assert main(["evaluate", "-c", str(relative_run / "rel"), "--samples", "0", "--json", str(out)]) == 0
    reported = json.loads(out.read_text())["model_metrics"]["nll"]
    model, enc, meta = load_model(relative_run / "rel")
    tokens = load_split(ds, "test")
    cpu = torch.device("cpu")
    framed = pieces_to_frame(enc, tokens, load_offsets(ds, "test"), (0,))[0]
    moved = split_loss(model, framed, 128, 64, cpu, enc.pad_id).nll
    as_written = split_loss(model, tokens, 128, 64, cpu, enc.pad_id).nll
    assert reported == pytest.approx(moved) and moved != pytest.approx(as_written)
