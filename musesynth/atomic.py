"""Atomic writes: a killed run never leaves a half-written checkpoint, cache or manifest.

Temp files and folders are created private by ``tempfile``; before they are renamed into place they get
the permissions the user's umask gives any new file, so outputs are shared as the user expects.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from musesynth.errors import MusesynthError

# What a full or failing disk looks like from the libraries that write for us: torch.save's zip writer
# (a RuntimeError from inline_container.cc), safetensors (an I/O error carrying "os error 28").
_WRITE_FAILURES = ("inline_container", "file write failed", "unexpected pos", "os error", "i/o error")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def public_mode(path: str | Path, folder: bool = False) -> None:
    """Give a temp file (0600) or folder (0700) the mode a plain new one would have."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def write_failure(exc: BaseException, path: str | Path, where: str | Path | None = None) -> MusesynthError | None:
    """A failed write (full disk, quota, I/O error) as one line naming ``path``; None for other errors.
    ``where``: a path on the same filesystem, to tell a full disk from other failures."""
    if isinstance(exc, MusesynthError):
        return None
    if isinstance(exc, OSError):
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
    elif any(s in str(exc).lower() for s in _WRITE_FAILURES):
        reason = "the write failed"
    else:
        return None
    full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT) or "os error 28" in str(exc)
    if not full and not isinstance(exc, OSError):  # torch's zip writer does not say why: ask the disk
        try:
            st = os.statvfs(where or Path(path).parent)
            full = st.f_bavail * st.f_frsize < 1 << 20
        except OSError:
            pass
    if full:
        return MusesynthError(f"cannot write {path}: no space left on device (the partial file was removed; free "
                              f"some space and run again)")
    return MusesynthError(f"cannot write {path}: {reason.lower()} (the partial file was removed)")


def atomic_write(path: str | Path, write: Callable[[str], Any]) -> Path:
    """Call ``write(tmp_path)`` then rename the temp file onto ``path`` (same folder, same filesystem).
    A failed write (a full disk) removes the temp file and is one ``MusesynthError``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise write_failure(exc, path) from None
    os.close(fd)
    try:
        write(tmp)
        public_mode(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        failure = write_failure(exc, path, tmp) if isinstance(exc, Exception) else None
        if os.path.exists(tmp):
            os.unlink(tmp)
        if failure is not None:
            raise failure from None
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
