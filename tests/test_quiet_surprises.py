"""Options that used to be ignored or repeated in silence: refused in one line, and accepted where they apply."""

from __future__ import annotations

import pytest

from musesynth.ablate import check_no_repeats
from musesynth.cli import build_parser
from musesynth.commands.train import config_from_args
from musesynth.errors import MusesynthError


def test_fim_rate_is_taken_on_a_dataset_with_infill_tokens(tiny_midi_dir, tmp_path):
    from musesynth.data.build import build_dataset

    ds = tmp_path / "ds"
    build_dataset(tiny_midi_dir, ds, encoding="meter", params={"infill": True}, workers=1, quiet=True)
    cfg = config_from_args(build_parser().parse_args(["train", "-d", str(ds), "--fim-rate", "0.9"]))
    assert cfg.fim_rate == 0.9
    plain = tmp_path / "plain"
    build_dataset(tiny_midi_dir, plain, encoding="meter", workers=1, quiet=True)
    with pytest.raises(MusesynthError, match="meter encoding\\) has none"):
        config_from_args(build_parser().parse_args(["train", "-d", str(plain), "--fim-rate", "0.9"]))
    assert config_from_args(build_parser().parse_args(["train", "-d", str(plain), "--fim-rate", "0"])).fim_rate == 0
    assert config_from_args(build_parser().parse_args(["train", "-d", str(plain)])).fim_rate == 0.5  # the default


def test_a_family_named_twice_is_refused_before_any_training():
    check_no_repeats(["gru", "lstm", "transformer"])
    with pytest.raises(MusesynthError, match="--models names lstm twice"):
        check_no_repeats(["lstm", "gru", "lstm"])
