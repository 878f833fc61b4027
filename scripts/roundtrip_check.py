"""Check the exact round trip MIDI -> tokens -> MIDI -> tokens on every file of a folder.

    python scripts/roundtrip_check.py -d data/bach_midi [--encoding chord|meter]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from musesynth.data.corpus import DEFAULT_CORPUS_DIR
from musesynth.data.files import find_midi_files
from musesynth.errors import MidiReadError
from musesynth.tokenize import get_encoding
from musesynth.tokenize.midi_io import load_score


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-d", "--midi-dir", default=DEFAULT_CORPUS_DIR)
    ap.add_argument("--resolution", type=int, default=12)
    ap.add_argument("--encoding", default="chord", choices=["chord", "meter"])
    args = ap.parse_args()
    enc = get_encoding(args.encoding, resolution=args.resolution)
    files = find_midi_files(args.midi_dir)
    ok = bad = skipped = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rt.mid"
        for f in files:
            try:
                q = enc.quantize(load_score(f))
                ids = enc.encode_quantized(q)
            except MidiReadError:
                skipped += 1
                continue
            enc.decode(ids).dump_midi(str(out))
            back = load_score(out)
            q2 = enc.quantize(back)
            same = np.array_equal(enc.encode(back), ids) and all(np.array_equal(q[k], q2[k]) for k in q)
            ok += same
            bad += not same
            if not same:
                print(f"MISMATCH {f}")
    print(f"round trip exact on {ok}/{ok + bad} files ({skipped} unusable skipped)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
