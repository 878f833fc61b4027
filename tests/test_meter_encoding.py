from __future__ import annotations

import numpy as np
import pytest
import symusic
from conftest import make_score
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musesynth.errors import MidiReadError, MusesynthError
from musesynth.tokenize import encoding_from_vocab, get_encoding
from musesynth.tokenize.key_finding import find_key, key_correlations
from musesynth.tokenize.meter import (
    T_NOTE,
    key_name,
    key_signature_sharps,
    parse_key,
)
from musesynth.tokenize.midi_io import Notes, load_score, score_notes

ENC = get_encoding("meter")
CHORD = get_encoding("chord")
TPQ = 480
STEP = TPQ // ENC.resolution  # ticks per grid step
MODES_IDX = {"major": 0, "minor": 1}
SIGS = [(4, 4), (3, 4), (6, 8), (2, 4), (5, 8), (3, 2), (12, 8), (7, 16)]


def reread(score: symusic.Score) -> symusic.Score:
    return symusic.Score.from_midi(score.dumps_midi())


def toks(ids) -> list[str]:
    return [ENC.vocab.tokens[i] for i in ids]


def score_with(notes, sigs=(), keys=(), markers=(), tempos=None) -> symusic.Score:
    """make_score plus time signatures (tick, n, d), key signatures (tick, sharps, tonality), markers."""
    s = make_score(notes, tpq=TPQ, tempos=tempos)
    s.time_signatures = [symusic.TimeSignature(t, n, d) for t, n, d in sigs]
    s.key_signatures = [symusic.KeySignature(t, k, m) for t, k, m in keys]
    s.markers = [symusic.TextMeta(t, text) for t, text in markers]
    return s


def signatures(score: symusic.Score) -> list[tuple[int, int]]:
    """The time signatures of a score in order, without consecutive repeats."""
    out: list[tuple[int, int]] = []
    for t in score.time_signatures:
        if not out or out[-1] != (t.numerator, t.denominator):
            out.append((t.numerator, t.denominator))
    return out


def bar_steps(n: int, d: int) -> int:
    return n * 4 * ENC.resolution // d


# ---------------------------------------------------------------------- vocabulary
def test_vocabulary_layout_and_registry():
    assert len(ENC.vocab) == 490 + 64 + 16  # + REPEAT_1 .. REPEAT_64, RUN_1 .. RUN_16
    kinds = [t.split("_")[0] for t in ENC.vocab.tokens]
    assert kinds.count("NOTE") == 88 and kinds.count("DUR") == 96 and kinds.count("TEMPO") == 29
    assert kinds.count("POS") == 16 * ENC.resolution and kinds.count("KEY") == 24
    assert kinds.count("TIMESIG") == 56 and kinds.count("REPEAT") == 64 and kinds.count("RUN") == 16
    assert "SHIFT" not in kinds
    assert {"BAR", "PHRASE", "KEY_F#_minor", "KEY_D_major", "TIMESIG_6/8", "TIMESIG_3/4"} <= set(ENC.vocab.tokens)
    # the NOTE/DUR/TEMPO token strings are the chord encoding's
    shared = [t for t in CHORD.vocab.tokens if t.split("_")[0] in ("NOTE", "DUR", "TEMPO")]
    assert [t for t in ENC.vocab.tokens if t.split("_")[0] in ("NOTE", "DUR", "TEMPO")] == shared
    assert encoding_from_vocab(ENC.vocab.to_dict()).vocab == ENC.vocab
    assert len(CHORD.vocab) == 312


