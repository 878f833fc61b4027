"""MIDI folder -> cached token dataset.

Layout of a dataset folder (written to a temp folder, then renamed into place):
    manifest.json       files, split, token counts, skipped files with reasons, encoding parameters
    vocab.json          the vocabulary (encoding name, parameters, tokens)
    {split}.npy         all token ids of the split, pieces concatenated (each BOS ... EOS), uint16
    {split}_offsets.npy start of each piece in {split}.npy, plus the total length (int64)
"""

from __future__ import annotations

import hashlib
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
from musesynth.data.split import SPLITS, assign_splits
from musesynth.errors import MidiReadError, MusesynthError
from musesynth.tokenize import encoding_from_vocab, get_encoding
from musesynth.tokenize.base import Encoding
from musesynth.tokenize.vocab import Vocabulary

MIDI_SUFFIXES = {".mid", ".midi"}
FORMAT_VERSION = 1

_worker_encoding: dict[str, Encoding] = {}


def find_midi_files(root: str | Path) -> list[Path]:
    """All .mid/.midi files below ``root`` (any case), sorted for determinism."""
    root = Path(root)
    if not root.exists():
        raise MusesynthError(f"MIDI folder not found: {root}")
    if not root.is_dir():
        raise MusesynthError(f"not a folder: {root}")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())


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


def build_dataset(
    midi_dir: str | Path,
    out_dir: str | Path,
    encoding: str = "chord",
    params: dict[str, Any] | None = None,
    workers: int | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Tokenize every MIDI file in parallel, split by file, and write the dataset atomically."""
    t0 = time.perf_counter()
    midi_dir, out_dir = Path(midi_dir), Path(out_dir)
    files = find_midi_files(midi_dir)
    if not files:
        raise MusesynthError(f"no .mid/.midi files found in {midi_dir}")
    enc = get_encoding(encoding, **(params or {}))
    if len(enc.vocab) > np.iinfo(np.uint16).max:
        raise MusesynthError("vocabulary too large for uint16 storage")
    vocab_json = enc.vocab.to_json()
    rels = [p.relative_to(midi_dir).as_posix() for p in files]
    jobs = [(str(p), vocab_json) for p in files]

    workers = max(1, min(workers or os.cpu_count() or 1, len(files)))
    bar = dict(total=len(files), desc="tokenize", unit="file", disable=quiet)
    if workers == 1:
        results = [_encode_job(j) for j in tqdm(jobs, **bar)]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(tqdm(pool.map(_encode_job, jobs, chunksize=8), **bar))

    used = {r: ids for r, (ids, err) in zip(rels, results) if ids is not None}
    skipped = [{"file": r, "reason": err} for r, (ids, err) in zip(rels, results) if ids is None]
    if not used:
        reasons = "; ".join(f"{s['file']}: {s['reason']}" for s in skipped[:3])
        raise MusesynthError(f"no usable MIDI file in {midi_dir} ({len(skipped)} skipped: {reasons})")

    split = assign_splits(sorted(used))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        totals: dict[str, dict[str, int]] = {}
        for s in SPLITS:
            names = [r for r in sorted(used) if split[r] == s]
            arrays = [used[r] for r in names]
            tokens = np.concatenate(arrays) if arrays else np.zeros(0, np.uint16)
            offsets = np.cumsum([0] + [a.size for a in arrays]).astype(np.int64)
            np.save(tmp / f"{s}.npy", tokens)
            np.save(tmp / f"{s}_offsets.npy", offsets)
            totals[s] = {"files": len(names), "tokens": int(tokens.size)}
        manifest = {
            "format_version": FORMAT_VERSION,
            "source": str(midi_dir.resolve()),
            "encoding": enc.name,
            "encoding_params": enc.vocab.params,
            "vocab_size": len(enc.vocab),
            "vocab_fingerprint": enc.vocab.fingerprint,
            "files_found": len(files),
            "files_used": len(used),
            "files_skipped": len(skipped),
            "splits": totals,
            "files": [{"file": r, "split": split[r], "tokens": int(used[r].size)} for r in sorted(used)],
            "skipped": skipped,
            "seconds": round(time.perf_counter() - t0, 2),
        }
        atomic_write_json(tmp / "manifest.json", manifest)
        atomic_write_json(tmp / "vocab.json", enc.vocab.to_dict())
        atomic_replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def report(manifest: dict[str, Any]) -> str:
    """The summary `musesynth data` prints."""
    lines = [
        f"files found {manifest['files_found']}, used {manifest['files_used']}, "
        f"skipped {manifest['files_skipped']}",
    ]
    for s in manifest["skipped"][:20]:
        lines.append(f"  skipped {s['file']}: {s['reason']}")
    if manifest["files_skipped"] > 20:
        lines.append(f"  ... and {manifest['files_skipped'] - 20} more (see manifest.json)")
    for s in SPLITS:
        t = manifest["splits"][s]
        lines.append(f"{s:>5}: {t['files']:5d} files {t['tokens']:9d} tokens")
    lines.append(f"vocabulary: {manifest['vocab_size']} tokens ({manifest['encoding']} encoding)")
    return "\n".join(lines)


def is_dataset(path: str | Path) -> bool:
    return (Path(path) / "manifest.json").is_file()


def cache_dir() -> Path:
    return Path(os.environ.get("MUSESYNTH_CACHE", Path.home() / ".cache" / "musesynth"))


def cached_dataset(midi_dir: str | Path, encoding: str = "chord", quiet: bool = False) -> Path:
    """Dataset for a raw MIDI folder, rebuilt only when its files (names, sizes, mtimes) change."""
    midi_dir = Path(midi_dir).resolve()
    files = find_midi_files(midi_dir)
    h = hashlib.sha1(f"{FORMAT_VERSION}|{encoding}|{get_encoding(encoding).vocab.fingerprint}".encode())
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(midi_dir)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    out = cache_dir() / "datasets" / f"{midi_dir.name}-{encoding}-{h.hexdigest()[:12]}"
    if not is_dataset(out):
        manifest = build_dataset(midi_dir, out, encoding=encoding, quiet=quiet)
        if not quiet:
            print(report(manifest))
    return out


def load_vocab(dataset_dir: str | Path) -> Vocabulary:
    return Vocabulary.from_dict(json.loads((Path(dataset_dir) / "vocab.json").read_text()))


def load_manifest(dataset_dir: str | Path) -> dict[str, Any]:
    path = Path(dataset_dir) / "manifest.json"
    if not path.is_file():
        raise MusesynthError(f"not a musesynth dataset (no manifest.json): {dataset_dir}")
    return json.loads(path.read_text())


def first_test_file(dataset_dir: str | Path) -> Path | None:
    """The source MIDI of the first test-split piece (a primer the model never trained on), if still there."""
    manifest = load_manifest(dataset_dir)
    test = [f["file"] for f in manifest["files"] if f["split"] == "test"]
    path = Path(manifest["source"]) / test[0] if test else None
    return path if path is not None and path.is_file() else None


def load_split(dataset_dir: str | Path, split: str) -> np.ndarray:
    """Token ids of one split, memory-mapped (no copy until used)."""
    path = Path(dataset_dir) / f"{split}.npy"
    if not path.is_file():
        raise MusesynthError(f"dataset has no {split} split: {path}")
    return np.load(path, mmap_mode="r")


def load_pieces(dataset_dir: str | Path, split: str) -> list[np.ndarray]:
    tokens = load_split(dataset_dir, split)
    offsets = np.load(Path(dataset_dir) / f"{split}_offsets.npy")
    return [np.asarray(tokens[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]
