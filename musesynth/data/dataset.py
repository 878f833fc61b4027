"""Reading a dataset folder written by ``build_dataset``.

Layout:
    manifest.json       files, split, token counts, skipped files with reasons, encoding parameters
    vocab.json          the vocabulary (encoding name, parameters, tokens)
    {split}.npy         all token ids of the split, pieces concatenated (each BOS ... EOS), uint16
    {split}_offsets.npy start of each piece in {split}.npy, plus the total length (int64)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from musesynth.data.split import SPLITS
from musesynth.errors import MusesynthError
from musesynth.tokenize.vocab import Vocabulary

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass
class Manifest:
    """What a dataset holds and how it was made; saved as manifest.json."""

    source: str
    encoding: str
    encoding_params: dict[str, Any]
    vocab_size: int
    vocab_fingerprint: str
    files_found: int
    files_used: int
    files_skipped: int
    splits: dict[str, dict[str, int]]
    files: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    format_version: int = FORMAT_VERSION
    # folders whose files went to the training split alone (`data --train-only`); their entries in ``files``
    # carry ``train_only``: the index of their folder here, and ``file`` relative to it
    train_only: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def files_in(self, split: str) -> list[str]:
        """The corpus's own files in ``split``, relative to ``source`` (files from --train-only folders left out)."""
        return [f["file"] for f in self.files if f["split"] == split and "train_only" not in f]

    def report(self, max_skipped: int = 20) -> str:
        """The summary `musesynth data` prints."""
        lines = [f"files found {self.files_found}, used {self.files_used}, skipped {self.files_skipped}"]
        for s in self.skipped[:max_skipped]:
            lines.append(f"  skipped {s['file']}: {s['reason']}")
        if self.files_skipped > max_skipped:
            lines.append(f"  ... and {self.files_skipped - max_skipped} more (see manifest.json)")
        for s in SPLITS:
            t = self.splits[s]
            lines.append(f"{s:>5}: {t['files']:5d} files {t['tokens']:9d} tokens")
            if s == "train" and self.train_only:
                extra = sum(1 for f in self.files if "train_only" in f)
                lines[-1] += f" ({extra} of them from --train-only folders)"
        lines.append(f"vocabulary: {self.vocab_size} tokens ({self.encoding} encoding)")
        return "\n".join(lines)


DATASET_FILES = {MANIFEST, "vocab.json"} | {f"{s}{x}.npy" for s in SPLITS for x in ("", "_offsets")}


def is_dataset(path: str | Path) -> bool:
    """A folder `musesynth data` wrote: our manifest (by its content, not its name) and our vocabulary."""
    p = Path(path)
    try:
        d = json.loads((p / MANIFEST).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return (isinstance(d, dict) and {"format_version", "vocab_fingerprint", "encoding", "splits"} <= d.keys()
            and (p / "vocab.json").is_file())


def foreign_files(path: str | Path) -> list[str]:
    """Names in a dataset folder that `musesynth data` did not write (a user's files: never deleted)."""
    return sorted(q.name for q in Path(path).iterdir() if q.name not in DATASET_FILES)


def load_manifest(dataset_dir: str | Path) -> Manifest:
    path = Path(dataset_dir) / MANIFEST
    if not path.is_file():
        raise MusesynthError(f"not a musesynth dataset (no {MANIFEST}): {dataset_dir}")
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
        raise MusesynthError(f"damaged dataset manifest {path}: {exc}") from None


def load_vocab(dataset_dir: str | Path) -> Vocabulary:
    path = Path(dataset_dir) / "vocab.json"
    try:
        return Vocabulary.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise MusesynthError(f"dataset has no vocab.json: {dataset_dir}") from None
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise MusesynthError(f"damaged vocabulary {path}: {exc}") from None


def first_test_file(dataset_dir: str | Path) -> Path | None:
    """The source MIDI of the first test-split piece (a primer the model never trained on), if still there."""
    manifest = load_manifest(dataset_dir)
    test = manifest.files_in("test")
    path = Path(manifest.source) / test[0] if test else None
    return path if path is not None and path.is_file() else None


def load_split(dataset_dir: str | Path, split: str) -> np.ndarray:
    """Token ids of one split, memory-mapped (no copy until used)."""
    path = Path(dataset_dir) / f"{split}.npy"
    if not path.is_file():
        raise MusesynthError(f"dataset has no {split} split: {path}")
    try:
        return np.load(path, mmap_mode="r")
    except (ValueError, OSError) as exc:
        raise MusesynthError(f"damaged dataset file {path}: {exc}") from None


def load_offsets(dataset_dir: str | Path, split: str) -> np.ndarray:
    """Where each piece of a split starts, plus the split's length."""
    path = Path(dataset_dir) / f"{split}_offsets.npy"
    try:
        return np.load(path)
    except (ValueError, OSError) as exc:
        raise MusesynthError(f"damaged dataset file {path}: {exc}") from None


def load_pieces(dataset_dir: str | Path, split: str) -> list[np.ndarray]:
    tokens = load_split(dataset_dir, split)
    offsets = load_offsets(dataset_dir, split)
    return [np.asarray(tokens[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]
