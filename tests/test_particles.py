"""Sequential Monte Carlo under a constraint (``generate.particles``): resampled samples carry their model state
exactly, weights are the model's probability of what the constraint allowed, and resampling keeps to its group."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musesynth.generate.particles import decode_particles, resample
from musesynth.generate.sampling import Decoder, DecodeSpec, Sampling
from musesynth.models import ModelConfig, build_model


@pytest.mark.parametrize("family", ["gru", "lstm", "transformer"])
def test_a_resampled_batch_continues_as_if_its_rows_had_been_written_so(family):
    """After ``reindex`` (rows repeated and reordered), every next-token distribution is the model's own over the
    row's tokens: the state moved with its row."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(family, 64, embed_dim=16, hidden_dim=32, num_layers=2, seq_len=128)).eval()
    dec = Decoder(model, torch.randint(0, 64, (4, 5)).numpy(), DecodeSpec(seq_len=128), Sampling(), seed=1,
                  budget=30)
    for _ in range(7):
        dec.step()
    dec.reindex(torch.tensor([2, 2, 0, 3]))
    for _ in range(6):
        dec.step()
    full, _ = model(dec.hist[:, : dec.length])
    torch.testing.assert_close(dec.last, full[:, -1], atol=1e-5, rtol=1e-4)


class OnlyEven:
    """Allows even tokens only: SMC weighs each row by the model's probability of an even token."""

    def __init__(self, vocab: int) -> None:
        self.mask = torch.arange(vocab) % 2 == 0
        self.seen: list[np.ndarray] = []

    def allowed(self, allowed: torch.Tensor | None, prev: torch.Tensor) -> torch.Tensor:
        return self.mask[None, :].expand(prev.shape[0], -1)

    def advance(self, tok: torch.Tensor) -> None:
        self.seen.append(tok.numpy())

    def reindex(self, idx: np.ndarray) -> None:
        self.seen = [s[idx] for s in self.seen]


def test_the_weight_is_the_models_probability_of_what_was_allowed():
    torch.manual_seed(0)
    model = build_model(ModelConfig("gru", 32, embed_dim=16, hidden_dim=32, num_layers=1, seq_len=64)).eval()
    rule = OnlyEven(32)
    dec = Decoder(model, np.zeros((3, 2), np.int64), DecodeSpec(), Sampling(), seed=0, budget=4, constraint=rule)
    dec.weigh = True
    before = dec.last.log_softmax(-1)
    dec.step()
    want = before[:, rule.mask].logsumexp(-1)
    torch.testing.assert_close(dec.mass, want)
    assert bool((dec.mass < 0).all()) and np.all(rule.seen[0] % 2 == 0)


def test_resampling_keeps_each_group_apart_and_leaves_even_groups_alone():
    rng = np.random.default_rng(0)
    logw = np.array([0.0, 0.0, 0.0, 0.0, -50.0, 0.0, -50.0, -50.0])
    idx = resample(logw, 2, rng)
    assert idx is not None
    assert idx[:4].tolist() == [0, 1, 2, 3]  # equal weights: no need
    assert idx[4:].tolist() == [5, 5, 5, 5]  # one particle holds the weight: it is copied
    assert resample(np.zeros(6), 3, rng) is None


def test_particles_return_one_sample_per_group_from_its_own_population():
    torch.manual_seed(0)
    model = build_model(ModelConfig("lstm", 32, embed_dim=16, hidden_dim=32, num_layers=1, seq_len=64)).eval()
    rows = np.repeat(np.array([[1, 2], [3, 4]]), 4, axis=0)  # two groups of four, each with its own prompt
    rule = OnlyEven(32)
    seqs, logw = decode_particles(model, rows, DecodeSpec(), Sampling(), 7, 12, rule, groups=2)
    assert [s[:2].tolist() for s in seqs] == [[1, 2], [3, 4]]
    assert all(np.all(s[2:] % 2 == 0) for s in seqs) and logw.shape == (8,) and np.all(logw < 0)
    again, _ = decode_particles(model, rows, DecodeSpec(), Sampling(), 7, 12, OnlyEven(32), groups=2)
    assert all(np.array_equal(a, b) for a, b in zip(seqs, again, strict=True))  # one seed, one answer


def _same_state(a, b) -> list[str]:
    """The tensor attributes in which two decoding helpers differ (tables and state alike: none is left out)."""
    return [k for k, v in vars(a).items() if isinstance(v, torch.Tensor) and not torch.equal(v, getattr(b, k))]


def _per_row(obj, batch: int) -> set[str]:
    """The tensor attributes with a row per sample: what a ``reindex`` must move (``rows``, 0..B-1, stays)."""
    return {k for k, v in vars(obj).items() if isinstance(v, torch.Tensor) and v.shape[:1] == (batch,)} - {"rows"}


def _replayed(make, hist: torch.Tensor, start: int, stop: int):
    """A decoding helper built on the first ``start`` tokens of each row, then advanced over the rest."""
    helper = make(hist[:, :start])
    for t in range(start, stop):
        helper.advance(hist[:, t])
    return helper


