"""Sequential Monte Carlo under a constraint: samples that keep to fixed notes as the model itself would.

Masked sampling writes what the constraint allows, drawn from the model's distribution renormalised over it, and
never looks back: under a given melody it voices a chord without asking whether the melody's next note still
follows from it. The model's own answer to that question is the probability it gave the tokens the constraint
allowed (``Decoder.mass``: 1 where nothing was ruled out, the melody note's probability where it was forced).
The product of those is each sample's importance weight for the model's distribution *conditioned on* the
constraint, so a population of particles, resampled by weight whenever the weights grow uneven, is drawn from
that conditional (as in Lew et al. 2023, "Sequential Monte Carlo steering of large language models"). The
particles are split into ``groups``: each group is one population and gives back its one heaviest particle, so
``groups`` different pieces come out. Without a melody (``generate --particles``: a parts model's free pieces) the
constraint is the voice rules alone, and the weight is how much of the model's probability kept to them.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from musesynth.errors import BadRequest
from musesynth.generate.sampling import Constraint, Decoder, DecodeSpec, Sampling

MAX_PARTICLES = 64  # per result, in every front end (harmonize, infill --parts, generate, evaluate)


def check_particles(particles: object) -> None:
    """``particles`` must be a whole number 1-``MAX_PARTICLES``: the one check every front end makes."""
    if isinstance(particles, bool) or not isinstance(particles, int) or not 1 <= particles <= MAX_PARTICLES:
        raise BadRequest("particles", f"must be 1-{MAX_PARTICLES} (got {particles!r})")


def resample(logw: np.ndarray, groups: int, rng: np.random.Generator) -> np.ndarray | None:
    """Systematic resampling within each group of particles whose effective size fell below half the group's:
    the new order of the rows (ancestor per row), or None when no group needs it."""
    n = logw.size // groups
    idx = np.arange(logw.size)
    changed = False
    for g in range(groups):
        lw = logw[g * n: (g + 1) * n]
        w = np.exp(lw - lw.max())
        w /= w.sum()
        if 1.0 / float((w ** 2).sum()) >= n / 2:
            continue
        points = (rng.random() + np.arange(n)) / n
        idx[g * n: (g + 1) * n] = g * n + np.minimum(np.searchsorted(np.cumsum(w), points), n - 1)
        changed = True
    return idx if changed else None


class ParticleConstraint(Constraint, Protocol):
    """A constraint that SMC can resample: its per-sample state is taken in a new row order."""

    def reindex(self, idx: np.ndarray) -> None: ...


def decode_particles(model: torch.nn.Module, rows: np.ndarray, spec: DecodeSpec, sampling: Sampling, seed: int,
                     num_tokens: int, constraint: ParticleConstraint, groups: int,
                     key_source: np.ndarray | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """``rows`` (groups x particles, one row each) continued under ``constraint`` by SMC: per group its heaviest
    particle's tokens (prompt included, cut after EOS), and every particle's final log-weight (since the last
    resampling of its group)."""
    dec = Decoder(model, rows, spec, sampling, seed, num_tokens, constraint, key_source)
    dec.weigh = True
    n = rows.shape[0]
    if n % groups:
        raise ValueError(f"{n} particles do not split into {groups} groups")
    logw = np.zeros(n)
    rng = np.random.default_rng(seed)
    with dec.step_context():
        for _ in range(num_tokens):
            dec.step()
            logw += dec.mass.cpu().numpy()
            if dec.done:
                break
            idx = resample(logw, groups, rng)
            if idx is not None:
                dec.reindex(torch.as_tensor(idx, device=dec.device))
                logw = np.repeat(_group_mean(logw, groups), n // groups)  # equal weights after resampling
    seqs = dec.sequences()
    size = n // groups
    best = np.arange(groups) * size + logw.reshape(groups, size).argmax(1)
    return [seqs[k] for k in best], logw


def _group_mean(logw: np.ndarray, groups: int) -> np.ndarray:
    lw = logw.reshape(groups, -1)
    top = lw.max(1, keepdims=True)
    return (top + np.log(np.exp(lw - top).mean(1, keepdims=True)))[:, 0]
