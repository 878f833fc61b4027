"""`musesynth demo` on a fresh clone: the shipped model's piece comes first, before the corpus export, and
a demo that refuses its options writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from musesynth.cli import main
from musesynth.data import corpus
from musesynth.training.shipped import DEFAULT_MODEL, is_shipped

pytestmark = pytest.mark.skipif(not is_shipped(DEFAULT_MODEL), reason="no shipped model in the package")


class Stop(Exception):
    """Ends the demo right after the hook (no dataset, no training in this test)."""


def test_the_shipped_piece_is_written_before_the_corpus_export_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # an empty working folder: no corpus exported yet
    seen: dict[str, list[str]] = {}

    def export_hook(name, out_dir, **kw):
        seen["at_export"] = sorted(p.name for p in (tmp_path / "generated").iterdir())
        seen["corpus"] = [name, str(out_dir)]
        raise Stop

    monkeypatch.setattr(corpus, "export_corpus", export_hook)
    with pytest.raises(Stop):
        main(["demo", "--length", "24"])
    names = seen["at_export"]
    assert seen["corpus"] == ["bach", "data/bach_midi"]
    assert any(n.endswith(".mid") for n in names) and any(n.endswith(".png") for n in names), names
    out = capsys.readouterr().out
    assert out.index("[1/5] a new piece from the shipped model") < out.index("[2/5] exporting the embedded Bach")


def test_an_exported_corpus_is_reused_without_a_new_export(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    done = tmp_path / "data" / "bach_midi"
    done.mkdir(parents=True)
    (done / corpus.MARKER).write_text('{"corpus": "bach", "limit": null, "per_composer": null}')
    monkeypatch.setattr(corpus, "export_corpus", lambda *a, **k: pytest.fail("exported again"))
    assert main(["demo", "--length", "8", "--minutes", "0.01"]) == 2  # no MIDI files in it: refused at the dataset
    out, err = capsys.readouterr()
    assert "no .mid/.midi files found" in err
    assert "[2/4] dataset datasets/bach_midi" in out and "exporting" not in out


@pytest.mark.parametrize("argv, message", [
    (["--midi-dir", "nope"], "MIDI folder not found: nope"),
    (["--dataset", "mine"], "not a musesynth dataset"),
    (["-o", "FILE"], "is a file"),
    (["--seed", "-1"], "--seed"),
    (["--length", "0"], "--length"),
])
def test_a_refused_demo_writes_nothing(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("years of work")
    (tmp_path / "FILE").write_text("a user's file")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert main(["demo", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


def test_corpus_complete_reads_the_marker_of_a_full_export(tmp_path):
    assert not corpus.corpus_complete(tmp_path)
    (tmp_path / corpus.MARKER).write_text('{"corpus": "bach", "limit": 16, "per_composer": null}')
    assert not corpus.corpus_complete(tmp_path)  # a --limit export is not the whole corpus
    (tmp_path / corpus.MARKER).write_text('{"corpus": "bach", "limit": null, "per_composer": null}')
    assert corpus.corpus_complete(tmp_path) and not corpus.corpus_complete(tmp_path, "classical")


@pytest.mark.parametrize("content", ["my notes, not JSON\n", '{"title": "a JSON file of mine"}'])
def test_an_export_keeps_a_users_file_named_like_its_marker(tmp_path, capsys, content):
    """The marker is told by what it holds, not by its name: a user's file so named is refused, not replaced."""
    (tmp_path / corpus.MARKER).write_text(content)
    assert main(["corpus", "--limit", "1", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not a result musesynth wrote" in err and err.count("\n") == 1, err
    assert (tmp_path / corpus.MARKER).read_text() == content and len(list(tmp_path.iterdir())) == 1


def test_an_export_writes_its_marker_and_keeps_what_is_there(bach_dir: Path):
    assert (bach_dir / corpus.MARKER).is_file() and not corpus.corpus_complete(bach_dir)  # limit=16