def test_vocabularies_saved_before_repeat_tokens_still_load():
    """A dataset or checkpoint made before REPEAT tokens existed has no max_repeat_bars: it is rebuilt
    as the 490-token vocabulary it was, with the same ids, and encodes without repeat marks."""
    old = ENC.vocab.to_dict()
    old["params"].pop("max_repeat_bars")
    old["tokens"] = [t for t in old["tokens"] if not t.startswith(("REPEAT_", "RUN_"))]
    legacy = encoding_from_vocab(old)
    assert len(legacy.vocab) == 490 and legacy.vocab.tokens == ENC.vocab.tokens[:490]
    piece = score_with([(i * 1920 + b * 480, 480, 60 + b) for i in range(4) for b in range(4)], sigs=[(0, 4, 4)])
    new_ids = ENC.encode(piece)
    assert legacy.repeat_spec() is None
    marks = (ENC.repeat_of[new_ids] > 0) | (ENC.run_of[new_ids] > 0)
    assert marks.any() and np.array_equal(legacy.encode(piece), new_ids[~marks])


def _bars(ids) -> list[list[str]]:
    out: list[list[str]] = []
    for t in toks(ids):
        if t == "BAR":
            out.append([])
        elif out and t != "EOS":
            out[-1].append(t)
    return out


def test_repeated_bars_are_marked_and_round_trip():
    """A passage of bars identical (content and meter) to the bars k earlier carries REPEAT_k RUN_n after
    its first BAR (one k per passage); the tokens round-trip and decoding ignores the marks."""
    a = [(0, 480, 60), (480, 480, 62), (960, 960, 64)]
    b = [(0, 960, 67), (960, 960, 65)]
    c = [(0, 1920, 72)]
    bars = [a, b, c, a, b, [(0, 1920, 48)], b]
    notes = [(i * 1920 + t, d, p) for i, bar in enumerate(bars) for t, d, p in bar]
    ids = ENC.encode(score_with(notes, sigs=[(0, 4, 4)], keys=[(0, 0, 0)]))
    marks = [" ".join(bar[:2]) if bar and bar[0].startswith("REPEAT_") else None for bar in _bars(ids)]
    assert marks == [None, None, None, "REPEAT_3 RUN_2", None, None, "REPEAT_2 RUN_1"]
    assert np.array_equal(ENC.encode(reread(ENC.decode(ids))), ids)
    plain = ids[(ENC.repeat_of[ids] == 0) & (ENC.run_of[ids] == 0)]
    assert ENC.decode(plain).dumps_midi() == ENC.decode(ids).dumps_midi()
    # a bar in another meter is no repeat of one with the same notes
    ids34 = ENC.encode(score_with([(0, 480, 60), (1440, 480, 60)], sigs=[(0, 3, 4)]))
    assert [bar[0] for bar in _bars(ids34)] == ["POS_0", "REPEAT_1"] and _bars(ids34)[1][1] == "RUN_1"
    # a bar played 20 times: one mark per 16 bars at most
    ids20 = ENC.encode(score_with([(i * 1920, 480, 60) for i in range(20)], sigs=[(0, 4, 4)]))
    assert [x for x in toks(ids20) if x.startswith(("REPEAT", "RUN"))] == ["REPEAT_1", "RUN_16", "REPEAT_1", "RUN_3"]
    assert np.array_equal(ENC.encode(reread(ENC.decode(ids20))), ids20)
    ids_change = ENC.encode(score_with([(0, 480, 60), (1920, 480, 60)], sigs=[(0, 4, 4), (1920, 3, 4)]))
    assert not any(t.startswith("REPEAT") for t in toks(ids_change))


def test_header_and_bars_of_a_simple_piece():
    ids = ENC.encode(score_with([(0, 480, 60), (480, 480, 64), (1920, 960, 67)], sigs=[(0, 4, 4)],
                                keys=[(0, 0, 0)]))
    assert toks(ids) == ["BOS", "KEY_C_major", "TIMESIG_4/4", "TEMPO_120",
                         "BAR", "POS_0", "NOTE_60", "DUR_12", "POS_12", "NOTE_64", "DUR_12",
                         "BAR", "POS_0", "NOTE_67", "DUR_24", "EOS"]


