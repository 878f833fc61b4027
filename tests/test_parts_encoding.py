"""The part-aware encoding: every note keeps its part through MIDI -> tokens -> MIDI -> tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import symusic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musesynth.tokenize import Vocabulary, encoding_from_vocab, get_encoding, key_token_ids
from musesynth.tokenize.midi_io import load_score, voice_role

ENC = get_encoding("parts")
METER = get_encoding("meter")
TPQ = 480
STEP = TPQ // ENC.resolution
# CI keeps a copy of shared/ beside the clone
JS_FAKES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "js-fakes"


def reread(score: symusic.Score) -> symusic.Score:
    return symusic.Score.from_midi(score.dumps_midi())


def toks(ids) -> list[str]:
    return [ENC.vocab.tokens[i] for i in ids]


def multi_track(parts: list[tuple[str, int, list[tuple[int, int, int]]]], sig=(4, 4)) -> symusic.Score:
    """A score with one track per (name, program, [(onset, duration, pitch) in grid steps])."""
    s = symusic.Score(TPQ)
    for name, program, notes in parts:
        t = symusic.Track(name=name, program=program, is_drum=False)
        a = np.asarray(notes, np.int64).reshape(-1, 3)
        t.notes = symusic.Note.from_numpy(time=(a[:, 0] * STEP).astype(np.int32),
                                          duration=(a[:, 1] * STEP).astype(np.int32),
                                          pitch=a[:, 2].astype(np.int8), velocity=np.full(len(a), 90, np.int8))
        s.tracks.append(t)
    s.tempos.append(symusic.Tempo(0, 100.0))
    s.time_signatures = [symusic.TimeSignature(0, *sig)]
    return s


def track_notes(track: symusic.Track) -> set[tuple[int, int, int]]:
    a = track.notes.numpy()
    return set(zip(a["time"].tolist(), a["duration"].tolist(), a["pitch"].tolist()))


def assert_round_trip(src: symusic.Score, name: str = "") -> tuple[np.ndarray, symusic.Score]:
    """Tokens, and the decoded score, of a source whose second encoding must equal its first, parts included."""
    ids = ENC.encode(src)
    back = reread(ENC.decode(ids))
    np.testing.assert_array_equal(ENC.encode(back), ids, err_msg=name)
    q, q2 = ENC.quantize(src), ENC.quantize(back)
    assert q.keys() == q2.keys()
    for k in q:
        np.testing.assert_array_equal(q2[k], q[k], err_msg=f"{name}: {k}")
    return ids, back


# ---------------------------------------------------------------------- vocabulary and registry
def test_registry_vocabulary_and_meter_unchanged():
    assert get_encoding("parts").name == "parts"
    assert encoding_from_vocab(ENC.vocab.to_dict()).vocab.tokens == ENC.vocab.tokens
    assert len(METER.vocab) == 570 and "NOTE_60" in METER.vocab.tokens  # the meter encoding is as it was
    assert ENC.vocab.params["max_parts"] == 16
    assert len(ENC.vocab) == len(METER.vocab) + 88 * 15 + 5 + 128
    small = get_encoding("parts", max_parts=4)
    assert [t for t in small.vocab.tokens if t.startswith("NOTE_60_")] == ["NOTE_60_P0", "NOTE_60_P1", "NOTE_60_P2",
                                                                           "NOTE_60_P3"]
    assert key_token_ids(ENC) is not None  # the key controls work unchanged
    assert ENC.parts() is ENC and METER.parts() is None
    with pytest.raises(ValueError):
        get_encoding("parts", max_parts=0)


def test_roles_are_read_from_the_first_word_of_a_track_name():
    assert [voice_role(n) for n in ("Soprano", "soprano 2", "Alto\rViolin 2", "Tenor", "Bass\rContinuo", "Sopranos",
                                    "Horn 2", "", "Contrabass", "Altsax")] == [0, 0, 1, 2, 3, 0, 4, 4, 4, 4]


def test_roles_know_the_names_voices_go_by_in_other_scores():
    """Monteverdi's part-books (music21's corpus) read Canto, Alto, Quinto, Tenor, Basso; Latin, German and
    French names are the same four voices. A fifth voice has no SATB range of its own."""
    assert [voice_role(n) for n in ("Canto", "Alto", "Quinto", "Tenor", "Basso")] == [0, 1, 4, 2, 3]
    assert [voice_role(n) for n in ("Cantus", "Altus", "Tenor", "Bassus", "Superius", "Contratenor")] == [0, 1, 2, 3,
                                                                                                       0, 4]
    assert [voice_role(n) for n in ("Sopran", "Alt", "Tenor", "Bass", "Dessus", "Taille", "Basse", "TENORE.")] == [
        0, 1, 2, 3, 0, 2, 3, 2]
    assert [voice_role(n) for n in ("Dessus", "Haute-contre", "Taille", "Basse", "Ténor")] == [0, 1, 2, 3, 2]


# ---------------------------------------------------------------------- the part rules
def test_empty_duplicate_is_dropped_and_voices_come_first_in_satb_order():
    """The music21 export: an instrument before the voices and an empty duplicate Soprano."""
    horn = [(0, 12, 72), (12, 12, 74)]
    src = multi_track([("Horn 2", 43, horn), ("Soprano", 0, [(0, 24, 67)]), ("Soprano", 0, []),
                       ("Alto", 0, [(0, 24, 62)]), ("Tenor", 0, [(0, 24, 59)]), ("Bass", 0, [(0, 24, 43)])])
    ids, back = assert_round_trip(src)
    assert toks(ids)[4:14] == ["PART_Soprano", "PROGRAM_0", "PART_Alto", "PROGRAM_0", "PART_Tenor", "PROGRAM_0",
                               "PART_Bass", "PROGRAM_0", "PART_Other", "PROGRAM_43"]
    assert [(t.name, t.program) for t in back.tracks] == [("Soprano", 0), ("Alto", 0), ("Tenor", 0), ("Bass", 0),
                                                          ("Part 5", 43)]
    for decoded, source in zip(back.tracks, [src.tracks[i] for i in (1, 3, 4, 5, 0)]):
        assert track_notes(decoded) == track_notes(source)
    # at an onset the first part comes first, then downwards (the soprano before the alto, tenor and bass)
    first_bar = toks(ids)[toks(ids).index("BAR"):]
    assert first_bar[2:12:2] == ["NOTE_67_P0", "NOTE_62_P1", "NOTE_59_P2", "NOTE_43_P3", "NOTE_72_P4"]
    assert ENC.header_info(ids)["parts"] == ["Soprano", "Alto", "Tenor", "Bass", "Other"]


def test_a_vocabulary_saved_before_top_first_still_writes_the_bass_first():
    src = multi_track([("Soprano", 0, [(0, 24, 67)]), ("Alto", 0, [(0, 24, 62)]), ("Tenor", 0, [(0, 24, 59)]),
                       ("Bass", 0, [(0, 24, 43)])])
    saved = get_encoding("parts").vocab.to_dict()
    assert saved["params"]["top_first"] is True
    del saved["params"]["top_first"]  # as every parts vocabulary was saved before it existed
    old = encoding_from_vocab(saved)
    assert not old.top_first and old.vocab.fingerprint == Vocabulary.from_dict(saved).fingerprint
    ids = old.encode(src)
    body = [old.vocab.tokens[i] for i in ids][[old.vocab.tokens[i] for i in ids].index("BAR"):]
    assert body[2:10:2] == ["NOTE_43_P3", "NOTE_59_P2", "NOTE_62_P1", "NOTE_67_P0"]
    back = reread(old.decode(ids))
    np.testing.assert_array_equal(old.encode(back), ids)
    assert [track_notes(t) for t in back.tracks] == [track_notes(t) for t in src.tracks]


def test_four_unnamed_tracks_are_satb_from_the_top():
    src = multi_track([("", 0, [(0, 12, 72)]), ("", 0, [(0, 12, 64)]), ("", 0, [(0, 12, 55)]), ("", 0, [(0, 12, 48)])])
    _, back = assert_round_trip(src)
    assert [t.name for t in back.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert [track_notes(t) for t in back.tracks] == [track_notes(t) for t in src.tracks]


def test_unison_of_two_parts_is_two_notes_and_parts_past_the_limit_join_the_last():
    src = multi_track([("Soprano", 0, [(0, 12, 64)]), ("Alto", 0, [(0, 24, 64)]), ("Tenor", 0, [(0, 12, 55)])])
    ids, back = assert_round_trip(src)
    assert toks(ids).count("NOTE_64_P0") == toks(ids).count("NOTE_64_P1") == 1
    assert [len(t.notes) for t in back.tracks] == [1, 1, 1]
    two = get_encoding("parts", max_parts=2)
    q = two.quantize(src)
    assert sorted(q["part"].tolist()) == [0, 1, 1] and q["role"].tolist() == [0, 1]


def test_extra_parts_dropped_leave_the_first_soprano_alto_tenor_and_bass():
    four = get_encoding("parts", max_parts=4, drop_extra_parts=True)
    assert four.vocab.params["drop_extra_parts"] is True and "drop_extra_parts" not in ENC.vocab.params
    src = multi_track([("Violin", 40, [(0, 12, 84)]), ("Soprano 1", 0, [(0, 12, 72)]), ("Soprano 2", 0, [(0, 12, 71)]),
                       ("Alto", 0, [(0, 12, 64)]), ("Tenor", 0, [(0, 12, 55)]), ("Bass", 0, [(0, 12, 48)]),
                       ("Continuo", 32, [(0, 12, 36)])])
    q = four.quantize(src)
    assert q["role"].tolist() == [0, 1, 2, 3]
    assert sorted(zip(q["part"].tolist(), q["pitch"].tolist())) == [(0, 72), (1, 64), (2, 55), (3, 48)]
    back = four.decode(four.encode(src))
    assert [t.name for t in back.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    merged = get_encoding("parts", max_parts=4).quantize(src)  # the default merges them into the last part
    assert (merged["part"] == 3).sum() == 4


def test_every_other_encoding_keeps_one_piano_track():
    src = multi_track([("Soprano", 0, [(0, 12, 64)]), ("Bass", 0, [(0, 12, 48)])])
    for name in ("chord", "meter", "performance"):
        enc = get_encoding(name)
        assert [t.name for t in enc.decode(enc.encode(src)).tracks] == ["Piano"]


# ---------------------------------------------------------------------- real music
def test_sixteen_chorales_round_trip_with_their_parts(bach_dir):
    files = sorted(bach_dir.rglob("*.mid"))
    assert len(files) >= 16
    g = ENC.grammar()
    for f in files[:16]:
        src = load_score(f)
        ids, back = assert_round_trip(src, str(f))
        assert g[ids[:-1], ids[1:]].all(), f
        voices = [t for t in src.tracks if t.name in ("Soprano", "Alto", "Tenor", "Bass") and len(t.notes)]
        assert [t.name for t in back.tracks[:4]] == ["Soprano", "Alto", "Tenor", "Bass"], f
        assert len(back.tracks) == sum(1 for t in src.tracks if len(t.notes)), f
        # each voice keeps its notes, on the grid the chorales are written on
        scale = back.ticks_per_quarter / src.ticks_per_quarter
        shift = back.tracks[0].notes[0].time - voices[0].notes[0].time * scale
        for decoded, source in zip(back.tracks, voices):
            a = source.notes.numpy()
            dur = np.minimum(a["duration"] * scale, ENC.max_dur * STEP)  # notes are at most 8 beats, as in meter
            want = set(zip((a["time"] * scale + shift).astype(int).tolist(), dur.astype(int).tolist(),
                           a["pitch"].tolist()))
            assert track_notes(decoded) == want, (f, source.name)
        # the parts' notes together are the meter encoding's notes (which merges unisons)
        assert set(METER.decode_quantized(METER.encode(src))["pitch"]) == set(ENC.decode_quantized(ids)["pitch"])


@pytest.mark.skipif(not JS_FAKES.is_dir(), reason=f"the JS Fake Chorales are not at {JS_FAKES} (CI keeps shared/ "
                                                   "beside the clone)")
def test_sixteen_js_fakes_round_trip_as_satb():
    files = sorted((JS_FAKES / "midi").glob("*.mid"))[:8] + sorted((JS_FAKES / "jsf-extended").glob("*.mid"))[:8]
    assert len(files) == 16
    for f in files:
        src = load_score(f)
        ids, back = assert_round_trip(src, str(f))
        assert [t.name for t in back.tracks] == ["Soprano", "Alto", "Tenor", "Bass"], f
        scale = back.ticks_per_quarter / src.ticks_per_quarter
        for decoded, source in zip(back.tracks, src.tracks):
            a = source.notes.numpy()
            want = set(zip((a["time"] * scale).astype(int).tolist(), (a["duration"] * scale).astype(int).tolist(),
                           a["pitch"].tolist()))
            assert track_notes(decoded) == want, f


# ---------------------------------------------------------------------- random voices
@st.composite
def satb_piece(draw):
    """Four monophonic voices on a 16th grid (3 steps), with rests, a late entry, and crossings as drawn."""
    ranges = [(60, 81), (53, 74), (48, 69), (36, 62)]  # overlapping: voices cross
    late = draw(st.integers(1, 3))  # this voice enters late
    parts = []
    for v, (lo, hi) in enumerate(ranges):
        t = draw(st.integers(4, 32)) * 3 if v == late else 0
        notes = []
        for _ in range(draw(st.integers(1, 10))):
            if notes or v:  # the soprano starts the piece (else the decoded MIDI starts later: a pickup)
                t += draw(st.sampled_from([0, 0, 0, 3, 12]))  # a rest in this voice, sometimes
            d = draw(st.sampled_from([3, 6, 12, 24, 36]))
            notes.append((t, d, draw(st.integers(lo, hi))))
            t += d
        parts.append((("Soprano", "Alto", "Tenor", "Bass")[v], 0, notes))
    return parts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=satb_piece())
def test_round_trip_property_voices_cross_rest_and_enter_late(parts):
    src = multi_track(parts)
    ids, back = assert_round_trip(src)
    assert ENC.grammar()[ids[:-1], ids[1:]].all()
    assert [t.name for t in back.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    for decoded, source in zip(back.tracks, src.tracks):
        assert track_notes(decoded) == track_notes(source)  # each note in its own voice, crossing or not


def test_crossing_voices_keep_their_parts():
    src = multi_track([("Soprano", 0, [(0, 12, 60), (12, 12, 72)]), ("Alto", 0, [(0, 24, 67)]),
                       ("Tenor", 0, [(12, 12, 50)]), ("Bass", 0, [(0, 24, 40)])])  # soprano below alto; tenor late
    _, back = assert_round_trip(src)
    assert [track_notes(t) for t in back.tracks] == [track_notes(t) for t in src.tracks]


# ---------------------------------------------------------------------- augmentation and decoding robustness
def test_transposition_moves_notes_within_their_part():
    src = multi_track([("Soprano", 0, [(0, 12, 72)]), ("Bass", 0, [(0, 12, 48)])])
    ids = ENC.encode(src)
    up = ENC.transpose_table(2)[ids]
    assert "NOTE_74_P0" in toks(up) and "NOTE_50_P1" in toks(up)
    moved = ENC.transpose_ids(ids, 2)
    assert "NOTE_74_P0" in toks(moved) and "NOTE_50_P1" in toks(moved) and "KEY_D_major" in toks(moved)
    top = ENC.note_token_id(108, 0)
    assert ENC.transpose_table(1)[top] == -1


@settings(max_examples=30, deadline=None)
@given(ids=st.lists(st.integers(0, len(ENC.vocab) - 1), max_size=200))
def test_any_token_sequence_decodes_to_a_playable_score(ids):
    score = ENC.decode(ids)
    reread(score)
    assert ENC.end_beats(ids) >= 0


def test_random_walks_through_the_grammar_decode_to_named_tracks():
    g = ENC.grammar()
    rng = np.random.default_rng(1)
    for _ in range(10):
        seq = [ENC.bos_id]
        for _ in range(300):
            seq.append(int(rng.choice(np.flatnonzero(g[seq[-1]]))))
            if seq[-1] == ENC.eos_id:
                break
        score = ENC.decode(seq)
        names = [t.name for t in score.tracks]
        assert all(n in ("Soprano", "Alto", "Tenor", "Bass") or n.startswith("Part ") for n in names)
        again = reread(score)
        if again.note_num():
            assert_round_trip(again)


# ---------------------------------------------------------------------- output MIDI
def test_generated_midi_has_one_named_track_per_part_holding_the_primers_voices(bach_dir, tmp_path):
    from musesynth.cli import main

    ds, runs, out = tmp_path / "ds", tmp_path / "runs", tmp_path / "out"
    assert main(["data", "-d", str(bach_dir), "-o", str(ds), "--encoding", "parts"]) == 0
    assert main(["train", "-d", str(ds), "-m", "gru", "--seq-len", "128", "--embed-dim", "16", "--hidden-dim", "32",
                 "--num-layers", "1", "--batch-size", "8", "--max-steps", "2", "--warmup-steps", "1", "-o", str(runs),
                 "--run-name", "p", "--no-tensorboard", "-q"]) == 0
    primer = next(f for f in sorted(bach_dir.rglob("*.mid"))
                  if [t.name for t in load_score(f).tracks if len(t.notes)] == ["Soprano", "Alto", "Tenor", "Bass"])
    assert main(["generate", "-c", str(runs / "p"), "--primer", str(primer), "--primer-tokens", "60", "-n", "40",
                 "--no-wav", "--no-png", "-o", str(out)]) == 0
    (midi,) = sorted(out.glob("*.mid"))
    score = load_score(midi)
    assert [t.name for t in score.tracks[:4]] == ["Soprano", "Alto", "Tenor", "Bass"]
    primed = ENC.decode_quantized(ENC.encode(load_score(primer))[:60])
    k = score.ticks_per_quarter // ENC.resolution
    for v, track in enumerate(score.tracks[:4]):  # the primer's notes stay in their voices, at their times
        sel = primed["part"] == v
        want = set(zip(((primed["onset"][sel] - primed["offset"]) * k).tolist(), primed["pitch"][sel].tolist()))
        assert want and want <= {(n.time, n.pitch) for n in track.notes}, v


def test_a_header_declares_at_most_max_parts_and_a_bare_part_plays_program_0():
    part = ENC.vocab.id("PART_Alto")
    ids = [ENC.bos_id, ENC.key_token_id(0, 0), ENC.vocab.id("TIMESIG_4/4"), ENC.vocab.id("TEMPO_120"),
           *[part] * 40, ENC.vocab.id("BAR"), ENC.vocab.id("POS_0"), int(ENC.note_token_id(60, 1)),
           ENC.vocab.id("DUR_12"), ENC.eos_id]
    role, program = ENC.parts_of(ids)
    assert role.size == ENC.max_parts and not program.any()
    score = ENC.decode(ids)
    assert len(score.tracks) == ENC.max_parts and [len(t.notes) for t in score.tracks[:2]] == [0, 1]
    q = ENC.decode_quantized(ids)
    del q["role"], q["program"]  # content edited without its parts (as infilling edits it)
    assert toks(ENC.encode_quantized(q))[4:8] == ["PART_Other", "PROGRAM_0", "PART_Other", "PROGRAM_0"]

