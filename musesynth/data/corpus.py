"""The embedded default corpus: real classical scores shipped inside the music21 wheel, exported to
MIDI once, so everything runs offline (no data set is ever downloaded at run time).

Besides notes, tempo, key and time signature (written by music21), the export keeps two things
music21's MIDI writer drops, so that meter-aware encodings can read them back:
- **Fermatas** become MIDI marker events with the text ``fermata`` at the onset of every note or
  chord that carries one (several voices with a fermata at one onset give one marker).
- **Pickup bars** (an anacrusis: a first measure shorter than its time signature, i.e. music21's
  ``paddingLeft``) become a time signature as long as the pickup at tick 0 (1/4 for a one-beat
  upbeat in 4/4), followed by the real one where the first full bar starts. Note times are unchanged.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from musesynth.atomic import atomic_write, atomic_write_json
from musesynth.errors import MusesynthError
from musesynth.outputs import check_replaceable_json
from musesynth.ownership import read_json

# name -> music21 composer directories. 'bach' is the default: 433 four-part chorales.
CORPORA: dict[str, tuple[str, ...]] = {
    "bach": ("bach",),
    "beethoven": ("beethoven",),
    "mozart": ("mozart",),
    "haydn": ("haydn",),
    "palestrina": ("palestrina",),
    "monteverdi": ("monteverdi",),
    "classical": ("bach", "palestrina", "monteverdi", "beethoven", "mozart", "haydn"),
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


def corpus_pieces(name: str) -> dict[str, Path]:
    """``{"bach/bwv1.6.mid": score source}``: one MIDI name per piece (a chorale can ship as .mxl and .krn;
    MusicXML wins, music21 reads it best)."""
    by_name: dict[str, Path] = {}
    for p in sorted(corpus_paths(name), key=lambda p: (SCORE_SUFFIXES.index(p.suffix.lower()), str(p))):
        by_name.setdefault(_out_name(p), p)
    return by_name


def export_piece(src: Path, dst: Path) -> Path:
    """One corpus score as a MIDI file (what `musesynth corpus` writes for it); a failure is a one-line error."""
    _, err = _export_one((str(src), str(dst)))
    if err:
        raise MusesynthError(f"cannot export {src.name} from the corpus: {err}")
    return dst


def _out_name(path: Path) -> str:
    """.../corpus/bach/bwv1.6.mxl -> bach/bwv1.6.mid; .../corpus/beethoven/opus18no1/movement1.mxl ->
    beethoven/opus18no1_movement1.mid: the first folder is always the composer (``musesynth data`` reads
    it as the piece's composer)."""
    parts = path.parts
    if "corpus" not in parts[:-2]:
        return f"{path.parent.name}/{path.stem}.mid"
    i = len(parts) - 1 - parts[::-1].index("corpus")
    rest = [*parts[i + 2 : -1], path.stem]
    return f"{parts[i + 1]}/{'_'.join(rest)}.mid"


def fermata_offsets(score: Any) -> list[float]:
    """Offsets (quarter notes from the start) of the notes and chords of a music21 score with a fermata."""
    from music21 import expressions

    return sorted({
        float(n.offset) for n in score.flatten().notes
        if any(isinstance(e, expressions.Fermata) for e in n.expressions)
    })


def pickup_signature(score: Any) -> tuple[float, int, int] | None:
    """``(length_in_quarters, numerator, denominator)`` of the pickup bar of a music21 score, or None."""
    parts = getattr(score, "parts", None)
    if not parts:
        return None
    measures = parts[0].getElementsByClass("Measure")
    if not measures:
        return None
    first = measures[0]
    pad = float(first.paddingLeft or 0.0)
    bar = float(first.barDuration.quarterLength)
    length = bar - pad
    if pad <= 0 or length <= 0:
        return None
    for den in (4, 8, 16, 32):  # smallest denominator that writes the pickup length exactly
        num = length * den / 4
        if abs(num - round(num)) < 1e-9 and 1 <= round(num) <= 255:
            return length, int(round(num)), den
    return None


def write_score_midi(score: Any, path: str) -> None:
    """music21 score -> MIDI file at ``path``, with fermata markers and the pickup time signature added."""
    import symusic

    score.write("midi", fp=path)
    from musesynth.tokenize.midi_io import one_signature_per_tick

    midi = one_signature_per_tick(symusic.Score.from_midi(Path(path).read_bytes()))  # temp name: no .mid suffix
    tpq = midi.ticks_per_quarter
    for off in fermata_offsets(score):
        midi.markers.append(symusic.TextMeta(int(round(off * tpq)), "fermata"))
    pickup = pickup_signature(score)
    if pickup is not None:
        length, num, den = pickup
        tick = int(round(length * tpq))
        sigs = [(t.time, t.numerator, t.denominator) for t in midi.time_signatures]
        at_zero = [s for s in sigs if s[0] == 0]
        if at_zero:  # the real signature moves to the first full bar
            real = [(tick, at_zero[-1][1], at_zero[-1][2])]
            rest = [s for s in sigs if s[0] > tick]
            midi.time_signatures = [symusic.TimeSignature(t, n, d) for t, n, d in [(0, num, den), *real, *rest]]
    Path(path).write_bytes(midi.dumps_midi())


def _export_one(job: tuple[str, str]) -> tuple[str, str | None]:
    src, dst = job
    try:
        from music21 import converter

        score = converter.parse(src)
        atomic_write(dst, lambda tmp: write_score_midi(score, tmp))
        return src, None
    except Exception as exc:  # music21 raises many types on odd scores; report and go on
        return src, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


MARKER = ".musesynth-corpus.json"  # written when an export has run to its end: the folder is complete
# music21 parse + MIDI write, per core, measured on one score of each composer: MusicXML 48-305 KB/s of
# uncompressed XML (a .mxl is a zip: its packed size says little), Humdrum **kern 3 KB/s. A rough guide, for
# the first estimate and the progress bar's weights; the bar's ETA then follows the real pace.
XML_BYTES_PER_S, KERN_BYTES_PER_S = 130_000, 3_000


def corpus_complete(out_dir: str | Path, name: str = "bach") -> bool:
    """Did a full export of ``name`` (no --limit, no --per-composer) run to its end into ``out_dir``?"""
    d = read_json(Path(out_dir) / MARKER, 2**16)  # a plain file of ours only: never a FIFO or a link
    return isinstance(d, dict) and d.get("corpus") == name and d.get("limit") is None \
        and d.get("per_composer") is None


def select_scores(name: str, limit: int | None, per_composer: int | None) -> list[Path]:
    """The scores of ``name``: at most ``per_composer`` of each composer (the first by name), then ``limit``."""
    paths = sorted(corpus_pieces(name).values())
    if per_composer:
        seen: Counter[str] = Counter()
        kept = []
        for p in paths:
            seen[_out_name(p).split("/")[0]] += 1
            if seen[_out_name(p).split("/")[0]] <= per_composer:
                kept.append(p)
        paths = kept
    return paths[:limit] if limit else paths


def export_corpus(
    name: str, out_dir: str | Path, limit: int | None = None, workers: int | None = None, quiet: bool = False,
    per_composer: int | None = None,
) -> dict[str, int]:
    """Export (once: existing files are kept) the named corpus as .mid files under ``out_dir``, at most
    ``per_composer`` scores of each composer (the first by name: a balanced multi-composer set).

    Scores go to a process pool one at a time, largest first (a quartet movement takes 30 s, a chorale 1 s:
    big ones last would leave one core busy alone at the end); the progress bar and its ETA weigh each score
    by its expected time (``_work``), which tracks the time far better than the number of scores."""
    out = Path(out_dir)
    # the marker is rewritten at the end: a file of that name that is not our record is the user's, and kept
    check_replaceable_json(out / MARKER, "corpus folder's marker", "corpus")
    if not quiet:
        print(f"export {name}: finding its scores in music21's corpus", flush=True)
    paths = select_scores(name, limit, per_composer)
    jobs = sorted(((str(p), str(out / _out_name(p))) for p in paths if not os.path.lexists(out / _out_name(p))),
                  key=lambda j: -_work(Path(j[0])))
    failed: list[tuple[str, str]] = []
    if jobs:
        workers = min(workers or len(os.sched_getaffinity(0)), len(jobs))
        failed = _run_jobs(name, jobs, workers, quiet)
    for src, err in failed:
        print(f"  skipped {Path(src).name}: {err}")
    atomic_write_json(out / MARKER, {"corpus": name, "limit": limit, "per_composer": per_composer,
                                     "scores": len(paths), "failed": [Path(s).name for s, _ in failed]})
    return {"scores": len(paths), "exported": len(jobs) - len(failed), "failed": len(failed),
            "kept": len(paths) - len(jobs)}


def _run_jobs(name: str, jobs: list[tuple[str, str]], workers: int, quiet: bool) -> list[tuple[str, str]]:
    sizes = {src: _work(Path(src)) for src, _ in jobs}
    total = sum(sizes.values())
    if not quiet:
        print(f"export {name}: {len(jobs)} scores on {workers} process{'es' if workers > 1 else ''}, roughly "
              f"{_duration(total / workers)} (the bar's ETA follows the real pace)", flush=True)
    failed: list[tuple[str, str]] = []
    bar = tqdm(total=total, desc=f"export {name} 0/{len(jobs)} scores", disable=quiet,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_worker_signals)
    try:
        for done, (src, err) in enumerate(pool.imap_unordered(_export_one, jobs), start=1):
            if err:
                failed.append((src, err))
            bar.set_description_str(f"export {name} {done}/{len(jobs)} scores", refresh=False)
            bar.update(sizes[src])
        pool.close()
    except BaseException:  # Ctrl-C / SIGTERM: each worker removes the temp file of the score it was writing
        pool.terminate()
        raise
    finally:
        bar.close()
        pool.join()
    return sorted(failed)


def _work(path: Path) -> float:
    """About how many seconds music21 takes over a score, from its (uncompressed) size and format."""
    try:
        if path.suffix.lower() == ".mxl":
            with zipfile.ZipFile(path) as z:
                size = sum(i.file_size for i in z.infolist() if not i.filename.startswith("META-INF"))
        else:
            size = path.stat().st_size
    except (OSError, zipfile.BadZipFile):
        return 1.0
    return size / (KERN_BYTES_PER_S if path.suffix.lower() == ".krn" else XML_BYTES_PER_S)


def _worker_signals() -> None:
    """Ctrl-C reaches the whole process group: the parent alone handles it and stops the workers with SIGTERM,
    which unwinds a worker (SystemExit: it ends quietly) so that its atomic write deletes its temp file."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _unwind)


def _unwind(*_: Any) -> None:
    raise SystemExit(1)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
