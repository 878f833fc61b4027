"""Voice leading: parallels, crossings, ranges, spacing and crowding, by parts or by pitch order."""

from __future__ import annotations

import json

import numpy as np
import pytest

from musesynth.cli import main
from musesynth.evaluate.music_stats import Piece, piece_from_score
from musesynth.evaluate.voice_leading import format_voice_leading, voice_grid, voice_leading, voice_leading_report
from musesynth.tokenize import get_encoding
from musesynth.tokenize.midi_io import load_score


def voices(*lines: list[tuple[float, float, int]]) -> Piece:
    """A piece with one part per line of (onset, duration, pitch) in beats."""
    rows = [(on, du, p, v) for v, line in enumerate(lines) for on, du, p in line]
    a = np.array(rows, float).reshape(-1, 4)
    order = np.lexsort((a[:, 2], a[:, 0]))
    a = a[order]
    return Piece(a[:, 0], a[:, 1], a[:, 2].astype(np.int64), a[:, 3].astype(np.int64))


def merged(p: Piece) -> Piece:
    return Piece(p.onset, p.duration, p.pitch)  # the same notes without their parts


def test_parallel_fifths_and_octaves_need_similar_motion_of_both_voices():
    # soprano C5 D5 E5 E5, bass F4 G4 A3 A3: a parallel fifth, then a fifth to a twelfth by contrary motion,
    # then an oblique step (both hold E/A: no motion)
    p = voices([(0, 1, 72), (1, 1, 74), (2, 1, 76), (3, 1, 76)], [(0, 1, 65), (1, 1, 67), (2, 1, 57), (3, 1, 57)])
    r = voice_leading([p])
    assert r["voices"] == "parts" and r["chord_changes"] == 3
    assert r["fifths_per_100"] == pytest.approx(100 / 3) and r["octaves_per_100"] == 0
    octaves = voices([(0, 1, 72), (1, 1, 74)], [(0, 1, 60), (1, 1, 62)], [(0, 1, 48), (1, 1, 50)])
    assert voice_leading([octaves])["octaves_per_100"] == pytest.approx(300)  # three pairs: 12, 24 and 12
    unison = voices([(0, 1, 67), (1, 1, 69)], [(0, 1, 67), (1, 1, 69)])
    assert voice_leading([unison])["octaves_per_100"] == pytest.approx(100)


def test_crossings_ranges_spacing_are_read_by_part():
    s = [(0, 1, 67), (1, 1, 64)]  # the soprano goes below the alto at the second onset
    a = [(0, 2, 65)]
    t = [(0, 2, 50)]  # more than an octave below the alto: a wide upper spacing at both onsets
    b = [(0, 2, 30)]  # below the bass range
    r = voice_leading([voices(s, a, t, b)])
    assert r["crossings"] == pytest.approx(0.5)
    assert r["out_of_range"] == pytest.approx(1 / 5)  # 5 notes struck, the bass's one out of range
    assert r["wide_upper"] == pytest.approx(2 / 4)  # S-A at 2 onsets, A-T at 2 onsets; A-T is 15 apart
    assert voice_leading([merged(voices(s, a, t, b))])["crossings"] == 0  # by pitch order voices never cross


def test_more_than_four_pitches_is_a_share_of_sounding_time_and_unisons_count_once():
    five = voices([(0, 4, 72)], [(0, 4, 67)], [(0, 4, 64)], [(0, 4, 60)], [(0, 2, 48)])
    assert voice_leading([five])["over_four"] == pytest.approx(0.5)
    doubled = voices([(0, 4, 72)], [(0, 4, 67)], [(0, 4, 64)], [(0, 4, 60)], [(0, 4, 60)])
    assert voice_leading([doubled])["over_four"] == 0


def test_voices_by_pitch_order_without_parts_and_only_the_first_four_parts():
    p = merged(voices([(0, 1, 72), (1, 1, 74)], [(0, 2, 60)], [(0, 1, 65), (1, 1, 67)]))
    times, note = voice_grid(p)
    assert note.shape == (2, 3)
    np.testing.assert_array_equal(p.pitch[note], [[72, 65, 60], [74, 67, 60]])
    r = voice_leading([p])
    assert r["voices"] == "pitch order" and r["fifths_per_100"] == pytest.approx(100)
    doubling = voices([(0, 1, 72), (1, 1, 74)], [(0, 1, 67)], [(0, 1, 60)], [(0, 1, 48)], [(0, 1, 60), (1, 1, 62)])
    assert voice_leading([doubling])["octaves_per_100"] == 0  # the fifth part (an instrument) is not a voice
    assert "voice leading" in format_voice_leading(voice_leading_report([p], [doubling]))[0]


def test_bach_by_parts_has_fewer_parallels_than_the_same_music_by_pitch_order(bach_dir):
    enc = get_encoding("parts")
    pieces = [piece_from_score(enc.decode(enc.encode(load_score(f)))) for f in sorted(bach_dir.rglob("*.mid"))]
    by_parts, by_pitch = voice_leading(pieces), voice_leading([merged(p) for p in pieces])
    assert by_parts["voices"] == "parts" and by_pitch["voices"] == "pitch order"
    assert by_parts["parallels_per_100"] < by_pitch["parallels_per_100"]
    assert by_parts["crossings"] > 0 == by_pitch["crossings"]


def test_evaluate_reports_voice_leading_of_a_parts_model(bach_dir, tmp_path, capsys):
    ds, runs = tmp_path / "ds", tmp_path / "runs"
    assert main(["data", "-d", str(bach_dir), "-o", str(ds), "--encoding", "parts"]) == 0
    assert main(["train", "-d", str(ds), "-m", "gru", "--seq-len", "64", "--embed-dim", "16", "--hidden-dim", "32",
                 "--num-layers", "1", "--batch-size", "8", "--max-steps", "3", "--warmup-steps", "1", "-o", str(runs),
                 "--run-name", "p", "--no-tensorboard", "-q"]) == 0
    capsys.readouterr()
    out = tmp_path / "r.json"
    assert main(["evaluate", "-c", str(runs / "p"), "--samples", "2", "--length", "120", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "voice leading (generated: voices by" in text and "held-out: by parts" in text
    vl = json.loads(out.read_text())["musicality"]["voice_leading"]
    assert vl["held_out"]["voices"] == "parts" and vl["held_out"]["chord_changes"] > 0
