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
