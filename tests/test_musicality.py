from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import symusic

from musesynth.data.build import find_midi_files
from musesynth.evaluate.music_stats import Piece, piece_from_score
from musesynth.evaluate.musicality import (
    accidentals,
    build_copy_index,
    classifier_test,
    estimate_key,
    key_match,
    key_name,
    key_report,
    longest_copied_run,
    memorisation_report,
    real_vs_real_control,
    repetition_summary,
    scale_consistency,
    self_repetition,
    two_sample_report,
    window_features,
)


def make_piece(onset, pitch, duration=None) -> Piece:
    onset, pitch = np.asarray(onset, float), np.asarray(pitch, np.int64)
    duration = np.full(onset.size, 0.5) if duration is None else np.asarray(duration, float)
    order = np.lexsort((pitch, onset))
    return Piece(onset[order], duration[order], pitch[order])


def random_piece(rng: np.random.Generator, beats: int = 32, notes: int = 60, start: float = 0.0) -> Piece:
    """Random notes on a quarter-beat grid, with some chords (repeated onsets)."""
    onset = start + rng.integers(0, beats * 4, notes) / 4
    return make_piece(onset, rng.integers(40, 85, notes), rng.choice([0.25, 0.5, 1.0], notes))


def concat(*pieces: Piece) -> Piece:
    return make_piece(np.concatenate([p.onset for p in pieces]), np.concatenate([p.pitch for p in pieces]),
                      np.concatenate([p.duration for p in pieces]))


def shifted(p: Piece, beats: float = 0.0, semitones: int = 0) -> Piece:
    return Piece(p.onset + beats, p.duration.copy(), p.pitch + semitones)


@pytest.fixture(scope="module")
def chorales(bach_dir: Path) -> list[Piece]:
    return [piece_from_score(symusic.Score(str(f))) for f in find_midi_files(bach_dir)]


# --- self-repetition ------------------------------------------------------------------------------


def test_repeated_eight_bars_are_found_and_random_music_has_no_long_repeat():
    rng = np.random.default_rng(0)
    first = random_piece(rng, beats=32, notes=80)
    repeated = concat(first, shifted(first, 32))
    assert self_repetition(repeated) >= 32
    assert repetition_summary([repeated])["share_with_repeat"] == 1.0

    lone = random_piece(rng, beats=64, notes=160)
    assert self_repetition(lone, min_beats=1) < 8
    assert self_repetition(lone) == 0.0  # below min_beats reports 0
    s = repetition_summary([repeated, lone])
    assert s["share_with_repeat"] == 0.5 and s["mean_longest_repeat_beats"] < (64 + 8) / 2


def test_transposed_repeat_only_counts_in_the_transposition_invariant_variant():
    rng = np.random.default_rng(1)
    first = random_piece(rng, beats=16, notes=40)
    up = concat(first, shifted(first, 16, semitones=3))
    assert self_repetition(up, min_beats=1) < 8
    assert self_repetition(up, min_beats=1, transposed=True) >= 16
    assert repetition_summary([up])["share_with_transposed_repeat"] == 1.0


def test_occurrences_must_not_overlap():
    # one beat pattern 40 times: the longest repeat of two non-overlapping passages is half the piece
    onset = np.arange(40)[:, None] + np.array([0, 0.5])
    p = make_piece(onset.ravel(), np.tile([60, 64], 40))
    assert self_repetition(p) == 20


# --- memorisation ---------------------------------------------------------------------------------


def test_copied_training_piece_is_flagged_and_unrelated_music_is_not():
    rng = np.random.default_rng(2)
    train = [random_piece(rng, beats=48, notes=120) for _ in range(30)]
    index = build_copy_index(train, ngram=4)
    copy = shifted(train[7], beats=5)  # a copy starting elsewhere is still a copy
    span = float(train[7].onset.max() - train[7].onset.min())
    run = longest_copied_run(copy, index)
    assert run >= 16 and run >= span
    assert longest_copied_run(random_piece(rng, beats=48, notes=120), index) < 4
    assert longest_copied_run(shifted(train[7], semitones=1), index) < 4  # a transposition is not verbatim

    half = Piece(train[3].onset[train[3].onset < 24], train[3].duration[train[3].onset < 24],
                 train[3].pitch[train[3].onset < 24])
    partial = concat(half, random_piece(rng, beats=24, notes=60, start=24))
    assert 16 <= longest_copied_run(partial, index) <= 25

    held = [random_piece(rng, beats=48, notes=120) for _ in range(5)]
    r = memorisation_report([copy, shifted(train[0], 1)], train, held)
    assert r["share_ge_16_beats"] == 1.0 and r["median_beats"] >= 16
    assert r["held_out_max_beats"] < 4


