"""One time signature per tick: music21 writes the signature into every part of a chorale, and a piece that
copies its primer's meter must not carry 5 identical events at one tick."""

from __future__ import annotations

import symusic
from conftest import make_score

from musesynth.generate.midi_out import daw_ready
from musesynth.tokenize.midi_io import load_score


def _signatures(score: symusic.Score) -> list[tuple[int, int, int]]:
    return [(t.time, t.numerator, t.denominator) for t in score.time_signatures]


def _primer_with_a_signature_per_part(path) -> None:
    score = make_score([(0, 480, 60), (480, 480, 62), (3840, 480, 64)])
    score.time_signatures = [symusic.TimeSignature(0, 3, 4)] * 5 + [symusic.TimeSignature(1440, 4, 4)] * 4
    score.dump_midi(str(path))


def test_load_score_keeps_one_signature_per_tick(tmp_path):
    path = tmp_path / "chorale.mid"
    _primer_with_a_signature_per_part(path)
    assert len(symusic.Score.from_midi(path.read_bytes()).time_signatures) == 9  # as written
    assert _signatures(load_score(path)) == [(0, 3, 4), (1440, 4, 4)]


def test_a_piece_copying_its_primers_meter_has_one_signature_per_tick(tmp_path):
    primer = tmp_path / "chorale.mid"
    _primer_with_a_signature_per_part(primer)
    piece = make_score([(0, 96, 60)], tpq=96)
    piece.time_signatures = [symusic.TimeSignature(0, 4, 4)]  # the chord encoding's default meter
    out = daw_ready(piece, primer, boundary_beats=1.0)
    assert _signatures(out) == [(0, 3, 4), (288, 4, 4)]  # rescaled to the piece's 96 ticks per quarter
