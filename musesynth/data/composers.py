"""Who wrote each file of a dataset: read from the folder layout (``bach/bwv1.6.mid`` -> bach, as
`musesynth corpus` writes it) or from a CSV (``file,composer``) / JSON (``{"file": "composer"}``) the user
passes, with file paths relative to the MIDI folder. Names become ``COMPOSER_<name>`` tokens, so they
are normalised to lower case with ``-`` for anything but a-z, 0-9 and ``_``."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from musesynth.errors import MusesynthError

FOLDER = "folder"


def normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "-", str(name).strip().lower()).strip("-")


def _read_table(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise MusesynthError(f"--composers: no such file {path} (give '{FOLDER}' or a CSV/JSON file)")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError("expected an object {file: composer}")
            return {str(k): str(v) for k, v in data.items()}
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        return {r["file"]: r["composer"] for r in rows}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, csv.Error) as exc:
        raise MusesynthError(f"--composers: cannot read {path} (CSV with columns file,composer or JSON "
                             f"{{file: composer}}): {exc}") from None


def composer_of_files(rels: list[str], source: str) -> dict[str, str]:
    """Relative path -> normalised composer, for the files that have one."""
    if source == FOLDER:
        table = {r: r.split("/")[0] for r in rels if "/" in r}
    else:
        table = {k.replace("\\", "/"): v for k, v in _read_table(Path(source)).items()}
    out = {r: normalise(table[r]) for r in rels if r in table and normalise(table[r])}
    if not out:
        raise MusesynthError(f"--composers {source}: no file of the MIDI folder has a composer (with '{FOLDER}', "
                             f"files must sit in one folder per composer)")
    return out
