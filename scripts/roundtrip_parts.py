"""Check the exact round trip with parts, MIDI -> tokens -> MIDI -> tokens, on every file of some folders.

    python scripts/roundtrip_parts.py /tmp/parts/bach_midi ../shared/data/js-fakes/midi [--chords]

A file passes when the second tokens equal the first, its quantised content (notes with their parts, the
parts' roles and programs, tempo, meter, key, fermatas) is equal, and the decoded MIDI has one track per
part of the source (every track with pitched notes, ``midi_io.score_parts``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from musesynth.data.files import find_midi_files
from musesynth.errors import MidiReadError
from musesynth.tokenize import get_encoding
from musesynth.tokenize.midi_io import load_score
from musesynth.tokenize.parts import PartsEncoding


def check(enc: PartsEncoding, path: Path, out: Path) -> bool:
    """Whether one file's round trip is exact with parts (the module docstring's three conditions)."""
    src = load_score(path)
    q = enc.quantize(src)
    ids = enc.encode_quantized(q)
    enc.decode(ids).dump_midi(str(out))
    back = load_score(out)
    q2 = enc.quantize(back)
    tracks = sum(1 for t in src.tracks if not t.is_drum and len(t.notes))
    written = sum(1 for t in back.tracks if len(t.notes))
    return (np.array_equal(enc.encode(back), ids) and q.keys() == q2.keys()
            and all(np.array_equal(q[k], q2[k]) for k in q) and written == min(tracks, enc.max_parts))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", help="folders of MIDI files (searched recursively)")
    ap.add_argument("--chords", action="store_true", help="the vocabulary with a CHORD token per onset")
    args = ap.parse_args()
    enc = get_encoding("parts", chords=args.chords)
    assert isinstance(enc, PartsEncoding)
    bad_total = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rt.mid"
        for folder in args.folders:
            ok = bad = skipped = 0
            for f in find_midi_files(folder):
                try:
                    same = check(enc, f, out)
                except MidiReadError as exc:
                    skipped += 1
                    print(f"SKIPPED {f}: {exc}")
                    continue
                ok += same
                bad += not same
                if not same:
                    print(f"MISMATCH {f}")
            bad_total += bad
            print(f"{folder}: round trip with parts exact on {ok}/{ok + bad} files ({skipped} unusable skipped)")
    return 1 if bad_total else 0


if __name__ == "__main__":
    sys.exit(main())
