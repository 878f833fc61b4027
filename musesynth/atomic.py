"""Atomic writes: a killed run never leaves a half-written checkpoint, cache or manifest.

Temp files and folders are created private by ``tempfile``; before they are renamed into place they get
the permissions the user's umask gives any new file, so outputs are shared as the user expects.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def public_mode(path: str | Path, folder: bool = False) -> None:
    """Give a temp file (0600) or folder (0700) the mode a plain new one would have."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def atomic_write(path: str | Path, write: Callable[[str], Any]) -> Path:
    """Call ``write(tmp_path)`` then rename the temp file onto ``path`` (same folder, same filesystem)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        public_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """JSON (strict: NaN/inf are refused, so every file we write parses anywhere), written atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def atomic_replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Swap a fully written temp folder into place; the old folder is removed only after. Runs that
    replace the same folder at once take turns (a lock file beside it), so none trips over another."""
    final_dir = Path(final_dir)
    public_mode(tmp_dir, folder=True)
    lock = final_dir.parent / f".{final_dir.name}.lock"
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        if final_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.old.", dir=final_dir.parent))
            os.replace(final_dir, old / "x")
            os.replace(tmp_dir, final_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp_dir, final_dir)
