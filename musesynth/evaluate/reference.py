"""A folder of MIDI files as pieces to score beside a model (`evaluate --reference-set DIR`).

Each file goes through the model's own encoding (encode, cut to the generated pieces' token length, decode),
as the held-out pieces do, so the reference set, the held-out pieces and the model's pieces are quantised
alike and the classifier cannot tell them apart by how the files were written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from musesynth.data.files import find_midi_files
from musesynth.errors import MusesynthError
from musesynth.evaluate.music_stats import Piece, piece_from_score
from musesynth.tokenize import Encoding


def reference_pieces(folder: str | Path, enc: Encoding, max_tokens: int,
                     progress: Callable[[int], Any] | None = None) -> tuple[list[Piece], list[Piece], int]:
    """The folder's pieces (sorted by path) cut to ``max_tokens`` (for the classifier), the same pieces whole (for
    copying from the training set, which needs whole pieces), and how many files could not be read (skipped).
    ``progress(total)`` is called once with the number of files and returns a bar to advance per file."""
    files = find_midi_files(folder)
    bar = progress(len(files)) if progress is not None else None
    pieces, whole, bad = [], [], 0
    for f in files:
        if bar is not None:
            bar.update(1)
        try:
            ids = enc.encode_file(f)
        except Exception:  # noqa: BLE001 - a file we cannot read is counted and skipped, never fatal
            bad += 1
            continue
        p = piece_from_score(enc.decode(ids[:max_tokens]))
        if p.pitch.size:
            pieces.append(p)
            whole.append(piece_from_score(enc.decode(ids)))
        else:
            bad += 1
    if len(pieces) < 2:
        raise MusesynthError(f"--reference-set {folder}: needs at least 2 readable MIDI files with notes "
                             f"(found {len(pieces)} of {len(files)})")
    return pieces, whole, bad
