"""What the studio offers: the shipped models and the run folders under ``training_checkpoints/``, the
pieces of the embedded corpus, and the keys. The page sends ids from these lists, never paths, so a
request can only reach files the studio listed itself."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from musesynth.artifacts.checkpoint import CheckpointMeta, load_raw
from musesynth.artifacts.shipped import CONFIG, DEFAULT_MODEL, PRETRAINED_DIR, is_shipped
from musesynth.data.corpus import corpus_pieces, export_piece
from musesynth.data.files import find_midi_files
from musesynth.errors import MusesynthError
from musesynth.tokenize import Encoding, encoding_from_vocab

KEYS = [f"{t} {m}" for m in ("major", "minor") for t in
        (["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"] if m == "major" else
         ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"])]


@dataclass(frozen=True)
class ModelEntry:
    id: str
    label: str
    path: Path
    note: str = ""  # a caveat the page shows beside the model (e.g. an unvalidated last.pt)


def list_models(runs_dir: Path) -> list[ModelEntry]:
    """Shipped models first (the default), then every run folder holding best.pt or last.pt; a run with only
    last.pt (stopped before its first validation) is labelled so, as `generate -c RUN` would use it."""
    out: list[ModelEntry] = []
    if PRETRAINED_DIR.is_dir():
        shipped = sorted(d for d in PRETRAINED_DIR.iterdir() if is_shipped(d))
        shipped.sort(key=lambda d: d != DEFAULT_MODEL)
        out += [ModelEntry(f"shipped/{d.name}", f"{d.name} (shipped with musesynth)", d) for d in shipped]
    if runs_dir.is_dir():
        for d in sorted(runs_dir.iterdir()):
            if not d.is_dir():
                continue
            if (d / "best.pt").is_file():
                out.append(ModelEntry(f"run/{d.name}", f"{d.name} ({runs_dir.name}/)", d))
            elif (d / "last.pt").is_file():
                out.append(ModelEntry(f"run/{d.name}", f"{d.name} ({runs_dir.name}/, last.pt, not validated)", d,
                                      "this run has no best.pt (it stopped before its first validation): its "
                                      "last.pt is used, which no validation has checked"))
    return out


_info_cache: dict[tuple[str, float], tuple[dict[str, Any], Encoding]] = {}


def _read(entry: ModelEntry) -> tuple[dict[str, Any], Encoding]:
    """A model's description and its encoding, read once per file version (the page asks on every change)."""
    src = entry.path / CONFIG if is_shipped(entry.path) else _checkpoint_file(entry.path)
    cache_key = (str(src), src.stat().st_mtime)
    if cache_key not in _info_cache:
        meta = (CheckpointMeta.from_json(src.read_text(), str(entry.path)) if src.name == CONFIG
                else load_raw(src)["meta"])
        enc = encoding_from_vocab(meta.vocab)
        ctl = enc.header_controls()  # as check_controls asks
        tempos = None if ctl is None else ctl.tempos
        _info_cache[cache_key] = ({
            "id": entry.id, "family": meta.family, "encoding": meta.vocab.encoding, "params": meta.num_params,
            "seq_len": meta.model_config.seq_len, "keyed": any(t.startswith("KEY_") for t in meta.vocab.tokens),
            "composers": [] if ctl is None else list(ctl.composers),
            "tempo": None if tempos is None else [round(float(tempos[0])), round(float(tempos[-1]))],
            "infill": enc.bar_infill() is not None,
            "parts": enc.parts() is not None and not meta.key_frames,  # what harmonize and infill --parts need
        }, enc)
    return _info_cache[cache_key]


def model_info(entry: ModelEntry) -> dict[str, Any]:
    """Family, encoding, context and the controls the model knows: keys, composers, tempo, infilling, parts."""
    return _read(entry)[0]


def model_encoding(entry: ModelEntry) -> Encoding:
    """The encoding a model was trained with, to check a request's controls before it is queued."""
    return _read(entry)[1]


def _checkpoint_file(run: Path) -> Path:
    for name in ("best.pt", "last.pt"):
        if (run / name).is_file():
            return run / name
    raise MusesynthError(f"no checkpoint in {run}")


class Corpus:
    """Pieces to prime with: the exported corpus folder when there is one (``make demo`` writes
    data/bach_midi), else the Bach chorales inside the music21 wheel, exported one at a time on demand."""

    def __init__(self, folder: Path, cache: Path, name: str = "bach") -> None:
        self.folder, self.cache, self.name = folder, cache, name
        self._lock = threading.Lock()
        self._pieces: dict[str, Path] | None = None
        self._exported = False

    def pieces(self) -> dict[str, Path]:
        with self._lock:
            if self._pieces is None:
                files = find_midi_files(self.folder) if self.folder.is_dir() else []
                if files:
                    self._pieces = {f.relative_to(self.folder).as_posix(): f for f in files}
                else:
                    self._pieces, self._exported = corpus_pieces(self.name), True
            return self._pieces

    def resolve(self, name: str) -> Path:
        """The MIDI file of a listed piece (exported into the studio's cache the first time)."""
        pieces = self.pieces()
        if name not in pieces:
            raise MusesynthError(f"unknown corpus piece '{name}'")
        if not self._exported:
            return pieces[name]
        dst = self.cache / name
        if not dst.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            export_piece(pieces[name], dst)
        return dst
