"""Ownership by content, never by names: what musesynth wrote carries its marker, and a user's folder or file
that merely looks like ours (same names) is refused in one line, byte for byte untouched (issue 20, 1-3)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from musesynth.cli import main
from musesynth.ownership import MARKER, marker_kind

TRAIN = ["--max-steps", "3", "--seq-len", "16", "--embed-dim", "16", "--hidden-dim", "32", "--num-layers", "1",
         "--batch-size", "8", "--no-tensorboard", "-q", "-m", "gru"]


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path below ``root``: a file's bytes, a link's target, or 'dir'."""
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        key = str(p.relative_to(root))
        out[key] = f"-> {os.readlink(p)}" if p.is_symlink() else "dir" if p.is_dir() else p.read_bytes()
    return out


def one_line_refusal(capsys: pytest.CaptureFixture[str], rc: int) -> str:
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("own_runs")
    assert main(["train", "-d", str(tiny_dataset), "-o", str(root), "--run-name", "r", *TRAIN]) == 0
    return root / "r"


# ---------------------------------------------------------------- item 1: train
def test_train_refuses_a_folder_holding_files_named_like_a_run(tiny_dataset, tmp_path, capsys):
    proj = tmp_path / "P" / "proj"
    proj.mkdir(parents=True)
    (proj / "config.json").write_text('{"mine":1}\n')
    (proj / "metrics.csv").write_text("x\n")
    (proj / "best.pt").write_bytes(b"my own weights")
    before = snapshot(tmp_path)
    rc = main(["train", "-d", str(tiny_dataset), *TRAIN, "--run-name", "proj", "-o", str(tmp_path / "P")])
    err = one_line_refusal(capsys, rc)
    assert "not a musesynth run folder" in err and str(proj) in err and "--overwrite" not in err
    rc = main(["train", "-d", str(tiny_dataset), *TRAIN, "--run-name", "proj", "-o", str(tmp_path / "P"),
               "--overwrite"])
    one_line_refusal(capsys, rc)
    assert snapshot(tmp_path) == before


def test_a_run_carries_its_marker_and_a_users_folder_in_it_is_never_replaced(run, tiny_dataset, capsys):
    assert marker_kind(run) == "run"
    (run / "summary.json").unlink()
    (run / "summary.json").mkdir()
    (run / "summary.json" / "mine.txt").write_text("keep")
    before = snapshot(run)
    rc = main(["train", "-d", str(tiny_dataset), *TRAIN, "--run-name", run.name, "-o", str(run.parent), "--overwrite"])
    err = one_line_refusal(capsys, rc)
    assert "summary.json" in err and "folder" in err
    assert snapshot(run) == before


def test_a_run_from_before_the_marker_is_still_ours(tiny_dataset, tmp_path, capsys):
    argv = ["train", "-d", str(tiny_dataset), *TRAIN, "--run-name", "old", "-o", str(tmp_path)]
    assert main(argv) == 0
    (tmp_path / "old" / MARKER).unlink()  # as a run written by an earlier version
    rc = main(argv)
    assert rc == 2 and "already holds a trained run" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert marker_kind(tmp_path / "old") == "run"


# ---------------------------------------------------------------- item 2: export
def _hugging_face_folder(path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
                                                  "vocab_size": 50257}))
    save_file({"wte.weight": torch.ones(4, 4)}, str(path / "model.safetensors"))
    (path / "MODEL_CARD.md").write_text("# My model\nyears of work\n")


def test_export_refuses_a_hugging_face_folder_and_does_not_invite_overwrite(run, tmp_path, capsys):
    hf = tmp_path / "hf"
    _hugging_face_folder(hf)
    before = snapshot(tmp_path)
    err = one_line_refusal(capsys, main(["export", "-c", str(run), "-o", str(hf)]))
    assert "not an exported model" in err and "--overwrite" not in err
    err = one_line_refusal(capsys, main(["export", "-c", str(run), "-o", str(hf), "--overwrite"]))
    assert "not an exported model" in err
    assert snapshot(tmp_path) == before