def test_free_pieces_resample_the_voice_rules_state_with_their_rows():
    """``generate --particles``: after a resampling the one-line-per-voice rule's state of each row is what it would
    be had the row been written so (every per-sample field moves with its row: none is left behind)."""
    from musesynth.generate.model import PARTS_MODEL, Model
    from musesynth.generate.voices import OneNotePerVoice

    model = Model.load(str(PARTS_MODEL), "cpu")
    enc = model.encoding.parts()
    rows = np.tile(np.array([[enc.bos_id]]), (5, 1))
    voices = OneNotePerVoice(enc, rows, torch.device("cpu"))
    spec = DecodeSpec.of(model.encoding, model.seq_len)
    dec = Decoder(model.net, rows, spec, Sampling(), seed=3, budget=160, constraint=voices)
    assert _per_row(voices, 5) == set(OneNotePerVoice.ROWS)
    for _ in range(80):
        dec.step()
    for steps in (0, 40):  # at once (the state that an onset resets too) and further on
        if not steps:
            dec.reindex(torch.tensor([3, 3, 0, 1, 4]))
        for _ in range(steps):
            dec.step()
        replay = _replayed(lambda r: OneNotePerVoice(enc, r.numpy(), torch.device("cpu")), dec.hist, 1, dec.length)
        assert not _same_state(voices, replay), steps


def test_resampling_carries_the_bar_copier_and_the_tonic_ending():
    """The meter model's decoder copies repeated bars and gates its ending on the tonic: both states move with
    their rows, equal to a replay of each row's tokens."""
    from musesynth.generate.key_guide import TonicBass
    from musesynth.generate.model import Model
    from musesynth.generate.prompt import build_prompt
    from musesynth.generate.repeats import BarCopier
    from musesynth.generate.request import GenerationRequest

    model = Model.load(None, "cpu")
    enc = model.encoding
    rows = build_prompt(GenerationRequest(num_samples=4, seed=2).validate(), model).model_rows  # keyed headers
    start = rows.shape[1]
    spec = DecodeSpec.of(enc, model.seq_len)
    dec = Decoder(model.net, rows, spec, Sampling(repeat_bias=3.0), seed=2, budget=400)
    assert dec.copier is not None and dec.tonic is not None
    assert _per_row(dec.copier, 4) == set(BarCopier.ROWS) and _per_row(dec.tonic, 4) == set(TonicBass.ROWS)
    for _ in range(250):
        dec.step()
    for steps in (0, 100):
        if not steps:
            dec.reindex(torch.tensor([1, 0, 1, 2]))
        for _ in range(steps):
            dec.step()
        n = dec.length
        copier = BarCopier(spec.repeats, dec.hist, start)
        for t in range(start, n):
            copier.advance(dec.hist[:, t], dec.hist, t)
        tonic = _replayed(lambda r: TonicBass(spec.keys, r.numpy(), torch.device("cpu")), dec.hist, start, n)
        assert not _same_state(dec.copier, copier) and not _same_state(dec.tonic, tonic), steps


def test_generate_with_particles_keeps_the_voices_and_is_repeatable(tmp_path, capsys):
    """Free pieces drawn by SMC: one seed, one answer; every piece keeps one line per voice; a model without voices
    refuses the option in one line."""
    from musesynth.evaluate.run import generated_pieces
    from musesynth.evaluate.voice_leading import voice_leading_report
    from musesynth.generate.model import PARTS_MODEL, Model

    model = Model.load(str(PARTS_MODEL), "cpu")
    first, _, _ = generated_pieces(model, 3, 240, 5, Sampling(), particles=4)
    again, _, _ = generated_pieces(model, 3, 240, 5, Sampling(), particles=4)
    assert len(first) == 3
    assert all(np.array_equal(a.pitch, b.pitch) and np.array_equal(a.onset, b.onset)
               for a, b in zip(first, again, strict=True))
    report = voice_leading_report(first, first)["generated"]
    assert report["over_four"] == 0 and report["parallels_per_100"] == 0, report
    from musesynth.api import generate

    timed = generate(model, length=120, num_samples=2, seed=4, tempo=70, particles=3)  # the forced tempo moves too
    assert len(timed) == 2 and all(abs(p.info.tempo - 70) < 3 for p in timed), [p.info.tempo for p in timed]

    from musesynth.cli import main

    assert main(["generate", "-c", "musesynth/pretrained/bach", "--particles", "2", "-o", str(tmp_path), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("musesynth: error: --particles weighs pieces by the voice rules of a parts model"), err
    assert not list(tmp_path.iterdir())
    assert main(["evaluate", "-c", "musesynth/pretrained/bach", "--particles", "2"]) == 2  # before any scoring
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("musesynth: error: --particles weighs pieces by the voice rules of a parts model"), err
    assert main(["generate", "-c", "musesynth/pretrained/bach-parts", "--particles", "65", "-o", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith("--particles must be 1-64 (got 65)")


@pytest.mark.parametrize("particles", [1, 3])
def test_one_prompt_decodes_twice_to_the_same_pieces_with_a_forced_tempo(particles):
    """Decoding moves the forced tempo's state (and SMC reindexes it); the prompt's own must stay fresh, so a
    prompt decoded again gives the same pieces and the tempo is forced again."""
    from musesynth.generate.model import PARTS_MODEL, Model
    from musesynth.generate.pipeline import decode_prompt
    from musesynth.generate.prompt import build_prompt
    from musesynth.generate.request import Controls, GenerationRequest

    model = Model.load(str(PARTS_MODEL), "cpu")
    request = GenerationRequest(controls=Controls(tempo=70), length=60, num_samples=2, seed=4,
                                particles=particles).validate().resolved()
    prompt = build_prompt(request, model)
    pending = prompt.tempo.pending.clone()
    first, again = decode_prompt(model, prompt, request), decode_prompt(model, prompt, request)
    assert torch.equal(prompt.tempo.pending, pending) and bool(pending.all())
    assert len(first) == len(again) == 2
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
