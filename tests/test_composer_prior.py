"""Generation without --composer on a model trained with composer tokens: every piece gets a composer
drawn from the training corpus' shares (a header without one is unlike anything the model saw)."""

from __future__ import annotations

import numpy as np

from musesynth.generate.controls import apply_controls, draw_composers
from musesynth.tokenize import get_encoding
from musesynth.training.setup import composer_prior


def test_composers_are_drawn_from_the_prior_only_where_missing():
    enc = get_encoding("meter", composers=["bach", "palestrina"])
    rows = np.tile(enc.set_key([enc.bos_id], 7, "major"), (200, 1))
    names = draw_composers(enc, rows, [0.75, 0.25], seed=3)
    assert set(names) == {"bach", "palestrina"} and 0.65 < names.count("bach") / 200 < 0.85
    assert names == draw_composers(enc, rows, [0.75, 0.25], seed=3)  # seeded
    out = apply_controls(enc, rows, None, None, [0.75, 0.25], seed=3)
    assert [enc.composer_of(r) for r in out] == names and all(enc.key_of(r) == (7, "major") for r in out)
    asked = apply_controls(enc, rows[:3], "palestrina", None, [1.0, 0.0])
    assert {enc.composer_of(r) for r in asked} == {"palestrina"}  # --composer wins over the prior
    assert draw_composers(enc, asked, [1.0, 0.0], seed=0) == [None] * 3  # a primer's own composer stays
    plain = get_encoding("meter")
    assert draw_composers(plain, rows[:2], None, seed=0) == [None, None]
    assert (apply_controls(plain, rows[:2], None, None, None) == rows[:2]).all()


def test_composer_prior_counts_the_training_headers():
    enc = get_encoding("meter", composers=["bach", "palestrina"])
    heads = [enc.set_composer([enc.bos_id], c) for c in ("bach", "bach", "bach", "palestrina")]
    assert composer_prior(enc, np.concatenate(heads)) == [0.75, 0.25]
    assert composer_prior(get_encoding("meter"), np.concatenate(heads[:1])) is None
