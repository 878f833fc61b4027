"""The harmonisation benchmark (evaluate.harmonization, benchmarks/harmonize.py): its measures on known answers,
and one run end to end with the tiny parts model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from musesynth.evaluate.harmonization import BenchOptions, beat_match, over_four, run_benchmark
from musesynth.evaluate.music_stats import Piece

ROOT = Path(__file__).resolve().parents[1]


def piece(rows: list[tuple[float, float, int]]) -> Piece:
    a = np.asarray(rows, float)
    return Piece(a[:, 0], a[:, 1], a[:, 2].astype(np.int64))


def test_beat_match_compares_pitch_classes_sounding_on_each_beat():
    bach = piece([(0, 2, 60), (0, 2, 64), (0, 2, 67), (2, 2, 62), (2, 2, 65)])  # C major, then D-F
    same_octave_moved = piece([(0, 1, 48), (0, 2, 76), (0, 2, 55), (1, 1, 60), (2, 2, 74), (2, 2, 53)])
    assert beat_match(same_octave_moved, bach) == (4, 4)  # pitch classes, not octaves; every beat sounds
    wrong_third_beat = piece([(0, 2, 60), (0, 2, 64), (0, 2, 67), (2, 2, 62), (2, 2, 66)])
    assert beat_match(wrong_third_beat, bach) == (2, 4)
    assert over_four(piece([(0, 1, 60), (0, 1, 64), (0, 1, 67), (0, 1, 72), (0, 2, 48)])) == 0.5


def test_the_benchmark_keeps_every_melody_note_and_reports_each_measure(parts_run, tmp_path):
    r = run_benchmark(BenchOptions(str(parts_run), str(parts_run.parent / "ds"), limit=2, unconditioned=False,
                                   windows=(8,)), log=lambda _: None)
    h, n = r["harmonizations"], r["nll"]
    assert r["chorales"] >= 1 and h["pieces"] == r["chorales"]
    assert h["melody_exact"] == h["melody_notes"] > 0  # every soprano note comes out exactly
    assert h["most_sounding"] <= 4 and 0 <= h["beat_pitch_class_match"] <= 1
    assert n["atb_tokens"] > 0 and np.isfinite([n["per_token_melody_first"], n["per_16th_left_to_right"]]).all()
    assert r["voice_leading"]["generated"]["voices"] == "parts"
    assert "8" in r["classifier"]


def test_the_command_prints_the_table_and_writes_json(parts_run, tmp_path):
    out = tmp_path / "h.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "harmonize.py"), "-c", str(parts_run), "-d",
                           str(parts_run.parent / "ds"), "--limit", "1", "--windows", "8", "--no-unconditioned",
                           "--json", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "NLL of Bach's alto/tenor/bass given the soprano" in done.stdout
    assert json.loads(out.read_text())["harmonizations"]["melody_notes"] > 0
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "harmonize.py"), "-c", "musesynth/pretrained/bach",
                          "-d", str(parts_run.parent / "ds")], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "parts encoding" in bad.stderr


def test_splits_choose_the_chorales_harmonised_and_judged(parts_run):
    import pytest

    from musesynth.errors import MusesynthError

    ds = parts_run.parent / "ds"
    files = json.loads((ds / "manifest.json").read_text())["files"]
    want = sum(f["split"] in ("test", "val") for f in files)
    r = run_benchmark(BenchOptions(str(parts_run), str(ds), splits=("test", "val"), unconditioned=False,
                                   windows=(8,)), log=lambda _: None)
    assert r["chorales"] == want > sum(f["split"] == "test" for f in files) and r["splits"] == ["test", "val"]
    assert r["harmonizations"]["melody_exact"] == r["harmonizations"]["melody_notes"]
    with pytest.raises(MusesynthError, match="unknown split 'tset'"):
        run_benchmark(BenchOptions(str(parts_run), str(ds), splits=("tset",)), log=lambda _: None)
    for twice_or_none in [("test", "test"), ()]:  # the same chorale on both sides of the classifier, or nothing
        with pytest.raises(MusesynthError, match="at most once, and at least one"):
            run_benchmark(BenchOptions(str(parts_run), str(ds), splits=twice_or_none), log=lambda _: None)
