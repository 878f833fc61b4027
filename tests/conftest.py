"""Shared fixtures: tiny MIDI files made here, and a small slice of the embedded music21 corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import symusic


def make_score(
    notes: list[tuple[int, int, int]] | np.ndarray,
    tpq: int = 480,
    tempos: list[tuple[int, float]] | None = None,
    program: int = 0,
    drum: bool = False,
) -> symusic.Score:
    """A one-track score from (onset_tick, duration_tick, pitch) triples."""
    arr = np.asarray(notes, dtype=np.int64).reshape(-1, 3)
    score = symusic.Score(tpq)
    track = symusic.Track(name="t", program=program, is_drum=drum)
    track.notes = symusic.Note.from_numpy(
        time=arr[:, 0].astype(np.int32), duration=arr[:, 1].astype(np.int32),
        pitch=arr[:, 2].astype(np.int8), velocity=np.full(len(arr), 90, np.int8),
    )
    score.tracks.append(track)
    for t, bpm in tempos or [(0, 120.0)]:
        score.tempos.append(symusic.Tempo(t, bpm))
    return score


def scale_melody(seed: int, n: int = 64) -> list[tuple[int, int, int]]:
    """A random diatonic line with chords, on a 1/4-beat grid (480 tpq)."""
    rng = np.random.default_rng(seed)
    scale = np.array([0, 2, 4, 5, 7, 9, 11])
    out, t = [], 0
    for _ in range(n):
        base = 48 + 12 * int(rng.integers(0, 3)) + int(scale[rng.integers(0, 7)])
        dur = int(rng.choice([120, 240, 480]))
        out.append((t, dur, base))
        if rng.random() < 0.4:
            out.append((t, dur, base + 4))
        t += dur
    return out


@pytest.fixture(scope="session")
def tiny_midi_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 small synthetic pieces in nested folders (mixed-case suffixes)."""
    root = tmp_path_factory.mktemp("tiny_midi")
    for i in range(12):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(exist_ok=True)
        suffix = ".MID" if i == 3 else ".midi" if i == 5 else ".mid"
        make_score(scale_melody(i, n=80)).dump_midi(str(sub / f"piece{i:02d}{suffix}"))
    return root


@pytest.fixture(scope="session")
def bach_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A slice of the embedded corpus: 16 real Bach chorales exported from music21."""
    from musesynth.data.corpus import export_corpus

    root = tmp_path_factory.mktemp("bach")
    export_corpus("bach", root, limit=16, workers=2, quiet=True)
    return root


@pytest.fixture(scope="session")
def bach_dataset(bach_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from musesynth.data.build import build_dataset

    out = tmp_path_factory.mktemp("ds") / "bach"
    build_dataset(bach_dir, out, workers=1, quiet=True)
    return out


@pytest.fixture(scope="session")
def tiny_dataset(tiny_midi_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from musesynth.data.build import build_dataset

    out = tmp_path_factory.mktemp("ds") / "tiny"
    build_dataset(tiny_midi_dir, out, workers=1, quiet=True)
    return out


@pytest.fixture(scope="session")
def studio_runs(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs folder holding one tiny GRU (a few steps on the tiny dataset): the studio's test model."""
    from musesynth.training.config import TrainConfig
    from musesynth.training.loop import train

    root = tmp_path_factory.mktemp("studio_runs")
    train(TrainConfig(dataset=str(tiny_dataset), model="gru", out_dir=str(root), run_name="tiny-gru", seq_len=32,
                      embed_dim=16, hidden_dim=32, num_layers=1, batch_size=8, max_steps=5, lr=3e-3, warmup_steps=1,
                      tensorboard=False, quiet=True, patience=0))
    return root


@pytest.fixture(scope="session")
def control_runs(tiny_midi_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs folder holding one tiny GRU on the meter encoding with composer (bach, palestrina) and infill
    tokens: the studio's test model for its controls and for rewriting bars."""
    import json

    from musesynth.data.build import build_dataset
    from musesynth.data.files import find_midi_files
    from musesynth.training.config import TrainConfig
    from musesynth.training.loop import train

    root = tmp_path_factory.mktemp("control_runs")
    files = [p.relative_to(tiny_midi_dir).as_posix() for p in find_midi_files(tiny_midi_dir)]
    (root / "who.json").write_text(json.dumps({f: "bach" if i % 2 else "palestrina" for i, f in enumerate(files)}))
    build_dataset(tiny_midi_dir, root / "ds", encoding="meter", params={"infill": True}, workers=1, quiet=True,
                  composers=str(root / "who.json"))
    train(TrainConfig(dataset=str(root / "ds"), model="gru", out_dir=str(root / "runs"), run_name="tiny-infill",
                      seq_len=128, embed_dim=16, hidden_dim=32, num_layers=1, batch_size=8, max_steps=5, lr=3e-3,
                      warmup_steps=1, tensorboard=False, quiet=True, patience=0))
    return root / "runs"


def serve_studio(runs: Path, corpus: Path, out: Path):
    """A studio on a free port of 127.0.0.1, serving from a thread; yields (url, studio)."""
    import threading

    from musesynth.studio.catalog import Corpus
    from musesynth.studio.server import Studio, StudioServer

    studio = Studio(out, runs, Corpus(corpus, out / "corpus"), device="cpu")
    server = StudioServer(studio, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.url, studio
    server.shutdown()
    server.server_close()


@pytest.fixture
def studio_url(studio_runs: Path, tiny_midi_dir: Path, tmp_path: Path):
    """The studio with the tiny chord-encoding GRU (run/tiny-gru)."""
    yield from serve_studio(studio_runs, tiny_midi_dir, tmp_path / "studio")


@pytest.fixture
def control_url(control_runs: Path, tiny_midi_dir: Path, tmp_path: Path):
    """The studio with the tiny composer + infill GRU (run/tiny-infill)."""
    yield from serve_studio(control_runs, tiny_midi_dir, tmp_path / "studio")


@pytest.fixture(scope="session")
def parts_run(bach_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model of the shipped parts model's encoding (4 voices, extra parts dropped, infill tokens), trained
    a few steps with melody-first and fill-in-the-middle windows: it harmonises and rewrites chosen voices."""
    from musesynth.data.build import build_dataset
    from musesynth.training.config import TrainConfig
    from musesynth.training.loop import train

    root = tmp_path_factory.mktemp("parts")
    build_dataset(bach_dir, root / "ds", encoding="parts", workers=1, quiet=True,
                  params={"max_parts": 4, "drop_extra_parts": True, "infill": True})
    train(TrainConfig(dataset=str(root / "ds"), model="gru", out_dir=str(root), seq_len=128, embed_dim=32,
                      hidden_dim=64, num_layers=1, batch_size=16, lr=3e-3, max_steps=30, warmup_steps=2,
                      melody_first=0.4, fim_rate=0.3, tensorboard=False, quiet=True, patience=0))
    return root / "gru"
