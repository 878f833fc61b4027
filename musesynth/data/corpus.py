"""The embedded default corpus: real classical scores shipped inside the music21 wheel, exported to
MIDI once, so everything runs offline (no data set is ever downloaded at run time)."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from musesynth.atomic import atomic_write
from musesynth.errors import MusesynthError

# name -> music21 composer directories. 'bach' is the default: 433 four-part chorales.
CORPORA: dict[str, tuple[str, ...]] = {
    "bach": ("bach",),
    "beethoven": ("beethoven",),
    "mozart": ("mozart",),
    "haydn": ("haydn",),
    "palestrina": ("palestrina",),
    "monteverdi": ("monteverdi",),
    "classical": ("bach", "beethoven", "mozart", "haydn"),
}
DEFAULT_CORPUS_DIR = "data/bach_midi"  # where `musesynth corpus` and `make demo` put the Bach chorales
SCORE_SUFFIXES = [".mxl", ".musicxml", ".xml", ".krn", ".abc", ".mid", ".midi"]  # in order of preference


def corpus_paths(name: str) -> list[Path]:
    if name not in CORPORA:
        raise MusesynthError(f"unknown corpus '{name}' (choose from: {', '.join(CORPORA)})")
    from music21 import corpus

    paths: list[Path] = []
    for composer in CORPORA[name]:
        paths += [Path(p) for p in corpus.getComposer(composer) if Path(p).suffix.lower() in SCORE_SUFFIXES]
    return sorted(set(paths))


def _out_name(path: Path) -> str:
    # music21 paths look like .../corpus/bach/bwv1.6.mxl -> bach/bwv1.6.mid
    return f"{path.parent.name}/{path.stem}.mid"


def _export_one(job: tuple[str, str]) -> tuple[str, str | None]:
    src, dst = job
    try:
        from music21 import converter

        score = converter.parse(src)
        atomic_write(dst, lambda tmp: score.write("midi", fp=tmp))
        return src, None
    except Exception as exc:  # music21 raises many types on odd scores; report and go on
        return src, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def export_corpus(
    name: str, out_dir: str | Path, limit: int | None = None, workers: int | None = None, quiet: bool = False
) -> dict[str, int]:
    """Export (once: existing files are kept) the named corpus as .mid files under ``out_dir``."""
    out = Path(out_dir)
    paths = corpus_paths(name)
    by_name: dict[str, Path] = {}
    # one MIDI per name: a chorale can ship as .mxl and .krn; MusicXML first (music21 reads it best)
    for p in sorted(paths, key=lambda p: (SCORE_SUFFIXES.index(p.suffix.lower()), str(p))):
        by_name.setdefault(_out_name(p), p)
    paths = sorted(by_name.values())[:limit] if limit else sorted(by_name.values())
    jobs = [(str(p), str(out / _out_name(p))) for p in paths if not (out / _out_name(p)).exists()]
    failed: list[tuple[str, str]] = []
    if jobs:
        workers = workers or os.cpu_count() or 1
        with ProcessPoolExecutor(max_workers=workers) as pool:
            it = pool.map(_export_one, jobs, chunksize=4)
            for src, err in tqdm(it, total=len(jobs), desc=f"export {name}", unit="score", disable=quiet):
                if err:
                    failed.append((src, err))
    for src, err in failed:
        print(f"  skipped {Path(src).name}: {err}")
    return {"scores": len(paths), "exported": len(jobs) - len(failed), "failed": len(failed),
            "kept": len(paths) - len(jobs)}
