"""Where commands write: checked before any work, never over what the command did not make.

Rules: an output folder must be creatable and writable (checked up front, so a long run never fails
at its end); a generated file that already exists gets a new name instead of being replaced, unless
the user asks for ``--overwrite``; and an output never lands inside or over the command's own input.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from musesynth.errors import MusesynthError


def _first_existing_parent(path: Path) -> Path:
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    return p


def check_writable_dir(path: str | Path, what: str = "output folder") -> Path:
    """Prove that ``path`` can be created (if missing) and takes files; one-line error otherwise. Folders it
    had to create for the proof are removed again: the check itself leaves nothing behind."""
    p = Path(path)
    anchor = _first_existing_parent(p)
    if anchor.exists() and not anchor.is_dir():
        raise MusesynthError(f"{what} {p}: {anchor} is a file, not a folder")
    made = [q for q in [p, *p.parents] if not q.exists()]
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=p):
            pass
    except OSError as exc:
        raise MusesynthError(f"{what} {p} is not writable: {exc.strerror or exc}") from None
    finally:
        for q in made:  # deepest first
            try:
                q.rmdir()
            except OSError:
                pass
    return p


def check_writable_file(path: str | Path, what: str) -> Path:
    """A file the command will write at its end: its folder must be writable now, and it is no folder."""
    p = Path(path)
    if p.is_dir():
        raise MusesynthError(f"{what} {p} is a folder; give a file name")
    check_writable_dir(p.parent if str(p.parent) else Path("."), f"{what} folder")
    return p


def check_replaceable_json(path: str | Path, what: str, key: str) -> None:
    """An existing file may be replaced only if it is a JSON result this command wrote (it has ``key``)."""
    p = Path(path)
    if not p.is_file():
        return
    try:
        ours = key in json.loads(p.read_text())
    except (OSError, ValueError, UnicodeDecodeError, TypeError):
        ours = False
    if not ours:
        raise MusesynthError(f"{what} {p} exists and is not a result musesynth wrote; choose another file name")


def check_report_dir(path: str | Path, marker: str) -> None:
    """A report folder must be new, empty, or an earlier report of ours (it holds ``marker``)."""
    p = Path(path)
    if p.is_dir() and any(p.iterdir()) and not (p / marker).is_file():
        raise MusesynthError(f"{p} exists and is not an earlier report (no {marker}); choose a new folder")


def free_name(folder: Path, name: str, suffixes: tuple[str, ...]) -> Path:
    """``folder/name``, or ``name-2``, ``name-3``, ... so that no file ``base + suffix`` exists yet."""
    base, n = folder / name, 1
    while any((base.parent / (base.name + s)).exists() for s in suffixes):
        n += 1
        base = folder / f"{name}-{n}"
    return base


def is_inside(child: Path, parent: Path) -> bool:
    try:
        Path(os.path.realpath(child)).relative_to(os.path.realpath(parent))
        return True
    except ValueError:
        return False


def check_not_over_input(out: Path, inp: Path, what: str) -> None:
    """Refuse an output that is the input, lies inside it, or contains it."""
    if is_inside(out, inp) or is_inside(inp, out):
        raise MusesynthError(f"{what} {out} overlaps the input folder {inp}; write it elsewhere")
