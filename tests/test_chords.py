"""The parts encoding's ``chords`` option: a CHORD token per onset, read from the notes, placed after the first
part's notes; exact round trip, transposition, melody prompts without it, and decoding that writes it once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import symusic
import torch
from hypothesis import HealthCheck, given, settings

from musesynth.cli import main
from musesynth.data.melody_first import melody_only
from musesynth.generate.voices import Fixed, Frame, OneNotePerVoice, VoiceConstraint, most_sounding
from musesynth.tokenize import chords, get_encoding
from musesynth.tokenize.chords import onset_labels
from musesynth.tokenize.midi_io import load_score
from musesynth.tokenize.parts import T_CHORD
from tests.test_parts_encoding import JS_FAKES, multi_track, reread, satb_piece

ENC = get_encoding("parts", max_parts=4, drop_extra_parts=True, chords=True)
PLAIN = get_encoding("parts", max_parts=4, drop_extra_parts=True)


def label(*pitches: int) -> str:
    """The label of notes that all sound at time 0 (lowest note first or not)."""
    p = np.asarray(pitches)
    _, lab = onset_labels(np.zeros(p.size, np.int64), p, np.full(p.size, 12), ENC.max_dur)
    return ENC.vocab.tokens[ENC.chord0 + int(lab[0])]


def toks(ids) -> list[str]:
    return [ENC.vocab.tokens[i] for i in ids]


def round_trip(src: symusic.Score) -> np.ndarray:
    ids = ENC.encode(src)
    np.testing.assert_array_equal(ENC.encode(reread(ENC.decode(ids))), ids)
    np.testing.assert_array_equal(ENC.without_chords(ids)[: ids.size], PLAIN.encode(src))  # same ids below CHORD
    return ids


@pytest.mark.parametrize("pitches,want", [
    ((48, 64, 67, 72), "CHORD_C_maj"), ((48, 64, 72), "CHORD_C_maj"),  # no fifth: still C major
    ((45, 60, 64, 69), "CHORD_A_min"), ((43, 59, 65, 67), "CHORD_G_dom7"), ((43, 59, 65), "CHORD_G_dom7"),
    ((50, 59, 65, 68), "CHORD_D_dim7"), ((47, 62, 65, 68), "CHORD_B_dim7"),  # symmetric: the bass names it
    ((50, 53, 56, 60), "CHORD_D_hdim7"), ((48, 60, 72), "CHORD_C_other"), ((43, 62), "CHORD_G_other"),
    ((48, 62, 64, 67), "CHORD_C_other"),  # a passing D against C major: no common chord
])
def test_labels_name_root_and_quality_from_the_sounding_pitch_classes(pitches, want):
    assert label(*pitches) == want


def test_held_notes_count_and_the_chord_follows_the_first_parts_notes():
    src = multi_track([("Soprano", 0, [(0, 24, 72)]), ("Alto", 0, [(0, 12, 67), (12, 12, 69)]),
                       ("Tenor", 0, [(0, 24, 64)]), ("Bass", 0, [(0, 12, 48), (12, 12, 45)])])
    t = toks(round_trip(src))
    bar = t.index("BAR")
    assert t[bar + 1 : bar + 5] == ["POS_0", "NOTE_72_P0", "DUR_24", "CHORD_C_maj"]
    second = t.index("POS_12")  # the soprano holds: the chord opens the onset; the held C and E count (A C E)
    assert t[second + 1] == "CHORD_A_min" and t[second + 2] == "NOTE_69_P1"
    assert ENC.grammar()[ENC.encode(src)[:-1], ENC.encode(src)[1:]].all()


def test_sixteen_chorales_and_js_fakes_round_trip_with_one_chord_per_onset(bach_dir):
    files = sorted(bach_dir.rglob("*.mid"))[:16]
    if JS_FAKES.is_dir():
        files += sorted((JS_FAKES / "midi").glob("*.mid"))[:16]
    g = ENC.grammar()
    for f in files:
        ids = round_trip(load_score(f))
        typ = ENC.token_type[ids]
        assert g[ids[:-1], ids[1:]].all(), f
        group = np.cumsum(typ == ENC.token_type[ENC.pos0])  # one onset per POS
        with_notes = np.unique(group[ENC.is_note[ids]])
        assert (typ == T_CHORD).sum() == with_notes.size, f
        np.testing.assert_array_equal(np.unique(group[typ == T_CHORD]), with_notes)
        at = np.flatnonzero(typ == T_CHORD)  # after the first part's DUR, or opening an onset it has no note at
        top = ENC.is_note[ids] & (ENC.part_rank(np.maximum(ENC.part_of[ids], 0)) == 0)
        for k in at.tolist():
            assert not top[k + 1], f
            if top[k - 2]:  # the last of the first part's notes
                assert ENC.token_type[ids[k - 1]] == ENC.token_type[ENC.dur0], f
            else:  # it has none at this onset: the CHORD opens the onset's notes
                assert not (top & (group == group[k])).any() and ENC.is_note[ids[k + 1]], f
                assert not (ENC.is_note[ids[:k]] & (group[:k] == group[k])).any(), f


def test_labels_in_chunks_equal_labels_at_once(bach_dir, monkeypatch):
    q = ENC.quantize(load_score(sorted(bach_dir.rglob("*.mid"))[3]))
    whole = onset_labels(q["onset"], q["pitch"], q["duration"], ENC.max_dur)
    monkeypatch.setattr(chords, "CHUNK", 7)  # dense piano: a few onsets at a time
    parts = onset_labels(q["onset"], q["pitch"], q["duration"], ENC.max_dur)
    for a, b in zip(whole, parts):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=satb_piece())
def test_round_trip_property_with_chords(parts):
    round_trip(multi_track(parts))


def test_a_vocabulary_without_chords_is_unchanged_and_chords_come_after_it():
    assert "chords" not in PLAIN.vocab.params and not (PLAIN.token_type == T_CHORD).any()
    n = len(PLAIN.vocab)
    assert ENC.vocab.tokens[:n] == PLAIN.vocab.tokens and len(ENC.vocab) == n + 120
    assert ENC.vocab.params["chords"] is True


def test_transposition_moves_chord_roots_with_the_notes(bach_dir):
    ids = ENC.encode(load_score(sorted(bach_dir.rglob("*.mid"))[0]))
    up = ENC.transpose_ids(ids, 3)
    np.testing.assert_array_equal(ENC.encode(reread(ENC.decode(up))), up)  # the labels of the moved notes
    table = ENC.transpose_table(3)
    inside = table[ids] >= 0
    np.testing.assert_array_equal(table[ids][inside], up[inside])
    assert toks(ENC.transpose_ids([ENC.chord0 + 11], 1)) == ["CHORD_C_maj"]  # B major up a semitone


def test_a_melody_prompt_has_no_chord(bach_dir):
    score = load_score(sorted(bach_dir.rglob("*.mid"))[0])
    m = melody_only(ENC, ENC.encode(score), 0)
    assert not (ENC.token_type[m] == T_CHORD).any()
    np.testing.assert_array_equal(m, melody_only(PLAIN, PLAIN.encode(score), 0))  # as harmonize shows it


def test_free_generation_writes_one_chord_per_onset_after_the_first_part():
    header = [x for r in range(4) for x in ([ENC.part0 + r, ENC.program0])]
    s, a = int(ENC.note_token_id(72, 0)), int(ENC.note_token_id(67, 1))
    beat, chord = ENC.dur0 + 11, ENC.chord0
    ids = [ENC.bos_id, int(ENC.key_token_id(0, 0)), ENC.ts0 + ENC.default_ts, ENC.tempo0 + 18, *header, ENC.bar_id,
           ENC.pos0]

    def allowed(prefix: list[int]) -> np.ndarray:
        c = OneNotePerVoice(ENC, np.array(prefix)[None], torch.device("cpu"))
        return c.allowed(torch.ones(1, len(ENC.vocab), dtype=torch.bool), torch.tensor([prefix[-1]]))[0].numpy()

    assert allowed(ids)[chord] and allowed([*ids, s, beat])[chord]
    assert not allowed(ids[:-1])[chord] and not allowed(ids[:-2])[chord]  # not in the header, nor before a POS
    after = allowed([*ids, s, beat, chord])
    assert not after[chord] and not after[s] and after[a]  # once, and the soprano has had its turn
    assert not allowed([*ids, s, beat, a, beat])[chord]  # not after a later part's note
    assert allowed([*ids, s, beat, chord, a, beat, ENC.pos0 + 12])[chord]  # the next onset names its own


def test_chords_need_the_parts_encoding(bach_dir, tmp_path, capsys):
    assert main(["data", "-d", str(bach_dir), "-o", str(tmp_path / "ds"), "--encoding", "meter", "--chords"]) == 2
    err = capsys.readouterr().err
    assert "--chords applies to --encoding parts only" in err and err.count("\n") == 1
    assert not (tmp_path / "ds").exists()


HEADER = [x for r in range(4) for x in ([ENC.part0 + r, ENC.program0])]
BEAT = ENC.dur0 + 11  # a DUR of one beat


def opening(*, first_role: int = 0) -> list[int]:
    head = [ENC.part0 + first_role, ENC.program0, *HEADER[2:]]
    return [ENC.bos_id, int(ENC.key_token_id(0, 0)), ENC.ts0 + ENC.default_ts, ENC.tempo0 + 18, *head, ENC.bar_id]


def free_allowed(prefix: list[int]) -> np.ndarray:
    c = OneNotePerVoice(ENC, np.array(prefix)[None], torch.device("cpu"))
    return c.allowed(torch.ones(1, len(ENC.vocab), dtype=torch.bool), torch.tensor([prefix[-1]]))[0].numpy()


def test_an_overdue_soprano_sings_before_the_chord():
    s, a, t, b = (int(ENC.note_token_id(p, k)) for k, p in enumerate((72, 67, 64, 48)))
    ids = [*opening(), ENC.pos0, s, BEAT, ENC.chord0, a, BEAT, t, BEAT, b, BEAT]
    for pos in (12, 24, 36):  # the soprano rests from beat 2 on
        ids += [ENC.pos0 + pos, ENC.chord0, a, BEAT, t, BEAT, b, BEAT]
    ids += [ENC.bar_id, ENC.pos0, ENC.chord0, a, BEAT, t, BEAT, b, BEAT, ENC.pos0 + 12]  # four beats of rest
    ok = free_allowed(ids)
    assert ok[s] and not ok[ENC.chord0] and not ok[a]  # a CHORD now would shut the soprano out of this onset
    assert free_allowed([*ids, s, BEAT])[ENC.chord0]


def test_an_instruments_first_part_writes_no_note_after_its_chord():
    from musesynth.tokenize.midi_io import OTHER
    p0, p1 = int(ENC.note_token_id(60, 0)), int(ENC.note_token_id(64, 0))
    ids = [*opening(first_role=OTHER), ENC.pos0, p0, BEAT]
    assert free_allowed(ids)[p1] and free_allowed(ids)[ENC.chord0]  # a chord of its own, then the CHORD
    after = free_allowed([*ids, ENC.chord0])
    assert not after[p1] and not after[ENC.chord0] and after[int(ENC.note_token_id(55, 1))]


def test_the_fill_constraint_puts_the_chord_after_a_fixed_soprano_once_per_onset():
    src = multi_track([("Soprano", 0, [(0, 12, 72), (12, 12, 74), (24, 24, 76)]),
                       ("Alto", 0, [(0, 48, 67)]), ("Tenor", 0, [(0, 48, 64)]), ("Bass", 0, [(0, 48, 48)])])
    ids = ENC.encode(src)
    end = int(ENC.bar_times(ids)[0][0] + ENC.bar_times(ids)[1][0])
    frame = Frame(ids, 0, 1, opened=False, timesigs=False, start=0, end=end, min_bars=1, close_id=ENC.eos_id)
    fixed = Fixed.of(ENC, np.array([0, 12, 24]), np.zeros(3, np.int64), np.array([72, 74, 76]), np.array([12, 12, 24]))
    c = VoiceConstraint(ENC, frame, fixed, [1, 2, 3], 2)

    def step(tok: int) -> None:
        c.advance(torch.tensor([tok, tok]))

    def mask() -> np.ndarray:
        m = c.allowed(None, torch.zeros(2, dtype=torch.long)).numpy()
        assert (m[0] == m[1]).all()
        return m[0]

    step(ENC.bar_id)
    step(ENC.pos0)
    s0 = int(ENC.note_token_id(72, 0))
    assert mask()[s0] and not mask()[ENC.chord0]  # the fixed soprano first
    step(s0)
    step(int(ENC.dur0 + 11))
    assert mask()[ENC.chord0 + 5] and mask()[int(ENC.note_token_id(60, 1))]
    step(ENC.chord0)
    assert not mask()[ENC.chord0]  # once
    c.reindex(np.array([1, 0]))
    assert not mask()[ENC.chord0]  # resampled particles keep it
    step(ENC.pos0 + 6)  # an onset between the soprano's notes: a chord may open it
    assert mask()[ENC.chord0]
    step(ENC.phrase_id)
    assert not mask()[ENC.chord0]  # a PHRASE closes the onset's notes
    step(ENC.pos0 + 12)
    assert not mask()[ENC.chord0]  # before the fixed soprano: refused


@pytest.fixture(scope="module")
def chords_run(bach_dir, tmp_path_factory) -> Path:
    """conftest's ``parts_run`` with CHORD tokens: a tiny model, trained a few steps."""
    from musesynth.data.build import build_dataset
    from musesynth.training.config import TrainConfig
    from musesynth.training.loop import train

    root = tmp_path_factory.mktemp("chords")
    build_dataset(bach_dir, root / "ds", encoding="parts", workers=1, quiet=True,
                  params={"max_parts": 4, "drop_extra_parts": True, "infill": True, "chords": True})
    train(TrainConfig(dataset=str(root / "ds"), model="gru", out_dir=str(root), seq_len=128, embed_dim=32,
                      hidden_dim=64, num_layers=1, batch_size=16, lr=3e-3, max_steps=15, warmup_steps=2,
                      melody_first=0.4, fim_rate=0.3, tensorboard=False, quiet=True, patience=0))
    return root / "gru"


