"""Record the SHA-256 of a shipped model's weights in its config.json, for folders exported before
``export`` wrote it: ``python scripts/sign_shipped.py musesynth/pretrained/bach``.

Only config.json changes (one key added, everything else as it was); model.safetensors is read, never
written. After this, loading the folder refuses weights that differ from the ones signed here."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from musesynth.artifacts.load import load_model
from musesynth.artifacts.shipped import CONFIG, DIGEST, WEIGHTS, read_config
from musesynth.atomic import atomic_write_text


def sign(folder: Path) -> str:
    load_model(folder)  # the weights pass every check before they are vouched for
    config = read_config(folder)
    digest = hashlib.sha256((folder / WEIGHTS).read_bytes()).hexdigest()
    if config.get(DIGEST) not in (None, digest):
        raise SystemExit(f"{folder / CONFIG} already records another SHA-256: re-export instead")
    config[DIGEST] = digest
    atomic_write_text(folder / CONFIG, json.dumps(config, indent=2) + "\n")
    load_model(folder)  # and the signed folder loads
    return digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a shipped model folder (config.json + model.safetensors)")
    print(f"{sign(parser.parse_args().folder)}  {WEIGHTS}")


if __name__ == "__main__":
    main()