def test_held_out_chorales_copy_little_from_the_others(chorales: list[Piece]):
    r = memorisation_report(chorales[:4], chorales[4:], chorales[:4])
    assert r["held_out_median_beats"] < 8
    assert r["median_beats"] == r["held_out_median_beats"]  # the same pieces seen from both sides


# --- classifier two-sample test -------------------------------------------------------------------


def test_window_features_have_a_fixed_length_and_skip_empty_windows():
    p = make_piece([0, 1, 2, 40, 41], [60, 62, 64, 65, 67])  # windows 0 and 5 have notes
    f = window_features(p, window_beats=8)
    assert f.shape[0] == 2 and np.isfinite(f).all()
    assert window_features(make_piece([], [])).shape == (0, f.shape[1])


def test_two_halves_of_real_chorales_are_indistinguishable(chorales: list[Piece]):
    assert len(chorales) == 16
    control = real_vs_real_control(chorales, seed=0)
    assert 0.3 <= control["accuracy"] <= 0.7


def test_shuffled_pitches_and_wrong_rhythm_are_detected(chorales: list[Piece]):
    rng = np.random.default_rng(0)
    shuffled = [Piece(p.onset, p.duration, rng.permutation(p.pitch)) for p in chorales]
    r = classifier_test(shuffled, chorales, seed=0)
    assert r["accuracy"] >= 0.9 and r["folds"] == 5
    assert r["windows"][0] == r["windows"][1] > 50

    jittered = [make_piece(p.onset + rng.integers(-2, 3, p.onset.size) / 6, p.pitch, p.duration) for p in chorales]
    assert classifier_test(jittered[:8], chorales[8:], seed=1)["accuracy"] >= 0.9

    report = two_sample_report(shuffled[:8], chorales[8:], seed=0)
    assert report["accuracy"] >= 0.9 and 0.2 <= report["control_accuracy"] <= 0.8


def test_classifier_needs_two_pieces_per_side():
    rng = np.random.default_rng(3)
    r = classifier_test([random_piece(rng)], [random_piece(rng), random_piece(rng)])
    assert np.isnan(r["accuracy"]) and r["folds"] == 0


# --- key ------------------------------------------------------------------------------------------

C_MAJOR = [60, 62, 64, 65, 67, 69, 71, 72]


def c_major_cadence() -> Piece:
    onset = list(range(8))
    pitch = list(C_MAJOR)
    for t, chord in zip([8, 9, 10, 11], [[48, 64, 67, 72], [53, 65, 69, 72], [55, 62, 67, 71], [48, 64, 67, 72]]):
        onset += [t] * 4
        pitch += chord
    return make_piece(onset, pitch, np.ones(len(onset)))


def a_harmonic_minor() -> Piece:
    scale = [57, 59, 60, 62, 64, 65, 68, 69]
    line = scale + scale[::-1][1:]
    chords = [[45, 60, 64, 69], [50, 62, 65, 69], [52, 59, 64, 68], [45, 60, 64, 69]]
    onset = list(range(len(line))) + [t for t in range(15, 19) for _ in range(4)]
    pitch = line + [q for c in chords for q in c]
    dur = [2.0 if q % 12 == 9 else 1.0 for q in line] + [2.0] * 16
    return make_piece(onset, pitch, dur)


def test_estimate_key_of_scales_and_cadences():
    tonic, mode, r = estimate_key(c_major_cadence())
    assert (tonic, mode) == (0, "major") and r > 0.7
    assert key_name(*estimate_key(a_harmonic_minor())[:2]) == "A minor"
    assert key_name(*estimate_key(shifted(c_major_cadence(), semitones=2))[:2]) == "D major"
    assert key_name(*estimate_key(shifted(a_harmonic_minor(), semitones=-3))[:2]) == "F# minor"


