"""The Python API as the README shows it."""

from __future__ import annotations

import numpy as np
import pytest
import symusic

import musesynth
from musesynth.errors import MusesynthError
from musesynth.generate.midi_out import GENERATED_MARKER


def test_train_load_generate_save(bach_dataset, bach_dir, tmp_path):
    summary = musesynth.train(dataset=str(bach_dataset), model="gru", out_dir=str(tmp_path), seq_len=32,
                              embed_dim=16, hidden_dim=32, num_layers=1, batch_size=16, max_steps=3,
                              tensorboard=False, quiet=True)
    model = musesynth.load_model(summary.run_dir, device="cpu")
    primer = sorted(bach_dir.rglob("*.mid"))[0]
    a = musesynth.generate(model, primer, length=30, primer_tokens=10, num_samples=2, seed=3)
    b = musesynth.generate(model, primer, length=30, primer_tokens=10, num_samples=2, seed=3)
    assert len(a) == 2 and all(np.array_equal(x.tokens, y.tokens) for x, y in zip(a, b))
    assert a[0].primer_tokens == 10 and np.array_equal(a[0].tokens[:10], musesynth.tokenize(primer)[:10])
    later = musesynth.generate(model, primer, length=5, primer_tokens=24, seed=3)[0]  # a primer past beat 0
    assert [m.text for m in later.score.markers if m.time > 0] == [GENERATED_MARKER]
    path = a[0].save(tmp_path / "piece.mid")
    assert symusic.Score(str(path)).note_num() == a[0].score.note_num()
    assert a[0].seed == 3 and a[0].info.sampling["seed"] == 3  # the sidecar's record is the piece's info
    assert set(musesynth.__all__) >= {"load_model", "generate", "tokenize", "train"}


def test_save_keeps_an_existing_file_unless_told_to_overwrite(tmp_path):
    model = musesynth.load_model(device="cpu")
    piece = musesynth.generate(model, length=8)[0]
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    with pytest.raises(MusesynthError, match="exists; pass overwrite=True"):
        piece.save(precious)
    assert precious.read_text() == "mine"
    piece.save(precious, overwrite=True)
    assert symusic.Score.from_midi(precious.read_bytes()).note_num() == piece.score.note_num()


def test_the_api_seed_defaults_to_0_and_none_draws_a_fresh_one():
    model = musesynth.load_model(device="cpu")
    assert musesynth.generate(model, length=4)[0].seed == 0
    fresh = [musesynth.generate(model, length=4, seed=None)[0].seed for _ in range(2)]
    assert fresh[0] != fresh[1]


@pytest.mark.parametrize("call, message", [
    (lambda run, piece: musesynth.harmonize(model=run), "melody or chorale: give one of them"),
    (lambda run, piece: musesynth.harmonize(piece, model=run, voices="X"), "voices 'X': unknown voice"),
    (lambda run, piece: musesynth.harmonize(piece, model=run, particles=0), "particles must be 1-64"),
    (lambda run, piece: musesynth.harmonize(piece, model=run, temperature=-1), "temperature must"),
    (lambda run, piece: musesynth.harmonize(piece.with_name("gone.mid"), model=run), "melody not found"),
    (lambda run, piece: musesynth.infill(piece, "x", model=run), "bars must be bar numbers"),
    (lambda run, piece: musesynth.infill(piece, "1-999", model=run), "bars 1-999: the piece has only"),
    (lambda run, piece: musesynth.infill(piece, "1", model=run, parts="Q"), "parts 'Q': the piece has no such part"),
    (lambda run, piece: musesynth.infill(piece, "1", model=run, particles=2), "particles weighs a fill by the kept "
                                                                             "parts' notes in the bars: give parts"),
    (lambda run, piece: musesynth.infill(piece, "1", model=run, top_p=2), "top_p must"),
    (lambda run, piece: musesynth.infill(piece.with_name("gone.mid"), "1", model=run), "piece not found"),
    (lambda run, piece: musesynth.infill(symusic.Score(480), "1", model=run),  # no temporary path shown
     "piece <symusic.Score> cannot be used"),
])
def test_harmonize_and_infill_errors_name_the_api_keywords(call, message, parts_run, bach_dir):
    """The API's errors name its keyword arguments, never a CLI flag (the CLI's name its flags: test_harmonize,
    test_infill_parts)."""
    piece = sorted(bach_dir.rglob("*.mid"))[0]
    with pytest.raises(MusesynthError) as info:
        call(parts_run, piece)
    assert str(info.value).startswith(message) and "--" not in str(info.value), str(info.value)


def test_user_text_in_an_error_is_shown_as_typed():
    """A value, path or track name with braces is never read as a field's name, in either front end's wording."""
    from musesynth.errors import BadRequest, literal
    from musesynth.generate.infill import parse_bars
    from musesynth.generate.request import cli_flag

    exc = BadRequest("bars", f"(got {literal('{seed}')}); see {{parts}}")
    assert str(exc) == "bars (got {seed}); see parts"
    assert str(exc.named(cli_flag)) == "--bars (got {seed}); see --parts"
    with pytest.raises(BadRequest) as info:
        parse_bars("{seed}")
    assert "(got '{seed}')" in str(info.value) and "(got '{seed}')" in str(info.value.named(cli_flag))
