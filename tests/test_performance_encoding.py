from __future__ import annotations

import numpy as np
from conftest import make_score

from musesynth.tokenize import encoding_from_vocab, get_encoding

PERF = get_encoding("performance")


def test_performance_events_vocabulary():
    kinds = {t.split("_")[0] for t in PERF.vocab.tokens}
    assert {"NoteOn", "NoteOff", "TimeShift", "Velocity", "Tempo", "BOS", "EOS", "PAD"} <= kinds
    assert encoding_from_vocab(PERF.vocab.to_dict()).vocab == PERF.vocab


def test_performance_round_trip_keeps_notes_and_velocity():
    notes = [(0, 480, 60), (240, 240, 64), (480, 960, 67), (960, 480, 72)]
    score = make_score(notes)
    ids = PERF.encode(score)
    assert ids[0] == PERF.bos_id and ids[-1] == PERF.eos_id
    back = PERF.decode(ids)
    got = back.tracks[0].notes.numpy()
    tpq = back.ticks_per_quarter
    assert sorted(zip((got["time"] * 480 // tpq).tolist(), got["pitch"].tolist())) == sorted(
        (o, p) for o, _, p in notes
    )
    assert set(got["velocity"].tolist()) <= set(range(85, 95))  # 90 in, one of 32 bins out
    np.testing.assert_array_equal(PERF.encode(back), ids)


def test_performance_grammar_and_transposition(bach_dir):
    f = sorted(bach_dir.rglob("*.mid"))[0]
    ids = PERF.encode_file(f)
    assert PERF.grammar()[ids[:-1], ids[1:]].all()
    up = PERF.transpose_table(3)[ids]
    assert (up >= 0).all()
    a = PERF.decode(ids).tracks[0].notes.numpy()["pitch"]
    b = PERF.decode(up).tracks[0].notes.numpy()["pitch"]
    np.testing.assert_array_equal(np.sort(b), np.sort(a) + 3)
