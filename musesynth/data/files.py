"""Finding MIDI files: the one rule for which files a folder holds, shared by data, generate and scripts."""

from __future__ import annotations

from pathlib import Path

from musesynth.errors import MusesynthError

MIDI_SUFFIXES = {".mid", ".midi"}


def is_midi_name(path: Path) -> bool:
    """A .mid/.midi name in any case (.MID, .Midi, ...)."""
    return path.suffix.lower() in MIDI_SUFFIXES


def find_midi_files(root: str | Path) -> list[Path]:
    """All .mid/.midi files below ``root`` (any case), sorted for determinism."""
    root = Path(root)
    if not root.exists():
        raise MusesynthError(f"MIDI folder not found: {root}")
    if not root.is_dir():
        raise MusesynthError(f"not a folder: {root}")
    return sorted(p for p in root.rglob("*") if is_midi_name(p) and p.is_file())
