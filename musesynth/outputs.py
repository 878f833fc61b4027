"""Where commands write: checked before any work, never over what the command did not make.

Rules: an output folder must be creatable and writable (checked up front, so a long run never fails
at its end); a generated file that already exists gets a new name instead of being replaced, unless
the user asks for ``--overwrite``; and an output never lands inside or over the command's own input.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import symusic

from musesynth.atomic import atomic_write
from musesynth.errors import MusesynthError
from musesynth.ownership import check_owned, describe, has_entries, is_plain_file, marker_kind, read_json, write_marker


def _first_existing_parent(path: Path) -> Path:
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    return p


def check_writable_dir(path: str | Path, what: str = "output folder") -> Path:
    """Prove that ``path`` can be created (if missing) and takes files; one-line error otherwise. Folders it
    had to create for the proof are removed again: the check itself leaves nothing behind. An empty name is
    refused (Path("") is the current folder: a typo, or an unset shell variable, would write there)."""
    if not str(path).strip():
        raise MusesynthError(f"{what} is empty: name a folder")
    p = Path(path)
    anchor = _first_existing_parent(p)
    if anchor.exists() and not anchor.is_dir():
        raise MusesynthError(f"{what} {p}: {anchor} is a file, not a folder")
    refuse_read_only(anchor, what if anchor == p else f"{what} {p}: its parent")
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


def refuse_read_only(folder: Path, what: str) -> None:
    """Refuse a folder whose mode has no write bit (``chmod a-w``): the user marked it read-only, and an
    administrator (root), whom the system lets write anyway, must not have it filled or swapped for a new one."""
    try:
        mode = os.stat(folder).st_mode
    except OSError:
        return
    if stat.S_ISDIR(mode) and not mode & 0o222:
        raise MusesynthError(f"{what} {folder} is read-only (no write permission in its mode); make it writable "
                             f"or choose another folder (nothing was changed)")


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
    if not os.path.lexists(p):
        return
    if not is_plain_file(p):  # the write renames a new file onto the path: a link or FIFO there would be lost
        raise MusesynthError(f"{what} {p} is a {describe(p)}, not a file musesynth wrote; give a new file name")
    d = read_json(p)
    if not (isinstance(d, dict) and key in d):
        raise MusesynthError(f"{what} {p} exists and is not a result musesynth wrote; choose another file name")


REPORT_FILES = ("report.md", "results.json", "learning_curves.png", "music_stats.png")  # what `ablate` writes
REPORT_FOLDERS = ("samples", "checkpoints")


def check_report_dir(path: str | Path, marker: str, files: tuple[str, ...] = REPORT_FILES,
                     folders: tuple[str, ...] = REPORT_FOLDERS) -> None:
    """A report folder must be new, empty, or an earlier report of ours: our ownership marker, or (made
    before the marker existed) a ``marker`` JSON file with the report's content. In it, each of ``files``
    must be a plain file and each of ``folders`` a real folder if present: a user's folder or link in their
    place is refused, never replaced. A folder that passes is claimed: the marker is written now."""
    p = Path(path)
    if p.is_dir() and has_entries(p):
        def legacy(folder: Path) -> bool:
            d = read_json(folder / marker)
            return isinstance(d, dict) and {"command", "rows"} <= d.keys()

        check_owned(p, "report", legacy, "an earlier report", "choose a new folder")
        for name in files + folders:
            q = p / name
            if os.path.lexists(q) and not (is_plain_file(q) if name in files else q.is_dir() and not q.is_symlink()):
                raise MusesynthError(f"report folder {p} holds {name} as a {describe(q)} musesynth did not write; "
                                     f"move it or choose a new folder (nothing was changed)")
    if marker_kind(p) != "report":
        try:
            p.mkdir(parents=True, exist_ok=True)
            write_marker(p, "report")
        except OSError as exc:
            raise MusesynthError(f"--report {p} is not writable: {exc.strerror or exc}") from None


def free_name(folder: Path, name: str, suffixes: tuple[str, ...]) -> Path:
    """``folder/name``, or ``name-2``, ``name-3``, ... so that no path ``base + suffix`` exists yet (a dangling
    symlink counts: writing there would replace the user's link)."""
    base, n = folder / name, 1
    while any(os.path.lexists(base.parent / (base.name + s)) for s in suffixes):
        n += 1
        base = folder / f"{name}-{n}"
    return base


def fingerprint(path: Path) -> str:
    """The SHA-256 of a file's bytes: what a piece's sidecar records of each file written with it."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_our_piece(base: Path, suffixes: tuple[str, ...]) -> bool:
    """Whether the files ``base + suffix`` that exist are a piece musesynth wrote and nobody changed since: its
    ``.json`` sidecar is a plain file holding our record of the piece (``midi`` naming ``base.mid``, and
    ``sha256`` the fingerprint of each file written with it), and every other one of them is a plain file whose
    bytes are still the ones recorded. Told by content, never by the names alone: a user's file, folder, link or
    FIFO so named is not ours, and neither is a piece the user edited in place (a MIDI file saved from a DAW) or
    a sidecar written before fingerprints were recorded; those keep their names and the new piece takes a free one."""
    sidecar = base.parent / (base.name + ".json")
    info = read_json(sidecar)
    if not (isinstance(info, dict) and isinstance(info.get("midi"), str)
            and Path(info["midi"]).name == base.name + ".mid" and isinstance(info.get("sha256"), dict)):
        return False
    for s in suffixes:
        p = base.parent / (base.name + s)
        if s == ".json" or not os.path.lexists(p):
            continue
        try:
            if not (is_plain_file(p) and info["sha256"].get(s) == fingerprint(p)):
                return False
        except OSError:  # unreadable: not provably ours
            return False
    return True


def piece_name(folder: Path, name: str, suffixes: tuple[str, ...], overwrite: bool,
               inputs: frozenset[tuple[int, int]] = frozenset()) -> Path:
    """Where a generated piece goes: with ``overwrite``, over an earlier piece of ours of the same name (or
    where none is); otherwise, or when what holds the name is not ours or is one of this run's ``inputs`` (their
    ``file_ids``: an earlier piece used as a primer), a free name (``name-2``, ...)."""
    base = folder / name
    if overwrite and (not any(os.path.lexists(base.parent / (base.name + s)) for s in suffixes)
                      or (is_our_piece(base, suffixes) and not file_ids(base.parent / (base.name + s)
                                                                         for s in suffixes) & inputs)):
        return base
    return free_name(folder, name, suffixes)


def file_ids(paths: Iterable[Path | None]) -> frozenset[tuple[int, int]]:
    """(device, inode) of each path that is a file: what ``os.path.samefile`` compares, taken once for many."""
    out = set()
    for p in (p for p in paths if p is not None):
        try:
            st = os.stat(p)
        except OSError:  # gone or unreadable: nothing to protect
            continue
        out.add((st.st_dev, st.st_ino))
    return frozenset(out)


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


@dataclass
class WrittenScore:
    """A result held in memory (the API's): its score, the tokens the model wrote, what its JSON sidecar holds,
    and the file name the CLI writes it under (without a suffix)."""

    score: symusic.Score
    tokens: np.ndarray
    info: dict[str, Any]
    name: str
    title: str = field(repr=False, default="")

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the MIDI file (atomically); an existing file is kept unless ``overwrite``."""
        if Path(path).exists() and not overwrite:
            raise MusesynthError(f"{os.fsdecode(path)} exists; pass overwrite=True to replace it")
        return atomic_write(path, lambda tmp: self.score.dump_midi(tmp))

    @property
    def marks(self) -> tuple[float, float] | None:
        """What the piano roll marks (beats): nothing here; a rewritten span for an infilling."""
        return None
