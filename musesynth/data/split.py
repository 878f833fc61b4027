"""Deterministic train/validation/test split by file: a file's split depends only on its relative path,
so the same files always land in the same split and adding files never moves existing ones."""

from __future__ import annotations

import hashlib

SPLITS = ("train", "val", "test")
FRACTIONS = (0.8, 0.1, 0.1)


def path_unit(rel_path: str) -> float:
    """A stable number in [0, 1) from the file's relative path (POSIX separators). A name that is not
    UTF-8 reaches Python with surrogates; its own bytes are hashed (surrogateescape), as on disk."""
    digest = hashlib.sha256(rel_path.replace("\\", "/").encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(rel_path: str) -> str:
    u = path_unit(rel_path)
    return "train" if u < FRACTIONS[0] else "val" if u < FRACTIONS[0] + FRACTIONS[1] else "test"


def assign_splits(rel_paths: list[str]) -> dict[str, str]:
    """Split by hash; with 3+ files, an empty val or test split borrows the train file(s) nearest its
    hash range, so tiny corpora still have something to validate and test on."""
    out = {p: split_of(p) for p in rel_paths}
    if len(rel_paths) >= 3:
        for split in ("val", "test"):
            if split not in out.values():
                train = sorted((p for p, s in out.items() if s == "train"), key=path_unit)
                if len(train) > 1:
                    out[train[-1]] = split
    return out
