"""musesynth.theory: the one home of keys, spellings and scales (issue 21 item 5)."""

from __future__ import annotations

import pytest

from musesynth import theory
from musesynth.errors import MusesynthError


@pytest.mark.parametrize("text, key", [("D major", (2, "major")), ("f# minor", (6, "minor")), ("Bb maj", (10, "major")),
                                       ("e♭ min", (3, "minor"))])
def test_parse_key_reads_the_spellings_users_write(text, key):
    assert theory.parse_key(text) == key


def test_every_key_spells_and_parses_back_and_the_encodings_use_the_same_names():
    from musesynth.tokenize import meter

    names = {theory.key_name(k % 12, k // 12) for k in range(theory.N_KEYS)}
    assert len(names) == 24 and "Bb major" in names and "F# minor" in names
    assert meter.parse_key is theory.parse_key and meter.MODES is theory.MODES


def test_a_bad_key_is_one_line_naming_the_form():
    with pytest.raises(MusesynthError, match="unknown key 'H major': write a tonic A-G"):
        theory.parse_key("H major")


def test_scales_hold_their_tonic_and_fifth_and_minor_keeps_its_leading_tone():
    assert all(0 in d and 7 in d for d in theory.IN_KEY.values())
    assert 11 in theory.IN_KEY[1] and len(theory.IN_KEY[0]) == 7
