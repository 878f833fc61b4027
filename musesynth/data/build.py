"""MIDI folder -> token dataset (layout in ``data/dataset.py``), written to a temp folder, then renamed
into place, so a killed run never leaves half a dataset."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from musesynth.atomic import atomic_replace_dir, atomic_write_json
from musesynth.data.dataset import Manifest, is_dataset
from musesynth.data.files import find_midi_files
from musesynth.data.split import SPLITS, assign_splits
from musesynth.errors import MidiReadError, MusesynthError
from musesynth.outputs import check_not_over_input, check_writable_dir
from musesynth.tokenize import encoding_from_vocab, get_encoding
from musesynth.tokenize.base import Encoding

_worker_encoding: dict[str, Encoding] = {}


def _encode_job(job: tuple[str, str]) -> tuple[np.ndarray | None, str | None]:
    path, vocab_json = job
    enc = _worker_encoding.get(vocab_json)
    if enc is None:
        enc = _worker_encoding[vocab_json] = encoding_from_vocab(json.loads(vocab_json))
    try:
        ids = enc.encode_file(path)
    except MidiReadError as exc:
        return None, str(exc)
    except Exception as exc:  # a library bug on an odd file must not stop the whole run
        return None, f"failed to tokenize: {type(exc).__name__}: {exc}"
    return ids.astype(np.uint16), None


def tokenize_files(files: list[Path], enc: Encoding, workers: int | None, quiet: bool) -> list[tuple]:
    """(ids or None, reason or None) per file, in the order given, on all cores."""
    vocab_json = enc.vocab.to_json()
    jobs = [(str(p), vocab_json) for p in files]
    workers = max(1, min(workers or os.cpu_count() or 1, len(files)))
    bar = dict(total=len(files), desc="tokenize", unit="file", disable=quiet)
    if workers == 1:
        return [_encode_job(j) for j in tqdm(jobs, **bar)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(_encode_job, jobs, chunksize=8), **bar))


def _write_splits(tmp: Path, used: dict[str, np.ndarray], split: dict[str, str]) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {}
    for s in SPLITS:
        names = [r for r in sorted(used) if split[r] == s]
        arrays = [used[r] for r in names]
        tokens = np.concatenate(arrays) if arrays else np.zeros(0, np.uint16)
        offsets = np.cumsum([0] + [a.size for a in arrays]).astype(np.int64)
        np.save(tmp / f"{s}.npy", tokens)
        np.save(tmp / f"{s}_offsets.npy", offsets)
        totals[s] = {"files": len(names), "tokens": int(tokens.size)}
    return totals


def check_dataset_target(out_dir: Path, midi_dir: Path) -> None:
    """The dataset folder may be new or an earlier dataset (replaced); anything else is the user's: refused."""
    check_not_over_input(out_dir, midi_dir, "dataset folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise MusesynthError(f"dataset folder {out_dir} is a file; choose a new folder name")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not is_dataset(out_dir):
        raise MusesynthError(f"{out_dir} already exists and is not a musesynth dataset (no manifest.json); "
                             f"choose a new folder: nothing in it is replaced")
    check_writable_dir(out_dir.parent, "dataset parent folder")


def build_dataset(
    midi_dir: str | Path,
    out_dir: str | Path,
    encoding: str = "chord",
    params: dict[str, Any] | None = None,
    workers: int | None = None,
    quiet: bool = False,
) -> Manifest:
    """Tokenize every MIDI file in parallel, split by file, and write the dataset atomically."""
    t0 = time.perf_counter()
    midi_dir, out_dir = Path(midi_dir), Path(out_dir)
    check_dataset_target(out_dir, midi_dir)
    files = find_midi_files(midi_dir)
    if not files:
        raise MusesynthError(f"no .mid/.midi files found in {midi_dir}")
    enc = get_encoding(encoding, **(params or {}))
    if len(enc.vocab) > np.iinfo(np.uint16).max:
        raise MusesynthError("vocabulary too large for uint16 storage")
    rels = [p.relative_to(midi_dir).as_posix() for p in files]
    results = tokenize_files(files, enc, workers, quiet)

    used = {r: ids for r, (ids, err) in zip(rels, results) if ids is not None}
    skipped = [{"file": r, "reason": err} for r, (ids, err) in zip(rels, results) if ids is None]
    if not used:
        reasons = "; ".join(f"{s['file']}: {s['reason']}" for s in skipped[:3])
        raise MusesynthError(f"no usable MIDI file in {midi_dir} ({len(skipped)} skipped: {reasons})")

    split = assign_splits(sorted(used))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        manifest = Manifest(
            source=str(midi_dir.resolve()), encoding=enc.name, encoding_params=enc.vocab.params,
            vocab_size=len(enc.vocab), vocab_fingerprint=enc.vocab.fingerprint, files_found=len(files),
            files_used=len(used), files_skipped=len(skipped), splits=_write_splits(tmp, used, split),
            files=[{"file": r, "split": split[r], "tokens": int(used[r].size)} for r in sorted(used)],
            skipped=skipped, seconds=round(time.perf_counter() - t0, 2),
        )
        atomic_write_json(tmp / "manifest.json", manifest.to_dict())
        atomic_write_json(tmp / "vocab.json", enc.vocab.to_dict())
        atomic_replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
