from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import make_score, scale_melody

from musesynth.cli import main
from musesynth.data.augment import Augmenter, WindowAugmenter
from musesynth.data.build import build_dataset
from musesynth.data.dataset import load_manifest, load_pieces, load_split
from musesynth.data.files import find_midi_files
from musesynth.data.loader import WindowDataset
from musesynth.data.split import assign_splits, split_of
from musesynth.errors import MusesynthError
from musesynth.tokenize import get_encoding


def test_finds_midi_recursively_any_case(tiny_midi_dir):
    names = [p.name for p in find_midi_files(tiny_midi_dir)]
    assert len(names) == 12 and "piece03.MID" in names and "piece05.midi" in names


def test_bad_files_are_skipped_and_reported(tiny_midi_dir, tmp_path, capsys):
    src = tmp_path / "midi"
    shutil.copytree(tiny_midi_dir, src)
    good = (src / "a" / "piece01.mid").read_bytes()
    (src / "truncated.mid").write_bytes(good[: len(good) // 2])
    (src / "notes.mid").write_text("this is a text file, not MIDI\n")
    (src / "empty.mid").write_bytes(b"")
    make_score([(0, 120, 36)], drum=True).dump_midi(str(src / "drums_only.mid"))

    rc = main(["data", "-d", str(src), "-o", str(tmp_path / "ds"), "--workers", "2"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "files found 16, used 12, skipped 4" in out
    m = load_manifest(tmp_path / "ds")
    reasons = {s["file"]: s["reason"] for s in m.skipped}
    assert reasons["empty.mid"] == "empty file (0 bytes)"
    assert reasons["notes.mid"] == "not a MIDI file (no MThd header)"
    assert reasons["truncated.mid"].startswith("corrupt MIDI")
    assert reasons["drums_only.mid"] == "no pitched notes"
    assert sum(s["files"] for s in m.splits.values()) == 12


def test_empty_folder_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["data", "-d", str(tmp_path / "empty"), "-o", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "no .mid/.midi files found" in err
    assert not (tmp_path / "ds").exists()


def test_folder_with_no_usable_file_is_an_error(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "bad.mid").write_text("nope")
    assert main(["data", "-d", str(tmp_path / "m"), "-o", str(tmp_path / "ds")]) == 2
    assert "no usable MIDI file" in capsys.readouterr().err


def test_missing_folder_is_an_error(tmp_path, capsys):
    assert main(["data", "-d", str(tmp_path / "nope"), "-o", str(tmp_path / "ds")]) == 2
    assert "MIDI folder not found" in capsys.readouterr().err


def test_split_is_by_file_deterministic_and_stable():
    names = [f"dir/piece{i}.mid" for i in range(2000)]
    first = {n: split_of(n) for n in names}
    counts = {s: list(first.values()).count(s) for s in ("train", "val", "test")}
    assert 1500 < counts["train"] < 1700 and 150 < counts["val"] < 250 and 150 < counts["test"] < 250
    more = names + [f"new/extra{i}.mid" for i in range(500)]
    again = assign_splits(more)
    assert all(again[n] == first[n] for n in names)  # adding files never moves existing ones


def test_tiny_corpus_still_gets_val_and_test():
    s = assign_splits(["a.mid", "b.mid", "c.mid"])
    assert set(s.values()) == {"train", "val", "test"}


def test_dataset_layout(tiny_dataset):
    m = load_manifest(tiny_dataset)
    assert m.vocab_size == 312 and m.encoding == "chord"
    vocab = json.loads((tiny_dataset / "vocab.json").read_text())
    assert len(vocab["tokens"]) == 312
    train = load_split(tiny_dataset, "train")
    assert train.dtype == np.uint16 and isinstance(train, np.memmap)
    pieces = load_pieces(tiny_dataset, "train")
    assert len(pieces) == m.splits["train"]["files"]
    enc = get_encoding("chord")
    assert all(p[0] == enc.bos_id and p[-1] == enc.eos_id for p in pieces)
    assert sum(p.size for p in pieces) == train.size


def test_same_files_same_dataset(tiny_midi_dir, tmp_path):
    a = build_dataset(tiny_midi_dir, tmp_path / "a", workers=2, quiet=True)
    b = build_dataset(tiny_midi_dir, tmp_path / "b", workers=1, quiet=True)
    assert a.files == b.files
    for s in ("train", "val", "test"):
        np.testing.assert_array_equal(load_split(tmp_path / "a", s), load_split(tmp_path / "b", s))


def test_performance_dataset(tiny_midi_dir, tmp_path):
    m = build_dataset(tiny_midi_dir, tmp_path / "p", encoding="performance", workers=1, quiet=True)
    assert m.encoding == "performance" and m.files_used == 12


def test_eval_windows_cover_every_token_once():
    tokens = np.arange(1, 1001, dtype=np.uint16)
    ds = WindowDataset(tokens, seq_len=64, train=False, pad_id=0)
    targets = np.concatenate([ds[i][1].numpy() for i in range(len(ds))])
    real = targets[targets != 0]
    np.testing.assert_array_equal(real, np.arange(2, 1001))


def test_train_windows_have_random_offsets_per_epoch():
    tokens = np.arange(1, 5001, dtype=np.uint16)
    ds = WindowDataset(tokens, seq_len=100, train=True, seed=1)
    x, y = ds[3]
    assert x.shape == (100,) and torch_equal(y[:-1], x[1:])
    s0 = ds.starts.copy()
    ds.set_epoch(1)
    assert not np.array_equal(s0, ds.starts)
    ds.set_epoch(0)
    np.testing.assert_array_equal(s0, ds.starts)  # deterministic given (seed, epoch)
    assert ds.starts.max() + 101 <= tokens.size


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def test_seq_len_larger_than_data_is_a_clear_error():
    with pytest.raises(MusesynthError, match="seq_len 100 is larger than the training data"):
        WindowDataset(np.arange(50, dtype=np.uint16), seq_len=100, train=True)


def test_augmentation_transposes_and_shifts_tempo():
    enc = get_encoding("chord")
    ids = enc.encode(make_score(scale_melody(0, 20)))
    aug = WindowAugmenter(enc, Augmenter(transpose=3, tempo=2))
    seen = set()
    for seed in range(20):
        out = aug(ids, np.random.default_rng(seed))
        q0, q1 = enc.decode_quantized(ids), enc.decode_quantized(out)
        shift = set((q1["pitch"] - q0["pitch"]).tolist())
        assert len(shift) == 1 and abs(next(iter(shift))) <= 3
        np.testing.assert_array_equal(q0["onset"], q1["onset"])
        seen |= shift
    assert len(seen) > 2


def test_piece_starts_puts_that_share_of_windows_at_a_pieces_bos():
    """--piece-starts: a share of the windows (redrawn each epoch) begins at a BOS, so the header and the
    opening bars are seen as when generating; 0 leaves the random cuts exactly as they were."""
    bos = 1
    tokens = np.full(20_000, 5, np.int64)
    starts = np.r_[0, np.cumsum(np.random.default_rng(0).integers(200, 900, 40))]
    tokens[starts[starts < tokens.size]] = bos
    plain = WindowDataset(tokens, seq_len=100, train=True, seed=3)
    zero = WindowDataset(tokens, seq_len=100, train=True, seed=3, piece_starts=0.0, bos_id=bos)
    assert np.array_equal(plain.starts, zero.starts)
    half = WindowDataset(tokens, seq_len=100, train=True, seed=3, piece_starts=0.5, bos_id=bos)
    at_bos = tokens[half.starts] == bos
    assert 0.4 < at_bos.mean() < 0.6 and (tokens[plain.starts] == bos).mean() < 0.05
    first = half.starts.copy()
    half.set_epoch(1)
    assert not np.array_equal(first, half.starts)
    every = WindowDataset(tokens, seq_len=100, train=True, seed=3, piece_starts=1.0, bos_id=bos)
    assert (tokens[every.starts] == bos).all() and (every.starts <= len(tokens) - 101).all()
    x, _ = every[0]
    assert int(x[0]) == bos


def _extra_folder(root, names, start=100):
    root.mkdir()
    for i, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        make_score(scale_melody(start + i, n=60)).dump_midi(str(root / name))
    return root


def test_train_only_folders_add_training_pieces_and_leave_the_held_out_splits_alone(tiny_midi_dir, tmp_path, capsys):
    """`data --train-only DIR`: every file there goes to train (two folders may hold the same name), after
    the corpus's own; val and test come out byte for byte as without it, and the manifest says which is which."""
    one = _extra_folder(tmp_path / "fakes", ["0.mid", "sub/1.mid", "2.mid"])
    two = _extra_folder(tmp_path / "more", ["0.mid"], start=200)
    (two / "broken.mid").write_text("not MIDI\n")
    (two / "folder.mid").mkdir()  # a name that is no file: reported with its folder, as a broken file is
    plain = build_dataset(tiny_midi_dir, tmp_path / "plain", workers=1, quiet=True)
    held = plain.files_in("test")[0]  # a held-out piece copied into an extra folder is not trained on
    shutil.copy(tiny_midi_dir / held, one / "copied.mid")
    rc = main(["data", "-d", str(tiny_midi_dir), "-o", str(tmp_path / "more_ds"), "--workers", "2",
               "--train-only", str(one), "--train-only", str(two)])
    assert rc == 0
    out = capsys.readouterr().out
    assert f"train: {plain.splits['train']['files'] + 4:5d} files" in out and "(4 of them from --train-only" in out
    m = load_manifest(tmp_path / "more_ds")
    for split in ("val", "test"):
        for suffix in ("", "_offsets"):
            a = np.load(tmp_path / "plain" / f"{split}{suffix}.npy")
            b = np.load(tmp_path / "more_ds" / f"{split}{suffix}.npy")
            np.testing.assert_array_equal(a, b)
    plain_train, train = load_pieces(tmp_path / "plain", "train"), load_pieces(tmp_path / "more_ds", "train")
    assert len(train) == len(plain_train) + 4
    for a, b in zip(plain_train, train):  # the corpus's own pieces first, unchanged
        np.testing.assert_array_equal(a, b)
    assert m.train_only == [str(one.resolve()), str(two.resolve())]
    extra = sorted((f["train_only"], f["file"], f["split"]) for f in m.files if "train_only" in f)
    assert extra == [(0, "0.mid", "train"), (0, "2.mid", "train"), (0, "sub/1.mid", "train"), (1, "0.mid", "train")]
    assert m.files_in("train") == plain.files_in("train")  # relative to the corpus: the extras are not there
    assert {s["file"]: s["reason"] for s in m.skipped} == {
        str(two / "broken.mid"): "not a MIDI file (no MThd header)",
        str(two / "folder.mid"): "a folder, not a MIDI file",
        str(one / "copied.mid"): f"the same piece as {held} (test split)"}
    assert (m.files_found, m.files_used, m.files_skipped) == (19, 16, 3)


def test_train_only_folders_that_overlap_or_are_missing_are_one_line_errors(tiny_midi_dir, tmp_path, capsys):
    extra = _extra_folder(tmp_path / "fakes", ["0.mid"])
    cases = [
        (["--train-only", str(tiny_midi_dir / "a")], "overlaps the MIDI folder"),
        (["--train-only", str(extra), "--train-only", str(extra)], "overlaps another --train-only folder"),
        (["--train-only", str(tmp_path / "nowhere")], "--train-only folder not found"),
        (["--train-only", str(extra / "0.mid")], "--train-only is not a folder"),
        (["--train-only", str(tmp_path / "empty")], "no .mid/.midi files found in the --train-only folder"),
        (["--train-only", str(extra), "--composers", "folder"], "--composers and --train-only do not go together"),
    ]
    (tmp_path / "empty").mkdir()
    for flags, message in cases:
        assert main(["data", "-d", str(tiny_midi_dir), "-o", str(tmp_path / "ds"), *flags]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    # the dataset may not be written into an extra folder (output over input)
    assert main(["data", "-d", str(tiny_midi_dir), "-o", str(extra / "ds"), "--train-only", str(extra)]) == 2
    assert "overlaps the input folder" in capsys.readouterr().err
    assert sorted(p.name for p in extra.iterdir()) == ["0.mid"] and not (tmp_path / "ds").exists()
