"""The corpus export on a process pool: an interrupted export leaves no temp file and no worker behind, and
scores are weighed by their expected time (the first estimate, the order, the progress bar)."""

from __future__ import annotations

import multiprocessing
import time
import zipfile
from pathlib import Path

import pytest

from musesynth.atomic import atomic_write
from musesynth.data import corpus


def _fake_export(job: tuple[str, str]) -> tuple[str, str | None]:
    src, dst = job
    if Path(src).stem == "slow":  # still writing when the export is stopped
        atomic_write(dst, lambda tmp: (Path(dst).with_name("started").touch(), time.sleep(60)))
    else:
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        Path(dst).write_bytes(b"MThd")
    return src, None


class _StoppedBar:
    """A progress bar whose first update is Ctrl-C, once the slow score has its temp file."""

    def __init__(self, *a, **k) -> None:
        pass

    def update(self, n: float) -> None:
        deadline = time.monotonic() + 30
        while not any(_OUT.glob("*/started")) and time.monotonic() < deadline:
            time.sleep(0.05)
        raise KeyboardInterrupt

    def set_description_str(self, *a, **k) -> None:
        pass

    def close(self) -> None:
        pass


_OUT = Path()


def test_an_interrupted_export_removes_its_temp_files_and_stops_its_workers(tmp_path, monkeypatch):
    global _OUT
    _OUT = tmp_path / "out"
    scores = tmp_path / "scores" / "bach"
    scores.mkdir(parents=True)
    for name in ("slow", "fast"):
        (scores / f"{name}.krn").write_text("**kern\n" * (400 if name == "slow" else 1))
    monkeypatch.setattr(corpus, "select_scores", lambda *a: sorted(scores.iterdir()))
    monkeypatch.setattr(corpus, "_export_one", _fake_export)
    monkeypatch.setattr(corpus, "tqdm", _StoppedBar)
    with pytest.raises(KeyboardInterrupt):
        corpus.export_corpus("bach", _OUT, workers=2, quiet=True)
    left = [p.name for p in _OUT.rglob("*") if p.is_file()]
    assert any(n == "started" for n in left)  # the slow score was being written when Ctrl-C came
    assert not [n for n in left if n.endswith(".tmp")], left
    assert not multiprocessing.active_children()
    assert not corpus.corpus_complete(_OUT)  # no marker: the next demo exports the rest


def test_scores_are_weighed_by_format_and_unpacked_size(tmp_path):
    packed = tmp_path / "big.mxl"
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("META-INF/container.xml", "<x/>")
        z.writestr("big.xml", "<note/>" * 100_000)  # 700 KB of XML, a few KB packed
    kern = tmp_path / "small.krn"
    kern.write_text("4c\n" * 1000)
    assert packed.stat().st_size < 10_000
    assert corpus._work(packed) == pytest.approx(700_000 / corpus.XML_BYTES_PER_S)
    assert corpus._work(kern) == pytest.approx(3000 / corpus.KERN_BYTES_PER_S)
    assert corpus._work(tmp_path / "gone.mxl") == 1.0


def test_a_dangling_link_named_like_a_score_is_kept(tmp_path):
    """'files already there are kept' holds for a user's dangling symlink too: it was replaced by the score."""
    from musesynth.data.corpus import export_corpus

    first = tmp_path / "first"
    export_corpus("bach", first, limit=1, workers=1, quiet=True)
    name = next(p for p in first.rglob("*.mid")).relative_to(first)
    out = tmp_path / "out"
    (out / name).parent.mkdir(parents=True)
    (out / name).symlink_to(tmp_path / "nowhere")
    export_corpus("bach", out, limit=1, workers=1, quiet=True)
    assert (out / name).is_symlink() and str((out / name).readlink()) == str(tmp_path / "nowhere")
