"""Issue 20 item 8: `infill --input` and the studio's uploads read a MIDI file under the same per-file budget as
`musesynth data` (a worker with FILE_SECONDS and FILE_MEMORY, plus the token budget and silence caps), so a
silence bomb (ticks per quarter 1, notes far apart) is refused with one line instead of eating the machine.
The budget is lowered here so the bomb is small; the default budget refuses the issue's 2.5 MB file alike."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_score, scale_melody

from musesynth.cli import main
from musesynth.data import build

BUDGET = 64 * 2**20


def silence_bomb(notes: int) -> bytes:
    """Ticks per quarter 1, a short note every 100 quarters: each gap is capped to 64 beats of empty bars."""
    arr = np.stack([np.arange(notes) * 100, np.ones(notes, int), 60 + np.arange(notes) % 12], 1)
    return make_score(arr, tpq=1).dumps_midi()


@pytest.fixture
def small_budget(monkeypatch):
    monkeypatch.setattr(build, "FILE_MEMORY", BUDGET)


def test_infill_input_is_read_within_the_data_budget(control_runs, tmp_path, capsys, small_budget):
    bomb = tmp_path / "bomb.mid"
    bomb.write_bytes(silence_bomb(100_000))
    out = tmp_path / "out"
    rc = main(["infill", "-c", str(control_runs / "tiny-infill"), "--input", str(bomb), "--bars", "2-3",
               "-o", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "--input" in err and "cannot be used" in err, err
    assert "needed more than 0.0625 GiB of memory" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_infill_input_within_the_budget_still_works(control_runs, tmp_path, capsys, small_budget):
    piece = tmp_path / "piece.mid"
    make_score(scale_melody(4, 60)).dump_midi(str(piece))
    rc = main(["infill", "-c", str(control_runs / "tiny-infill"), "--input", str(piece), "--bars", "2",
               "-o", str(tmp_path / "out"), "--device", "cpu", "--no-wav", "--no-png"])
    assert rc == 0, capsys.readouterr().err
    assert len(list((tmp_path / "out").glob("piece_infill2-2_*.mid"))) == 1


def test_a_studio_upload_is_read_within_the_data_budget(control_url, small_budget):
    from test_studio import call

    url, studio = control_url
    headers = {"X-Filename": "bomb.mid", "X-Model": "run/tiny-infill", "Content-Type": "application/octet-stream"}
    status, answer = call(url, "/api/upload", silence_bomb(100_000), headers)
    assert status == 400 and answer["field"] == "primer", answer
    assert "bomb.mid: cannot use this file as a primer: needed more than 0.0625 GiB of memory" in answer["error"]
    assert studio.primers == {} and not any((studio.out_dir / "primers").iterdir())
    status, answer = call(url, "/api/upload", make_score(scale_melody(4, 60)).dumps_midi(), headers)
    assert status == 200 and answer["notes"] > 0
