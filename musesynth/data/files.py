"""Finding MIDI files: the one rule for which files a folder holds, shared by data, generate and scripts."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from musesynth.errors import MusesynthError

MIDI_SUFFIXES = {".mid", ".midi"}


def is_midi_name(path: Path) -> bool:
    """A .mid/.midi name in any case (.MID, .Midi, ...)."""
    return path.suffix.lower() in MIDI_SUFFIXES


def not_a_file(path: Path) -> str | None:
    """Why a path with a MIDI name cannot be read as a file (a folder, a dangling link, a FIFO or device),
    or None for a regular file (or a link to one). Never opens it: a FIFO would block the reader."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "a symlink to nothing (dangling link)" if os.path.islink(path) else "cannot be read"
    if stat.S_ISREG(mode):
        return None
    link = "a symlink to " if os.path.islink(path) else ""
    if stat.S_ISDIR(mode):
        return f"{link}a folder, not a MIDI file"
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else \
        "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
    return f"{link}{kind}, not a MIDI file"


def why_unreadable(path: Path, shown: str) -> str | None:
    """None for a regular file (or a link to one); else the one-line reason, the path as ``shown``: not found, or
    what it is instead (a folder, a FIFO, a dangling link)."""
    if not os.path.lexists(path):
        return f"not found: {shown}"
    why = not_a_file(path)
    if why is None:
        return None
    return f"{shown} cannot be read" if why == "cannot be read" else f"{shown} is {why}"


def scan_midi(root: str | Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The .mid/.midi files below ``root`` (any case), sorted, and the paths with such a name that are no
    readable file, each with the reason: these are reported as skipped, not dropped without a word."""
    root = Path(root)
    if not root.exists():
        raise MusesynthError(f"MIDI folder not found: {root}")
    if not root.is_dir():
        raise MusesynthError(f"not a folder: {root}")
    files, odd = [], []
    for p in sorted(q for q in root.rglob("*") if is_midi_name(q)):
        reason = not_a_file(p)
        if reason is None:
            files.append(p)
        else:
            odd.append((p, reason))
    return files, odd


def find_midi_files(root: str | Path) -> list[Path]:
    """All .mid/.midi files below ``root`` (any case), sorted for determinism."""
    return scan_midi(root)[0]
