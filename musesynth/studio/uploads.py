"""Primers uploaded from the page: kept under a free name in the studio's folder (an upload never replaces a
file), read as generation will read them, and described in one line for the page.

An upload is tokenized at once with the chosen model's encoding, under the per-file budget of `musesynth data`
(``data.build.tokenize_files``: a worker process with ``FILE_SECONDS`` of time and ``FILE_MEMORY`` of memory,
plus the encodings' token budget and silence caps). So a file generation cannot use (drums only, no notes, a
silence bomb) is refused at upload with its reason, instead of a job that fails or eats the machine later.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import symusic

from musesynth.atomic import atomic_write
from musesynth.data import build
from musesynth.errors import MidiReadError, MusesynthError
from musesynth.outputs import free_name
from musesynth.tokenize import Encoding
from musesynth.tokenize.midi_io import load_score

MAX_UPLOAD_BYTES = 5 * 2**20  # a piano primer is a few kB; 5 MB is generous and keeps a mistake cheap
MAX_UPLOADS = 64  # uploads one studio session keeps; then new ones are refused (restart the studio)
MAX_UPLOADS_BYTES = 64 * 2**20  # and their bytes together


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


def encode_within_budget(path: Path, enc: Encoding) -> np.ndarray:
    """``enc``'s tokens of a MIDI file, read in a worker under `musesynth data`'s per-file budget; a file over
    it (or unusable) raises ``MidiReadError`` with the reason, as `data` reports it."""
    ids, reason = build.tokenize_files([Path(path)], enc, 1, True, build.FILE_SECONDS, build.FILE_MEMORY)[0]
    if ids is None:
        raise MidiReadError(reason or "cannot read it")
    return ids.astype(np.int64)


def write_upload(data: bytes, filename: str, folder: Path) -> Path:
    """Write an uploaded primer under a free name (call it under one lock: the name is picked, then taken)."""
    check_upload(data, filename)
    folder.mkdir(parents=True, exist_ok=True)
    path = free_name(folder, safe_stem(filename), (".mid",))
    path = path.parent / (path.name + ".mid")
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return path


def read_upload(path: Path, filename: str, enc: Encoding | None) -> dict[str, Any]:
    """Check a written upload as generation with ``enc`` reads it, and describe it; a file that cannot be used
    is removed again (the studio wrote it a moment ago)."""
    try:
        if enc is not None:  # first, in a worker: a file that crashes the parser costs that worker only
            encode_within_budget(path, enc)
        score = load_score(path)
        if pitched_notes(score) == 0:
            raise MidiReadError("it has no pitched notes (drums are left out)" if score.note_num() else
                                "it has no notes")
        info = describe_score(score)
    except MidiReadError as exc:
        path.unlink(missing_ok=True)
        raise MusesynthError(f"{filename}: cannot use this file as a primer: {exc}") from None
    except Exception as exc:  # a parser bug on an odd file: still one line, and the file goes
        path.unlink(missing_ok=True)
        raise MusesynthError(f"{filename}: cannot read this MIDI file ({type(exc).__name__})") from None
    return {**info, "name": filename}


def pitched_notes(score: symusic.Score) -> int:
    """Notes outside drum tracks: the only ones generation reads."""
    return sum(len(t.notes) for t in score.tracks if not t.is_drum)


def describe_score(score: symusic.Score) -> dict[str, Any]:
    return {"notes": pitched_notes(score), "seconds": round(float(score.to("second").end()), 1)}


def describe(path: Path) -> dict[str, Any]:
    """Notes and length of a corpus piece, for the page's primer line."""
    return {"name": path.name, **describe_score(load_score(path))}
