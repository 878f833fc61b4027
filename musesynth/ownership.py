"""Which folders musesynth made: told by a marker it wrote itself, never by the names of the files inside.

Every folder musesynth creates (a run, a dataset, an export, a report) holds ``.musesynth.json`` with its
kind and version. A folder without the marker is the user's: nothing in it is replaced, whatever its files
are called (folders made before the marker existed are recognised by their content: see ``check_owned``).
Inside a folder of ours, a path is replaced only if it is the kind of thing we wrote there: a regular file
where we write a file, never a folder or a symlink the user put in its place.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from musesynth.atomic import atomic_write_json
from musesynth.errors import MusesynthError

MARKER = ".musesynth.json"
VERSION = 1
_MAX_JSON = 64 * 2**20  # a JSON file of ours is read to check its content; anything larger is not ours


def is_plain_file(path: Path) -> bool:
    """A regular file itself: not a folder, not a symlink (to anything), not a FIFO or device."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def read_json(path: Path, max_bytes: int = _MAX_JSON) -> Any:
    """The JSON in a plain file, or None when it is missing, not a plain file, too large, or not JSON (deep
    nesting included): used to tell our files by their content, so any failure just means 'not ours'."""
    if not is_plain_file(path):
        return None
    try:
        if path.stat().st_size > max_bytes:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None


def marker_kind(folder: Path) -> str | None:
    """The kind recorded by our marker in ``folder`` ("run", "dataset", "export"), or None without one."""
    d = read_json(Path(folder) / MARKER, 2**16)
    if isinstance(d, dict) and d.get("tool") == "musesynth" and isinstance(d.get("kind"), str) \
            and isinstance(d.get("version"), int):
        return d["kind"]
    return None


def write_marker(folder: Path, kind: str) -> None:
    """Mark ``folder`` as ours (atomically: a half-written marker never exists); a full disk is one line."""
    path = Path(folder) / MARKER
    try:
        atomic_write_json(path, {"tool": "musesynth", "kind": kind, "version": VERSION})
    except OSError as exc:
        raise MusesynthError(f"cannot write {path}: {exc.strerror or exc}") from None


def has_entries(folder: Path) -> bool:
    """Whether a folder holds anything; an unreadable one is a one-line error, not a traceback."""
    try:
        return any(Path(folder).iterdir())
    except OSError as exc:
        raise MusesynthError(f"cannot read the folder {folder}: {exc.strerror or exc}") from None


def is_empty_dir(path: Path) -> bool:
    """A real folder (not a symlink) with nothing in it."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode) and not any(path.iterdir())
    except OSError:
        return False


def describe(path: Path) -> str:
    """What a path is, in a word, for an error line: folder, symlink, file or special file."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "missing path"
    return ("symlink" if stat.S_ISLNK(mode) else "folder" if stat.S_ISDIR(mode) else
            "file" if stat.S_ISREG(mode) else "special file")


def refuse_foreign(entry: Path, what: str) -> MusesynthError:
    """The one-line refusal for a path in a folder of ours that musesynth did not put there (or not as what
    it is now: a folder or link where we write a file)."""
    kind = describe(entry)
    detail = "" if kind == "file" else f": {entry.name} is a {kind} where musesynth writes a file"
    return MusesynthError(f"{what} {entry.parent} also holds files musesynth did not write ({entry.name}){detail}; "
                          f"move them or choose another folder (nothing was changed)")


def first_foreign(folder: Path, ours: Callable[[Path], bool]) -> Path | None:
    """The first entry of ``folder`` (sorted) that ``ours`` does not accept, or None if all are ours."""
    try:
        found = sorted(Path(folder).iterdir())
    except OSError as exc:
        raise MusesynthError(f"cannot read the folder {folder}: {exc.strerror or exc}") from None
    for entry in found:
        if not ours(entry):
            return entry
    return None


def check_owned(folder: Path, kind: str, legacy: Callable[[Path], bool], noun: str, hint: str) -> None:
    """Refuse a non-empty ``folder`` that is not ours, in one line naming it: ours means our marker of
    ``kind``, or, for a folder made before the marker existed, content that ``legacy`` proves we wrote.
    ``noun`` names what was expected ("a musesynth dataset"); ``hint`` says what to do instead. It never
    suggests --overwrite: that replaces only what is ours, so it would not help here."""
    found = marker_kind(folder)
    if found == kind:
        return
    if found is not None:
        raise MusesynthError(f"{folder} is a musesynth {found} folder, not {noun}; {hint} (nothing was changed)")
    if not legacy(folder):
        raise MusesynthError(f"{folder} exists and is not {noun} (it has no {MARKER}); {hint} (nothing in it was "
                             f"changed)")


def resolve_target(path: str | Path, what: str) -> Path:
    """The folder an output path names, symlinks followed (a link the user made stays a link and the output
    lands where it points); refused when it is, or holds, the current folder, which would be replaced whole."""
    p = Path(os.path.realpath(path))
    if Path(os.path.realpath(os.getcwd())).is_relative_to(p):
        raise MusesynthError(f"{what} {path} is the current folder or holds it; it is written as a whole: run from "
                             f"elsewhere or name another folder")
    return p


@contextmanager
def replacing(final_dir: Path) -> Iterator[None]:
    """Hold the lock of ``final_dir``'s parent folder while a new folder is swapped in there; afterwards
    remove the ``.NAME.lock`` file ``atomic_replace_dir`` leaves beside it (safe: every swap through here
    holds the parent's lock first, so no one else can be waiting on that file). A parent that cannot be
    opened for reading still gets its swap, under ``atomic_replace_dir``'s own lock, which then stays."""
    parent = Path(final_dir).parent
    try:
        fd = os.open(parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            lock = parent / f".{Path(final_dir).name}.lock"
            try:
                if is_plain_file(lock) and lock.stat().st_size == 0:
                    lock.unlink()
            except OSError:
                pass
    finally:
        os.close(fd)  # closing releases the lock