def test_key_names_and_accidentals():
    assert accidentals("D major") == 2 and accidentals("Bb major") == 2 and accidentals("F# minor") == 3
    assert accidentals("C major") == 0 and accidentals("A minor") == 0 and accidentals("C# major") == 7
    assert accidentals("Eb minor") == 6 and accidentals(2, "major") == 2 and accidentals(10, "major") == 2
    names = {key_name(t, "major") for t in range(12)} | {key_name(t, "minor") for t in range(12)}
    assert {"Bb major", "Eb major", "F# minor", "C# minor", "Ab major", "G# minor"} <= names
    assert all(accidentals(t, m) <= 6 for t in range(12) for m in ("major", "minor"))


def test_key_report_flags_remote_keys():
    ref = [shifted(c_major_cadence(), semitones=s) for s in (0, 2, 7, -2)]  # C, D, G, Bb: 0-2 accidentals
    gen = [shifted(c_major_cadence(), semitones=s) for s in (1, 6, 8, 11)]  # Db, F#, Ab, B: 4-6 accidentals
    r = key_report(gen, ref)
    assert r["generated_share_4plus_accidentals"] == 1.0 and r["reference_share_4plus_accidentals"] == 0.0
    assert r["accidental_histogram_distance"] == pytest.approx(1.0)
    assert r["key_distribution_distance"] == pytest.approx(1.0)
    assert r["scale_consistency_generated"] == pytest.approx(1.0)
    assert key_report(ref, ref)["key_distribution_distance"] == 0.0

    rng = np.random.default_rng(4)
    chromatic = make_piece(np.arange(240) / 2, rng.integers(48, 84, 240))
    assert scale_consistency(chromatic) < 0.8 < scale_consistency(a_harmonic_minor())


def test_key_match_counts_pieces_in_the_key_they_were_asked_for():
    # a C major scale and cadence, weighted to the tonic: Krumhansl-Schmuckler reads C major
    pitches = [60, 62, 64, 65, 67, 69, 71, 72, 67, 65, 64, 62, 60, 55, 60, 64, 67, 60]
    c_major = make_piece(np.arange(len(pitches)) * 0.5, pitches, [1.0] * len(pitches))
    assert estimate_key(c_major)[:2] == (0, "major")
    r = key_match([c_major] * 4, [(0, "major"), (9, "minor"), (2, "major"), None])
    assert r["asked"] == 3
    assert r["match"] == pytest.approx(1 / 3) and r["same_signature"] == pytest.approx(2 / 3)


def test_the_cadence_cue_names_the_key_a_piece_closes_in():
    """A C major piece that spends most of its time in G (F sharps) before its closing cadence: the
    pitch-class histogram alone says G major; with the final bass (C) it is C major."""
    g_major = [67, 71, 74, 78, 79, 74, 71, 66, 67, 69, 71, 74] * 2  # G-major arpeggios and the F# leading tone
    onset, pitch, dur = list(range(len(g_major))), list(g_major), [1.0] * len(g_major)
    for t, chord in zip(range(24, 28), [[48, 64, 67, 72], [53, 65, 69, 72], [55, 62, 67, 71], [48, 64, 67, 72]]):
        onset += [t] * 4
        pitch += chord
        dur += [3.0] * 4
    piece = make_piece(onset, pitch, np.array(dur))
    assert key_name(*estimate_key(piece)[:2]) == "G major"
    assert key_name(*estimate_key(piece, cadence=True)[:2]) == "C major"
    assert key_name(*estimate_key(c_major_cadence(), cadence=True)[:2]) == "C major"  # agrees when KS is right


def test_endings_count_closes_on_the_full_tonic_chord():
    from musesynth.evaluate.musicality import ending_report

    def piece(*onsets):  # (beat, pitches)
        on = [b for b, ps in onsets for _ in ps]
        return Piece(np.array(on, float), np.ones(len(on)), np.array([p for _, ps in onsets for p in ps]))

    g = (7, "major")
    closes = piece((0, [43, 59, 62, 67]), (1, [50, 54, 57, 62]), (2, [43, 59, 62, 67]))  # ... V I
    half = piece((0, [43, 59, 62, 67]), (1, [50, 54, 57, 62]))  # ends on the dominant
    thin = piece((0, [43, 59, 62, 67]), (1, [55]))  # G alone
    r = ending_report([closes, half, thin, closes], [True, True, True, False], [g, g, g, g])
    assert r == {"pieces": 4, "ended": 0.75, "tonic_close": 0.5, "full_close": 0.5}
    assert np.isnan(ending_report([closes], [True], [None])["tonic_close"])  # no keys: no tonic to close on
