"""`musesynth train -d MIDI_FOLDER`: the dataset of a raw MIDI folder, built once and cached."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from musesynth.data.build import build_dataset
from musesynth.data.dataset import FORMAT_VERSION, is_dataset
from musesynth.data.files import find_midi_files
from musesynth.tokenize import get_encoding


def cache_dir() -> Path:
    return Path(os.environ.get("MUSESYNTH_CACHE", Path.home() / ".cache" / "musesynth"))


def cached_dataset(midi_dir: str | Path, encoding: str = "chord", quiet: bool = False) -> Path:
    """Dataset for a raw MIDI folder, rebuilt only when its files (names, sizes, mtimes) change."""
    midi_dir = Path(midi_dir).resolve()
    files = find_midi_files(midi_dir)
    h = hashlib.sha1(f"{FORMAT_VERSION}|{encoding}|{get_encoding(encoding).vocab.fingerprint}".encode())
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(midi_dir)}|{st.st_size}|{st.st_mtime_ns}\n".encode(errors="surrogateescape"))
    out = cache_dir() / "datasets" / f"{midi_dir.name}-{encoding}-{h.hexdigest()[:12]}"
    if not is_dataset(out):
        manifest = build_dataset(midi_dir, out, encoding=encoding, quiet=quiet)
        if not quiet:
            print(manifest.report())
    return out