# ---------------------------------------------------------------------- round trips
def test_real_chorales_round_trip_and_keep_meter_key_and_fermatas(bach_dir):
    files = sorted(bach_dir.rglob("*.mid"))
    assert len(files) >= 10
    with_phrase = 0
    for f in files:
        src = load_score(f)
        ids = ENC.encode(src)
        decoded = ENC.decode(ids)
        again = reread(decoded)
        np.testing.assert_array_equal(ENC.encode(again), ids, err_msg=str(f))
        q, q2 = ENC.quantize(src), ENC.quantize(again)
        for k in q:
            np.testing.assert_array_equal(q2[k], q[k], err_msg=f"{f}: {k}")
        # the key written back is the piece's key: the source's signature, or (a Dorian-notated or modal
        # piece) the key its closing bass names
        n = score_notes(src)
        tonic, mode = ENC.key_of(ids)
        bass = int(q["pitch"][q["onset"] == q["onset"].max()].min()) % 12
        assert key_signature_sharps(tonic, mode) == n.key_sharps[0] or tonic == bass, f
        assert [(k.key, k.tonality) for k in again.key_signatures] == [(key_signature_sharps(tonic, mode),
                                                                        MODES_IDX[mode])]
        # the time signature of the first full bar is the source's, and so are the notes' times
        sig, src_sig = signatures(again), signatures(src)
        assert sig == src_sig, f
        if len(src_sig) <= 2:  # a pickup, then the meter
            assert ENC.vocab.tokens[ids[2]] == "TIMESIG_{}/{}".format(*src_sig[-1])
        np.testing.assert_array_equal(CHORD.encode(again), CHORD.encode(src), err_msg=str(f))
        assert toks(ids).count("PHRASE") == len(n.fermata_time) == len(again.markers)
        with_phrase += "PHRASE" in toks(ids)
    assert with_phrase >= len(files) // 2


@st.composite
def metered_piece(draw):
    """Random grid notes under random time signatures changing at bar lines, maybe a pickup bar,
    random fermata markers and a random key signature."""
    segs = draw(st.lists(st.tuples(st.sampled_from(SIGS), st.integers(1, 3)), min_size=1, max_size=3))
    pickup = draw(st.integers(0, 3))  # in quarter notes; 0: none
    sigs, t = [], 0
    if pickup and pickup * ENC.resolution < bar_steps(*segs[0][0]):
        sigs.append((0, pickup, 4))
        t = pickup * ENC.resolution
    for (n, d), bars in segs:
        sigs.append((t * STEP, n, d))
        t += bars * bar_steps(n, d)
    notes = draw(st.lists(st.tuples(st.integers(0, t - 1), st.integers(1, 96), st.integers(21, 108)),
                          min_size=1, max_size=40))
    fermatas = draw(st.lists(st.integers(0, t), max_size=4))
    key = draw(st.none() | st.tuples(st.integers(-6, 6), st.integers(0, 1)))
    bpm = draw(st.sampled_from([float(x) for x in ENC.tempos]))
    changes = draw(st.lists(st.tuples(st.integers(1, t), st.sampled_from([float(x) for x in ENC.tempos])),
                            max_size=3))
    off_bar = draw(st.none() | st.tuples(st.integers(1, t), st.sampled_from(SIGS)))  # not on a bar line
    if off_bar:
        sigs = sorted([*sigs, (off_bar[0] * STEP, *off_bar[1])], key=lambda x: x[0])
    tempos = [(0, bpm)] + [(c * STEP, b) for c, b in changes]
    return sigs, notes, fermatas, key, tempos


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(piece=metered_piece())
def test_round_trip_property_random_metered_pieces(piece):
    sigs, notes, fermatas, key, tempos = piece
    bpm = tempos[0][1]
    arr = np.array(notes, np.int64)
    score = score_with(np.c_[arr[:, 0] * STEP, arr[:, 1] * STEP, arr[:, 2]], sigs=sigs,
                       keys=[(0, *key)] if key else [], markers=[(f * STEP, "fermata") for f in fermatas],
                       tempos=tempos)
    ids = ENC.encode(score)  # in memory: overlapping same-pitch notes in a MIDI file are ambiguous
    g = ENC.grammar()
    assert g[ids[:-1], ids[1:]].all()
    decoded = ENC.decode(ids)
    np.testing.assert_array_equal(ENC.encode(reread(decoded)), ids)
    # the notes keep their times relative to each other, their pitches and durations
    q = ENC.decode_quantized(ids)
    cq = CHORD.quantize(score)
    np.testing.assert_array_equal(q["pitch"], cq["pitch"])
    np.testing.assert_array_equal(q["onset"] - q["onset"].min(), cq["onset"] - cq["onset"].min())
    np.testing.assert_array_equal(q["duration"], cq["duration"])
    assert ENC.tempos[q["tempo_bin"][0]] == bpm or any(t == 0 for t, _ in tempos[1:])
    cq_tempo = CHORD.quantize(score)
    np.testing.assert_array_equal(q["tempo_bin"], cq_tempo["tempo_bin"])  # same tempo changes as chord
    assert 0 < toks(ids).count("PHRASE") <= len(set(fermatas)) or not fermatas
    # every bar of the source meter is a BAR token up to the last onset
    if key:  # a key outside the signature's pair needs the notes or the closing bass on its side
        major = (7 * key[0]) % 12
        tonic, mode = ENC.key_of(ids)
        if (tonic, mode) not in ((major, "major"), ((major + 9) % 12, "minor")):
            q0 = ENC.quantize(score)
            corr = key_correlations(q0["pitch"], q0["duration"])
            bass = int(q0["pitch"][q0["onset"] == q0["onset"].max()].min()) % 12
            assert tonic == bass or corr[MODES_IDX[mode] * 12 + tonic] > max(corr[major], corr[12 + (major + 9) % 12])