def test_a_chords_model_generates_harmonises_and_rewrites_bars(chords_run, bach_dir, tmp_path):
    """End to end: one note per voice and every melody note exact, as without chords; the files have no CHORD. (The
    tiny model may declare instruments, "Part k", in a header of its own: those keep their chords by design.)"""
    chorale = sorted(bach_dir.rglob("*.mid"))[0]
    assert main(["generate", "-c", str(chords_run), "--num-samples", "2", "-s", "1", "--length", "300", "--no-wav",
                 "--no-png", "-o", str(tmp_path / "gen"), "-q"]) == 0
    assert main(["harmonize", "-c", str(chords_run), "--melody", str(chorale), "--part", "soprano", "-s", "2",
                 "--no-wav", "--no-png", "-o", str(tmp_path / "harm"), "-q"]) == 0
    assert main(["infill", "-c", str(chords_run), "--input", str(chorale), "--parts", "A,T", "--bars", "2-3", "-s", "3",
                 "--no-wav", "--no-png", "-o", str(tmp_path / "fill"), "-q"]) == 0
    given = next(t for t in symusic.Score(str(chorale)).tracks if t.name == "Soprano" and t.note_num())
    for mid in sorted(tmp_path.rglob("*.mid")):
        score = symusic.Score(str(mid))
        for track in score.tracks:
            n = track.notes.numpy()
            if track.name.startswith("Part "):
                continue
            assert most_sounding(n["time"], n["duration"]) <= 1, (mid, track.name)
        if mid.parent.name == "harm":
            out = next(t for t in score.tracks if t.name == "Soprano").notes.numpy()
            src = given.notes.numpy()
            tpq_out, tpq_in = score.ticks_per_quarter, symusic.Score(str(chorale)).ticks_per_quarter
            np.testing.assert_array_equal(out["pitch"], src["pitch"])
            np.testing.assert_array_equal(out["time"] / tpq_out, src["time"] / tpq_in)
            np.testing.assert_array_equal(out["duration"] / tpq_out, src["duration"] / tpq_in)
    assert len(list((tmp_path / "gen").glob("*.mid"))) == 2 and list((tmp_path / "fill").glob("*.mid"))