def test_export_marks_its_folder_replaces_it_only_whole_and_leaves_no_lock(run, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["export", "-c", str(run), "-o", str(out)]) == 0
    assert marker_kind(out) == "export" and sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    err = one_line_refusal(capsys, main(["export", "-c", str(run), "-o", str(out)]))
    assert "pass --overwrite" in err
    (out / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    err = one_line_refusal(capsys, main(["export", "-c", str(run), "-o", str(out), "--overwrite"]))
    assert "notes.txt" in err and "--overwrite" not in err
    assert snapshot(tmp_path) == before
    (out / "notes.txt").unlink()
    (out / MARKER).unlink()  # an export from before the marker: its config.json proves it ours
    assert main(["export", "-c", str(run), "-o", str(out), "--overwrite"]) == 0
    assert marker_kind(out) == "export" and sorted(p.name for p in tmp_path.iterdir()) == ["m"]


# ---------------------------------------------------------------- item 3: data
def test_data_never_deletes_a_users_folder_named_like_a_dataset_file(tiny_midi_dir, tmp_path, capsys):
    ds = tmp_path / "ds"
    argv = ["data", "-d", str(tiny_midi_dir), "-o", str(ds), "--workers", "1"]
    assert main(argv) == 0
    (ds / "test.npy").unlink()
    (ds / "test.npy").mkdir()
    (ds / "test.npy" / "mywork.txt").write_text("mine\n")
    capsys.readouterr()
    before = snapshot(tmp_path)
    err = one_line_refusal(capsys, main(argv))
    assert "test.npy" in err and "--overwrite" not in err
    assert snapshot(tmp_path) == before


def test_data_replaces_its_own_datasets_old_and_new_and_leaves_nothing_beside(tiny_midi_dir, tmp_path, capsys):
    ds = tmp_path / "ds"
    argv = ["data", "-d", str(tiny_midi_dir), "-o", str(ds), "--workers", "1"]
    assert main(argv) == 0
    assert main(argv) == 0
    (ds / MARKER).unlink()  # a dataset from before the marker: its manifest proves it ours
    assert main(argv) == 0
    assert marker_kind(ds) == "dataset" and [p.name for p in tmp_path.iterdir()] == ["ds"]  # no .ds.lock


def test_data_refuses_a_folder_whose_files_only_carry_our_names(tiny_midi_dir, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "manifest.json").write_text('{"my": "notes"}')
    (mine / "vocab.json").write_text("{}")
    before = snapshot(tmp_path)
    err = one_line_refusal(capsys, main(["data", "-d", str(tiny_midi_dir), "-o", str(mine)]))
    assert "not a musesynth dataset" in err and "--overwrite" not in err
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------- smaller points
def test_data_into_the_current_folder_is_refused_and_leaves_nothing(tiny_midi_dir, tmp_path, monkeypatch, capsys):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    one_line_refusal(capsys, main(["data", "-d", str(tiny_midi_dir), "-o", "."]))
    assert snapshot(tmp_path) == {"here": "dir"}  # no ..lock, no ..old.XXXX


def test_data_through_a_symlink_keeps_the_link(tiny_midi_dir, tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    for _ in range(2):
        assert main(["data", "-d", str(tiny_midi_dir), "-o", str(link), "--workers", "1"]) == 0
        assert link.is_symlink() and os.readlink(link) == str(target)
        assert marker_kind(target) == "dataset" and (target / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "target"]


def test_data_reports_midi_names_that_are_not_files(tiny_midi_dir, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for f in sorted(tiny_midi_dir.rglob("*.mid"))[:3]:
        (src / f.name).write_bytes(f.read_bytes())
    os.mkfifo(tmp_path / "fifo")
    (src / "fifo.mid").symlink_to(tmp_path / "fifo")
    (src / "null.mid").symlink_to("/dev/null")
    (src / "dangling.mid").symlink_to(tmp_path / "nowhere")
    (src / "x.mid").mkdir()
    assert main(["data", "-d", str(src), "-o", str(tmp_path / "ds"), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    for name, why in [("fifo.mid", "FIFO"), ("null.mid", "device"), ("dangling.mid", "dangling"),
                      ("x.mid", "folder")]:
        assert any(line.strip().startswith(f"skipped {name}: ") and why in line for line in out.splitlines()), out
    assert "files found 7, used 3, skipped 4" in out


@pytest.mark.parametrize("bars", ["３", "１-２", "2-３", "٣"])
def test_bars_take_ascii_digits_only(bars, capsys):
    from musesynth.errors import MusesynthError
    from musesynth.generate.infill import parse_bars

    with pytest.raises(MusesynthError, match="^bars must be bar numbers"):
        parse_bars(bars)
    assert parse_bars(" 3 - 4 ") == (2, 4)


def test_infill_refuses_fullwidth_bars_in_one_line(capsys):
    err = one_line_refusal(capsys, main(["infill", "-c", "nowhere", "--input", "nothing.mid", "--bars", "３"]))
    assert "--bars must be bar numbers" in err


def test_ablate_refuses_a_folder_holding_a_file_named_results_json(tiny_dataset, tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "results.json").write_text('{"mine": 1}')
    (notes / "report.md").write_text("my report")
    before = snapshot(tmp_path)
    err = one_line_refusal(capsys, main(["ablate", "-d", str(tiny_dataset), "--budget-tokens", "10", "--report",
                                         str(notes)]))
    assert "not an earlier report" in err and "--overwrite" not in err
    assert snapshot(tmp_path) == before


def test_a_report_folder_is_claimed_with_the_marker(tmp_path, capsys):
    from musesynth.errors import MusesynthError
    from musesynth.outputs import check_report_dir

    report = tmp_path / "report"
    check_report_dir(report, "results.json")
    assert marker_kind(report) == "report"
    (report / "samples").symlink_to(tmp_path)
    with pytest.raises(MusesynthError, match="samples as a symlink"):
        check_report_dir(report, "results.json")


def test_evaluate_json_never_replaces_a_link_or_a_users_json(tmp_path, capsys):
    from musesynth.errors import MusesynthError
    from musesynth.outputs import check_replaceable_json

    mine = tmp_path / "mine.json"
    mine.write_text('{"my": 1}')
    link = tmp_path / "link.json"
    link.symlink_to(mine)
    for path in (mine, link):
        with pytest.raises(MusesynthError, match="not a (file|result) musesynth wrote"):
            check_replaceable_json(path, "--json", "model_metrics")
    ours = tmp_path / "ours.json"
    ours.write_text('{"model_metrics": {}}')
    check_replaceable_json(ours, "--json", "model_metrics")
    check_replaceable_json(tmp_path / "new.json", "--json", "model_metrics")


def test_export_through_a_symlink_keeps_the_link_and_never_over_the_current_folder(run, tmp_path, monkeypatch,
                                                                                  capsys):
    target = tmp_path / "target"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    assert main(["export", "-c", str(run), "-o", str(link)]) == 0
    assert link.is_symlink() and marker_kind(target) == "export" and (target / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "target"]
    monkeypatch.chdir(target)
    before = snapshot(tmp_path)
    err = one_line_refusal(capsys, main(["export", "-c", str(run), "-o", ".", "--overwrite"]))
    assert "current folder" in err
    assert snapshot(tmp_path) == before


def test_generate_overwrite_replaces_only_its_own_pieces(run, tmp_path, capsys):
    """--overwrite replaces an earlier piece of ours; a user's file, link, folder or FIFO that only carries a
    piece's name is kept as it was, and the new piece takes a free name instead."""
    out = tmp_path / "gen"
    args = ["generate", "-c", str(run), "-n", "8", "-s", "1", "--no-wav", "--no-png", "-q", "-o", str(out),
            "--overwrite"]
    assert main(args) == 0
    ours = sorted(p.name for p in out.iterdir())
    stem = ours[0].rsplit(".", 1)[0]
    assert main(args) == 0 and sorted(p.name for p in out.iterdir()) == ours  # our own piece: replaced in place
    (tmp_path / "mine.txt").write_text("precious")
    (tmp_path / "mydir").mkdir()
    for what in ("file", "link", "dir-link", "dangling", "folder", "fifo"):
        target = tmp_path / what
        target.mkdir()
        mid, side = target / f"{stem}.mid", target / f"{stem}.json"
        if what == "file":
            mid.write_text("my own piece")
            side.write_text('{"mine": 1}')
        elif what == "link":
            mid.symlink_to(tmp_path / "mine.txt")
        elif what == "dir-link":
            side.symlink_to(tmp_path / "mydir")
        elif what == "dangling":
            mid.symlink_to(tmp_path / "nowhere")
        elif what == "folder":
            mid.mkdir()
            (mid / "work.txt").write_text("mine")
        else:
            os.mkfifo(mid)
        before = snapshot(target) if what != "fifo" else None
        assert main([*args[:-2], str(target), "--overwrite"]) == 0, capsys.readouterr().err
        if what == "fifo":
            assert mid.is_fifo()
        else:
            after = snapshot(target)
            assert {k: v for k, v in after.items() if k in before} == before, what
        assert (target / f"{stem}-2.mid").is_file(), what
    assert (tmp_path / "mine.txt").read_text() == "precious" and not any((tmp_path / "mydir").iterdir())


def test_generate_overwrite_keeps_a_piece_the_user_edited_in_place(run, tmp_path, capsys):
    """Our sidecar records each file's fingerprint: a MIDI file saved over in a DAW, a PNG the user put beside
    the piece, or a sidecar from before fingerprints makes the piece the user's, and --overwrite writes a new
    name. Over an unchanged piece of ours, its PNG that the new piece does not have is removed with it."""
    def fresh(name: str) -> tuple[list[str], Path, str]:
        out = tmp_path / name
        args = ["generate", "-c", str(run), "-n", "8", "-s", "1", "--no-wav", "-q", "-o", str(out), "--overwrite"]
        assert main(args) == 0, capsys.readouterr().err
        return args, out, next(out.glob("*.mid")).name[:-4]

    args, out, stem = fresh("stale")
    assert set(json.loads((out / f"{stem}.json").read_text())["sha256"]) == {".mid", ".png"}
    assert main([*args, "--no-png"]) == 0  # ours, unchanged: replaced, its PNG too
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}.json", f"{stem}.mid"]

    for case in ("edited", "user's png", "legacy"):
        args, out, stem = fresh(case)
        if case == "edited":
            (out / f"{stem}.mid").write_bytes((out / f"{stem}.mid").read_bytes() + b"\0")
        elif case == "user's png":
            side = json.loads((out / f"{stem}.json").read_text())
            del side["sha256"][".png"]
            (out / f"{stem}.json").write_text(json.dumps(side))
        else:
            side = json.loads((out / f"{stem}.json").read_text())
            del side["sha256"]
            (out / f"{stem}.json").write_text(json.dumps(side))
        before = snapshot(out)
        assert main([*args, "--no-png"]) == 0, case
        assert {k: v for k, v in snapshot(out).items() if k in before} == before, case
        assert (out / f"{stem}-2.mid").is_file(), case


def test_two_primers_of_one_stem_never_overwrite_each_others_piece(run, tiny_midi_dir, tmp_path, capsys):
    """tune.mid and tune.midi give pieces of one name: with --overwrite the second takes a free name instead of
    replacing the first's piece written moments before in the same run."""
    src = tmp_path / "primers"
    src.mkdir()
    first = sorted(tiny_midi_dir.rglob("*.mid"))[0].read_bytes()
    (src / "tune.mid").write_bytes(first)
    (src / "tune.midi").write_bytes(first)
    out = tmp_path / "two"
    assert main(["generate", "-c", str(run), "-n", "8", "-s", "1", "--no-wav", "--no-png", "-q", "-o", str(out),
                 "--primer", str(src), "--overwrite"]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.mid")) == ["tune_gru_seed1_0-2.mid", "tune_gru_seed1_0.mid"]


def test_generate_overwrite_never_writes_over_a_primer_it_reads(run, tiny_midi_dir, tmp_path, capsys):
    """An earlier piece of ours that is also one of this run's primers is input: --overwrite gives the new piece
    a free name instead of replacing a file the run reads (output over input, never)."""
    out = tmp_path / "pd"
    (out / "sub").mkdir(parents=True)
    tune = out / "sub" / "tune.mid"
    tune.write_bytes(sorted(tiny_midi_dir.rglob("*.mid"))[0].read_bytes())
    base = ["generate", "-c", str(run), "-n", "8", "-s", "1", "--no-wav", "--no-png", "-q", "-o", str(out)]
    assert main([*base, "--primer", str(tune)]) == 0
    earlier = out / "tune_gru_seed1_0.mid"
    before = earlier.read_bytes()
    # the folder's primers: sub/tune.mid and the earlier piece; tune's new piece has the earlier piece's name
    assert main([*base, "--primer", str(out), "-t", "1.5", "--overwrite"]) == 0, capsys.readouterr().err
    assert earlier.read_bytes() == before
    assert (out / "tune_gru_seed1_0-2.mid").is_file()