@settings(max_examples=40, deadline=None)
@given(ids=st.lists(st.integers(0, 489), max_size=200))
def test_any_token_sequence_decodes_to_a_playable_score(ids):
    score = ENC.decode(ids)
    assert len(score.tracks) == 1 and score.tracks[0].name == "Piano"
    reread(score)
    assert ENC.end_beats(ids) >= 0


# ---------------------------------------------------------------------- meter
@pytest.mark.parametrize("sig", [(3, 4), (6, 8)])
def test_three_four_and_six_eight_pieces_decode_with_their_time_signature(sig):
    bar = bar_steps(*sig) * STEP
    notes = [(i * bar + j * bar // 3, bar // 3, 60 + j) for i in range(4) for j in range(3)]
    ids = ENC.encode(score_with(notes, sigs=[(0, *sig)]))
    t = toks(ids)
    assert t[2] == f"TIMESIG_{sig[0]}/{sig[1]}" and t.count("BAR") == 4 and t.count("TIMESIG_4/4") == 0
    assert {x for x in t if x.startswith("POS_")} == {"POS_0", "POS_12", "POS_24"}
    dec = reread(ENC.decode(ids))
    assert [(s.time, s.numerator, s.denominator) for s in dec.time_signatures] == [(0, *sig)]
    np.testing.assert_array_equal(ENC.encode(dec), ids)


def test_time_signature_change_mid_piece():
    # 2 bars of 4/4, 2 of 3/4, 1 of 6/8, notes on every downbeat
    sigs = [(0, 4, 4), (2 * 4 * TPQ, 3, 4), (2 * 4 * TPQ + 2 * 3 * TPQ, 6, 8)]
    downbeats = [0, 4, 8, 11, 14]
    ids = ENC.encode(score_with([(b * TPQ, TPQ, 60) for b in downbeats], sigs=sigs))
    t = toks(ids)
    bars = [i for i, x in enumerate(t) if x == "BAR"]
    assert len(bars) == 5
    assert t[bars[2] + 1] == "TIMESIG_3/4" and t[bars[4] + 1] == "TIMESIG_6/8"
    # each bar opens with its onset at POS_0 (after a TIMESIG, and a REPEAT where the bar repeats one)
    assert all([x for x in t[i + 1:i + 4] if x.split("_")[0] not in ("TIMESIG", "REPEAT", "RUN")][0] == "POS_0"
               for i in bars)
    dec = reread(ENC.decode(ids))
    assert [(s.time, s.numerator, s.denominator) for s in dec.time_signatures] == sigs
    np.testing.assert_array_equal(ENC.encode(dec), ids)


def test_time_signature_off_a_bar_line_takes_effect_at_the_next_bar():
    # 3/4 written at beat 5 of a 4/4 piece: it starts at the next bar line (beat 8)
    ids = ENC.encode(score_with([(b * TPQ, TPQ, 60) for b in range(12)], sigs=[(0, 4, 4), (5 * TPQ, 3, 4)]))
    q = ENC.decode_quantized(ids)
    assert q["ts_step"].tolist() == [0, 8 * ENC.resolution]
    assert [ENC.vocab.tokens[ENC.ts0 + i] for i in q["ts_index"]] == ["TIMESIG_4/4", "TIMESIG_3/4"]


def test_unsupported_or_overlong_bars_read_as_four_four():
    for sig in [(17, 4), (9, 2), (3, 32), (5, 1)]:
        ids = ENC.encode(score_with([(0, TPQ, 60), (20 * TPQ, TPQ, 62)], sigs=[(0, *sig)]))
        assert toks(ids)[2] == "TIMESIG_4/4", sig
    assert toks(ENC.encode(score_with([(0, TPQ, 60)])))[2] == "TIMESIG_4/4"  # no signature at all


def test_pickup_bar_reads_as_the_end_of_a_full_bar_and_decodes_back():
    notes = [(0, TPQ, 67), (TPQ, 2 * TPQ, 72), (3 * TPQ, TPQ, 71), (5 * TPQ, TPQ, 69)]
    src = score_with(notes, sigs=[(0, 1, 4), (TPQ, 4, 4)])
    ids = ENC.encode(src)
    assert toks(ids)[2:8] == ["TIMESIG_4/4", "TEMPO_120", "BAR", "POS_36", "NOTE_67", "DUR_12"]
    assert toks(ids).count("TIMESIG_1/4") == 0 and toks(ids).count("BAR") == 3
    dec = reread(ENC.decode(ids))
    assert [(s.time, s.numerator, s.denominator) for s in dec.time_signatures] == [(0, 1, 4), (TPQ, 4, 4)]
    assert dec.tracks[0].notes.numpy()["time"].tolist() == [n[0] for n in notes]  # no leading silence
    np.testing.assert_array_equal(ENC.encode(dec), ids)
    assert ENC.end_beats(ids) == 5.0


def test_positions_that_go_backwards_or_past_the_bar_are_handled():
    v = ENC.vocab.id
    head = [ENC.bos_id, v("KEY_C_major"), v("TIMESIG_3/4"), v("TEMPO_120"), v("BAR")]
    ids = head + [v("POS_12"), v("NOTE_60"), v("DUR_12"), v("POS_0"), v("NOTE_64"), v("DUR_12"),  # backwards
                  v("POS_40"), v("NOTE_67"), v("DUR_12"),  # past a 3/4 bar: dropped
                  v("BAR"), v("POS_0"), v("NOTE_72"), v("DUR_12"), ENC.eos_id]
    q = ENC.decode_quantized(ids)
    assert list(zip(q["onset"].tolist(), q["pitch"].tolist())) == [(12, 60), (12, 64), (36, 72)]


# ---------------------------------------------------------------------- phrases
def test_fermata_markers_become_phrase_tokens_and_back():
    notes = [(0, TPQ, 60), (0, TPQ, 64), (TPQ, TPQ, 62), (2 * TPQ, 2 * TPQ, 60), (4 * TPQ, TPQ, 65)]
    markers = [(2 * TPQ, "fermata"), (2 * TPQ, "Fermata"),  # two voices, one onset: one PHRASE
               (int(4.5 * TPQ), "FERMATA (alto)"),  # between onsets: the onset before it
               (TPQ, "rehearsal A")]  # not a fermata
    ids = ENC.encode(score_with(notes, sigs=[(0, 4, 4)], markers=markers))
    t = toks(ids)
    assert t.count("PHRASE") == 2
    first = t.index("PHRASE")
    assert t[first - 3 : first] == ["POS_24", "NOTE_60", "DUR_24"]
    dec = reread(ENC.decode(ids))
    assert sorted((m.time, m.text) for m in dec.markers) == [(2 * TPQ, "fermata"), (4 * TPQ, "fermata")]
    np.testing.assert_array_equal(ENC.encode(dec), ids)
    assert score_notes(dec).fermata_time.tolist() == [2 * TPQ, 4 * TPQ]


def test_corpus_export_writes_fermata_markers_and_pickups(bach_dir):
    files = sorted(bach_dir.rglob("*.mid"))
    n = [score_notes(load_score(f)) for f in files]
    assert sum(x.fermata_time.size > 0 for x in n) >= len(files) // 2
    pickups = [x for x in n if x.ts_numerator.size > 1 and x.ts_time[1] > 0 and x.ts_numerator[0] == 1]
    assert pickups and all(x.onset.min() == 0 for x in pickups)


def test_notes_fields_default_for_old_callers():
    z = np.zeros(0, np.int64)
    n = Notes(z, z, z, z, z, np.zeros(0), 480)
    assert n.ts_time.size == 0 and n.key_sharps.size == 0 and n.fermata_time.size == 0


# ---------------------------------------------------------------------- keys
def test_key_rule_weighs_notes_final_bass_and_signature():
    c_major = [(i * TPQ, TPQ, p) for i, p in enumerate([60, 64, 67, 72, 65, 69, 62, 67, 71, 60, 64, 67, 60])]
    a_minor = [(i * TPQ, TPQ, p) for i, p in enumerate([57, 60, 64, 69, 62, 65, 64, 68, 71, 57, 60, 64, 57])]
    assert ENC.key_of(ENC.encode(score_with(c_major))) == (0, "major")  # no signature: notes and final bass
    assert ENC.key_of(ENC.encode(score_with(a_minor))) == (9, "minor")
    # a signature's mode flag is not trusted: "C major" on A-minor music, "A minor" on C-major music
    assert ENC.key_of(ENC.encode(score_with(a_minor, keys=[(0, 0, 0)]))) == (9, "minor")
    assert ENC.key_of(ENC.encode(score_with(c_major, keys=[(0, 0, 1)]))) == (0, "major")
    # nor is a signature that the notes and the final contradict (two sharps on C major ending on C)
    assert ENC.key_of(ENC.encode(score_with(c_major, keys=[(0, 2, 0)]))) == (0, "major")
    # G minor notated with one flat (a Dorian signature), ending on G: G minor, not D minor or F major
    g_minor = [(i * TPQ, TPQ, p) for i, p in enumerate([55, 58, 62, 67, 60, 63, 62, 66, 69, 55, 58, 62, 55])]
    assert ENC.key_of(ENC.encode(score_with(g_minor, keys=[(0, -1, 1)]))) == (7, "minor")
    # where the notes are ambiguous between relatives, the signature decides: a C-E-G / A-C-E-A line ending
    # on A reads A minor; the same with a one-sharp signature ends on the relative pair's... still on A
    ambiguous = [(i * TPQ, TPQ, p) for i, p in enumerate([60, 64, 67, 64, 60, 57])]
    assert ENC.key_of(ENC.encode(score_with(ambiguous, keys=[(0, 0, 0)])))[0] in (0, 9)
    # the first key signature is the piece's
    assert ENC.key_of(ENC.encode(score_with(g_minor, keys=[(0, -1, 1), (TPQ, 4, 0)]))) == (7, "minor")
    dec = reread(ENC.decode(ENC.encode(score_with(c_major, keys=[(0, -3, 1)]))))
    assert [(k.time, k.key, k.tonality) for k in dec.key_signatures] == [(0, 0, 0)]


def test_the_signature_breaks_a_near_tie_of_the_notes():
    """Notes that fit a key and its relative almost equally, ending on neither tonic: the signature says
    which (scores: correlation + 0.1 for the signature's pair)."""
    pitch, w = np.array([60, 62, 64, 65, 67, 69, 71]), np.ones(7)
    corr = key_correlations(pitch, w)
    assert abs(corr[0] - corr[12 + 9]) < 0.1  # C major vs A minor: close on a flat diatonic scale
    tie_keys = {find_key(pitch, w, sharps=0)} | {find_key(pitch, w)}
    assert tie_keys <= {(0, 0), (9, 1)}
    # G major's signature on the same notes does not make them G major (F natural is in them)
    assert find_key(pitch, w, sharps=1) in {(0, 0), (9, 1), (7, 0), (4, 1)}


def test_key_finding_is_transposition_equivariant_and_follows_the_final_bass():
    rng = np.random.default_rng(0)
    pitch = 60 + np.array([0, 2, 4, 5, 7, 9, 11, 0, 4, 7])[rng.integers(0, 10, 200)]
    w = rng.integers(1, 24, 200)
    onset = np.arange(200)
    for k in range(12):
        assert find_key(pitch + k, w) == (k % 12, 0)
        assert find_key(pitch + k, w, onset, sharps=(7 * k) % 12 - (12 if (7 * k) % 12 > 6 else 0)) == (k % 12, 0)
    # modulating to the dominant: the histogram leans to G, the closing C names C major
    c_g_c = np.r_[[60, 64, 67, 65, 69, 72, 62, 64, 60, 67] * 3, [67, 71, 74, 66, 69, 71, 62, 67] * 3, [48, 60, 64, 67]]
    on = np.r_[np.arange(54), [54] * 4]
    wt = np.ones(58)
    assert find_key(c_g_c, wt) == (7, 0)
    assert find_key(c_g_c, wt, on) == (0, 0)
    # ...but a closing bass does not outvote notes that are plainly in another key
    g = np.r_[[67, 71, 74, 67, 66, 69, 72, 71, 67, 62] * 5, 48]
    assert find_key(g, np.ones(g.size), np.arange(g.size)) == (7, 0)


def test_parse_key_and_names():
    assert parse_key("D major") == (2, "major")
    assert parse_key("f# minor") == (6, "minor")
    assert parse_key("Bb major") == (10, "major")
    assert parse_key("  eb   MIN ") == (3, "minor")
    assert parse_key("C_minor") == (0, "minor")
    assert parse_key("Cb major") == (11, "major")
    assert key_name(6, "minor") == "F# minor" and key_name(10, 0) == "Bb major"
    for bad in ["H major", "D", "major", "D dorian", "D## major", "", "Dmajorx"]:
        with pytest.raises(MusesynthError, match="e.g. 'D major'"):
            parse_key(bad)


def test_key_signature_sharps():
    assert key_signature_sharps(2, "major") == 2 and key_signature_sharps(5, "major") == -1
    assert key_signature_sharps(9, "minor") == 0 and key_signature_sharps(6, "minor") == 3
    assert key_signature_sharps(0, "minor") == -3 and key_signature_sharps(6, "major") == 6
    for tonic in range(12):
        for mode in (0, 1):
            s = key_signature_sharps(tonic, mode)
            assert -5 <= s <= 6
            assert (7 * s + 9 * mode) % 12 == tonic


def test_key_helpers():
    ids = ENC.encode(score_with([(0, TPQ, 60), (TPQ, TPQ, 64)], keys=[(0, 0, 0)]))
    assert ENC.key_of(ids) == (0, "major")
    d = ENC.set_key(ids, *parse_key("D major"))
    assert ENC.key_of(d) == (2, "major") and d.size == ids.size and (d[3:] == ids[3:]).all()
    assert ENC.vocab.tokens[ENC.key_token_id(6, "minor")] == "KEY_F#_minor"
    assert ENC.key_token_id(6, 1) == ENC.key_token_id(6, "minor")
    up = ENC.set_key(ids, 2, "major", transpose=True)
    assert ENC.decode_quantized(up)["pitch"].tolist() == [62, 66]
    down = ENC.set_key(ids, 7, "major", transpose=True)  # G: -5 rather than +7
    assert ENC.decode_quantized(down)["pitch"].tolist() == [55, 59]
    # a bare BOS (unconditioned generation) gets the key inserted after it
    start = ENC.set_key([ENC.bos_id], 9, "minor")
    assert toks(start) == ["BOS", "KEY_A_minor"] and ENC.key_of([ENC.bos_id]) is None
    assert ENC.grammar()[start[0], start[1]]


# ---------------------------------------------------------------------- augmentation
def test_transpose_table_moves_notes_and_key_consistently():
    notes = [(0, TPQ, 60), (TPQ, TPQ, 64), (2 * TPQ, TPQ, 67), (3 * TPQ, 2 * TPQ, 62)]
    for k in (-7, -1, 2, 5, 6):
        for keys in ([(0, 0, 0)], [(0, 1, 1)], []):
            ids = ENC.encode(score_with(notes, keys=keys))
            moved = ENC.transpose_table(k)[ids]
            shifted = [(t, d, p + k) for t, d, p in notes]
            tonic, mode = ENC.key_of(ids)
            new_keys = [(0, key_signature_sharps(tonic + k, mode), MODES_IDX[mode])] if keys else []
            np.testing.assert_array_equal(moved, ENC.encode(score_with(shifted, keys=new_keys)))
            assert ENC.key_of(moved) == ((tonic + k) % 12, mode)
    t = ENC.transpose_table(1)
    assert t[ENC.vocab.id("NOTE_108")] == -1
    assert ENC.vocab.tokens[t[ENC.vocab.id("KEY_B_minor")]] == "KEY_C_minor"
    assert ENC.vocab.tokens[ENC.transpose_table(-3)[ENC.vocab.id("KEY_C_major")]] == "KEY_A_major"
    assert (t[ENC.token_type != T_NOTE] >= 0).all()
    tempo = ENC.tempo_table(2)
    assert ENC.vocab.tokens[tempo[ENC.vocab.id("TEMPO_120")]] == CHORD.vocab.tokens[
        CHORD.tempo_table(2)[CHORD.vocab.id("TEMPO_120")]]


# ---------------------------------------------------------------------- grammar
def test_every_encoded_chorale_obeys_the_grammar(bach_dir):
    g = ENC.grammar()
    assert g.shape == (len(ENC.vocab), len(ENC.vocab))
    for f in sorted(bach_dir.rglob("*.mid")):
        ids = ENC.encode_file(f)
        assert g[ids[:-1], ids[1:]].all(), f


def test_random_walks_through_the_grammar_decode():
    g = ENC.grammar()
    rng = np.random.default_rng(0)
    assert g[ENC.bos_id].sum() == 24  # BOS -> a key
    for _ in range(20):
        seq = [ENC.bos_id]
        for _ in range(400):
            nxt = np.flatnonzero(g[seq[-1]])
            seq.append(int(rng.choice(nxt)))
            if seq[-1] == ENC.eos_id:
                break
        score = ENC.decode(seq)
        assert len(score.tracks) == 1
        again = reread(score)
        assert again.note_num() == score.note_num()
        if score.note_num():
            np.testing.assert_array_equal(ENC.encode(again), ENC.encode(reread(ENC.decode(ENC.encode(again)))))
        assert ENC.end_beats(seq) >= 0


def test_zero_note_score_is_an_error():
    with pytest.raises(MidiReadError, match="no pitched notes"):
        ENC.encode(make_score([(0, 120, 36)], drum=True))


def test_end_beats_is_where_the_prefix_ends():
    ids = ENC.encode(score_with([(0, TPQ, 60), (6 * TPQ, TPQ, 62)], sigs=[(0, 4, 4)]))
    assert ENC.end_beats(ids) == 6.0
    t = toks(ids)
    assert ENC.end_beats(ids[: t.index("BAR", 5) + 1]) == 4.0
