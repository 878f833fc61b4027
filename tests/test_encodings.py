"""Contracts every registered encoding keeps (a new encoding is tested by registering it)."""

from __future__ import annotations

import numpy as np
import pytest

from musesynth.tokenize import ENCODINGS, encoding_from_vocab, get_encoding


def reread(score, tmp_path, name="x.mid"):
    import symusic

    path = tmp_path / name
    score.dump_midi(str(path))
    return symusic.Score(str(path))


@pytest.fixture(params=sorted(ENCODINGS))
def enc(request):
    return get_encoding(request.param)


def notes_of(score) -> list[tuple[int, int, int, int]]:
    n = score.tracks[0].notes.numpy()
    return sorted(zip(n["time"].tolist(), n["pitch"].tolist(), n["duration"].tolist(), n["velocity"].tolist()))


def test_round_trip_midi_tokens_midi_is_exact_on_real_chorales(enc, bach_dir, tmp_path):
    """tokens -> MIDI file -> tokens -> MIDI gives the same notes; grid encodings give the same tokens too
    (the performance encoding may list simultaneous note-offs in another order: the same music)."""
    for f in sorted(bach_dir.rglob("*.mid"))[:8]:
        ids = enc.encode_file(f)
        first = enc.decode(ids)
        again = enc.encode(reread(first, tmp_path))
        assert notes_of(enc.decode(again)) == notes_of(first), f"{enc.name}: {f.name}"
        if enc.name != "performance":
            np.testing.assert_array_equal(again, ids, err_msg=f"{enc.name}: {f.name}")


def test_encoded_sequences_obey_the_grammar_and_frame_with_bos_eos(enc, bach_dir):
    g = enc.grammar()
    for f in sorted(bach_dir.rglob("*.mid"))[:4]:
        ids = enc.encode_file(f)
        assert ids[0] == enc.bos_id and ids[-1] == enc.eos_id
        assert g[ids[:-1], ids[1:]].all(), f"{enc.name}: {f.name}"


def test_vocabulary_rebuilds_the_same_encoding(enc):
    again = encoding_from_vocab(enc.vocab.to_dict())
    assert again.vocab.tokens == enc.vocab.tokens and again.name == enc.name


def test_transposition_keeps_the_rhythm(enc, bach_dir):
    f = sorted(bach_dir.rglob("*.mid"))[0]
    ids = enc.encode_file(f)
    moved = enc.transpose_table(2)[ids]
    assert (moved >= 0).all()
    a, b = enc.decode(ids), enc.decode(moved)
    na, nb = a.tracks[0].notes.numpy(), b.tracks[0].notes.numpy()
    np.testing.assert_array_equal(np.sort(na["time"]), np.sort(nb["time"]))
    assert sorted(na["pitch"].astype(int) + 2) == sorted(nb["pitch"].astype(int))
