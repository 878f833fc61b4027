"""Primers uploaded from the page: checked with the project's MIDI loader, kept under a free name in the
studio's folder (an upload never replaces a file), described in one line for the page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from musesynth.atomic import atomic_write
from musesynth.errors import MidiReadError, MusesynthError
from musesynth.outputs import free_name
from musesynth.tokenize.midi_io import load_score

MAX_UPLOAD_BYTES = 5 * 2**20  # a piano primer is a few kB; 5 MB is generous and keeps a mistake cheap


def safe_stem(filename: str) -> str:
    """A file name from the browser, reduced to letters, digits, '.', '_' and '-' (never a path)."""
    stem = Path(filename.replace("\\", "/")).name
    stem = re.sub(r"\.(mid|midi)$", "", stem, flags=re.IGNORECASE)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:60]
    return stem or "primer"


def check_upload(data: bytes, filename: str) -> None:
    """The first reasons to refuse a file, before it is written anywhere."""
    if not data:
        raise MusesynthError(f"{filename}: empty file (0 bytes)")
    if len(data) > MAX_UPLOAD_BYTES:
        raise MusesynthError(f"{filename}: larger than {MAX_UPLOAD_BYTES // 2**20} MB; a MIDI primer is far smaller")


def save_upload(data: bytes, filename: str, folder: Path) -> tuple[Path, dict[str, Any]]:
    """Write an uploaded primer and describe it; a file the loader refuses is removed again."""
    check_upload(data, filename)
    folder.mkdir(parents=True, exist_ok=True)
    path = free_name(folder, safe_stem(filename), (".mid",))
    path = path.parent / (path.name + ".mid")
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    try:
        score = load_score(path)
        notes = int(score.note_num())
        if notes == 0:
            raise MidiReadError("it has no notes")
        seconds = round(float(score.to("second").end()), 1)
    except MidiReadError as exc:
        path.unlink(missing_ok=True)
        raise MusesynthError(f"{filename}: cannot use this file as a primer: {exc}") from None
    except Exception as exc:  # a parser bug on an odd file: still one line, and the file goes
        path.unlink(missing_ok=True)
        raise MusesynthError(f"{filename}: cannot read this MIDI file ({type(exc).__name__})") from None
    return path, {"name": filename, "notes": notes, "seconds": seconds}


def describe(path: Path) -> dict[str, Any]:
    """Notes and length of a corpus piece, for the page's primer line."""
    score = load_score(path)
    return {"name": path.name, "notes": int(score.note_num()), "seconds": round(float(score.to("second").end()), 1)}
