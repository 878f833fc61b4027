"""Sampling from a model, one token at a time with its cache (RNN hidden state / Transformer KV cache).

Each step: logits plus the dials' log-odds (repeat marks, key guidance), / temperature, grammar mask
(tokens that cannot follow the previous one are removed, so every sequence decodes; with a repeat
copier or a constraint, narrowed further), top-k, nucleus top-p, then a categorical draw from a seeded
generator (same seed, same piece). Samples are generated as one batch.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from musesynth.errors import MusesynthError
from musesynth.generate.fast_decode import GraphedDecoding
from musesynth.generate.key_guide import TonicBass, key_bias
from musesynth.generate.repeats import BarCopier
from musesynth.models.transformer import TransformerModel
from musesynth.tokenize.base import KeySpec, RepeatSpec


class Constraint(Protocol):
    """Extra per-sample rules on top of the grammar (e.g. an infill's bar count): ``allowed`` narrows
    the (B, V) mask before each draw, ``advance`` sees each drawn token."""

    def allowed(self, allowed: torch.Tensor | None, prev: torch.Tensor) -> torch.Tensor: ...

    def advance(self, tok: torch.Tensor) -> None: ...


@dataclass
class Sampling:
    """How each token is drawn; the one home of these defaults and their checks."""

    temperature: float = 1.0
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1: off
    # Log-odds added to repeat marks (models with them): the model writes them about 4x less often than
    # the corpus has them at T=1 (measured on the shipped model: 4% of pieces with an 8-beat repeat,
    # Bach 62%); 1.5 gives 25% with no loss on the classifier test. 0: the model's own rate.
    repeat_bias: float = 1.5
    # Log-odds taken from notes outside the key in the piece's header (``generate.key_guide``). Measured on
    # the shipped model (48 pieces): pieces in the key asked for 21% / 33% / 42% / 42% at 0 / 1 / 2 / 3, the
    # classifier test 0.548 / 0.562 / 0.604 / 0.664: 1 holds the key better at no clear cost to realism.
    key_strength: float = 1.0
    # Log-odds added to EOS over the end of the length budget, rising linearly to this, so a piece stops at
    # a close rather than mid-bar at the token limit (0: off). None: ``ENDING[closes]``, where ``closes`` says
    # the encoding knows keys and onsets, and EOS then gains only at a full chord on the tonic
    # (``key_guide.TonicBass``); otherwise wherever the model would end.
    ending: float | None = None

    def validate(self, vocab_size: int | None = None) -> Sampling:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise MusesynthError(f"--temperature must be a positive number (got {self.temperature})")
        if self.top_k < 0 or (vocab_size is not None and self.top_k > vocab_size):
            limit = f" and at most the vocabulary size {vocab_size}" if vocab_size is not None else ""
            raise MusesynthError(f"--top-k must be 0 (off) or a positive count{limit} (got {self.top_k})")
        if not (math.isfinite(self.top_p) and 0 < self.top_p <= 1):
            raise MusesynthError(f"--top-p must be in (0, 1] (got {self.top_p})")
        if not (math.isfinite(self.repeat_bias) and abs(self.repeat_bias) <= 20):
            raise MusesynthError(f"--repeat-bias must be a number in [-20, 20] (got {self.repeat_bias})")
        if not (math.isfinite(self.key_strength) and 0 <= self.key_strength <= 20):
            raise MusesynthError(f"--key-strength must be a number in [0, 20] (got {self.key_strength})")
        if self.ending is not None and not (math.isfinite(self.ending) and 0 <= self.ending <= 20):
            raise MusesynthError(f"--ending must be a number in [0, 20] (got {self.ending})")
        return self


# (default log-odds, share of the length budget the ramp spans) without / with the tonic-close gate. Measured
# on the shipped model (48 pieces of up to 600 tokens, two seeds): the plain ramp (8, 0.3) ended 34-35
# pieces, 10-15 of them on the tonic's bass; gated at (8, 0.3) only 18; gated at (20, 0.5) 32-38, 25-34 on
# the tonic (Bach's test chorales: 36 of 39), 28-35 on a four-note chord (plain: 23-25). A gated ramp can
# be strong: it can only end a piece where a chorale could end.
ENDING = {False: (8.0, 0.3), True: (20.0, 0.5)}


def ending_ramp(sampling: Sampling, gated: bool) -> tuple[float, float]:
    """(log-odds, share of the budget) of the ending ramp: ``sampling.ending`` if set, else the gate's default."""
    strength, share = ENDING[gated]
    return (strength if sampling.ending is None else sampling.ending), share


def filter_logits(logits: torch.Tensor, s: Sampling, allowed: torch.Tensor | None = None) -> torch.Tensor:
    """(B, V) logits -> logits with disallowed / filtered tokens at -inf."""
    logits = logits.float()
    if s.temperature != 1.0:
        logits = logits / max(s.temperature, 1e-6)
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    if s.top_k and s.top_k < logits.shape[-1]:
        kth = torch.topk(logits, s.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if s.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(-1)
        # drop a token when the mass before it already reaches top_p (the top token always stays)
        drop = probs.cumsum(-1) - probs >= s.top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


def draw(probs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One token per row of (B, V) ``probs``: exactly ``torch.multinomial(probs, 1, generator=gen)`` (the
    same draws: PyTorch's one-sample path is this exponential race, argmax(p / q), q ~ Exp(1)) without
    its input checks, which cost a dozen kernels and two host syncs per step (on a GPU, a stall)."""
    return probs.div(torch.empty_like(probs).exponential_(1, generator=gen)).argmax(-1)


@contextlib.contextmanager
def _one_token_backend(device: torch.device) -> Iterator[None]:
    """On CPU, oneDNN's LSTM kernel spends longer setting up a one-token step than computing it
    (measured 6.1 -> 1.9 ms per step without it), while it is the faster one for whole sequences; so
    it is switched off around cached single-token steps only."""
    if device.type != "cpu":
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a TF32 notice irrelevant on CPU
        with torch.backends.mkldnn.flags(enabled=False):
            yield


class Decoder:
    """Decoding state for a batch of samples: ``step()`` draws one token for each and advances.

    ``use_cache=False`` is the naive reference: every step re-runs the model over the whole prefix
    (the last ``seq_len`` tokens for a Transformer), as a model without a cache would. ``repeats`` (an
    encoding's ``repeat_spec()``) makes a written repeat token copy its bar exactly (``generate.repeats``);
    ``keys`` (its ``key_spec()``) lets ``Sampling.key_strength`` hold each sample in its header's key
    (read from ``key_source``, rows of tokens, where the primer may not hold the header: an infill prompt).
    On a GPU a Transformer's one-token steps replay a CUDA graph (``fast_decode.GraphedDecoding``: the same
    tokens, one launch per step instead of ~15 kernels per layer); ``cuda_graphs=False`` runs them eagerly.
    """

    def __init__(self, model: nn.Module, primer: list[int] | np.ndarray, num_samples: int = 1,
                 sampling: Sampling | None = None, grammar: np.ndarray | None = None, eos_id: int | None = None,
                 seed: int = 0, use_cache: bool = True, seq_len: int | None = None,
                 repeats: RepeatSpec | None = None, capacity: int = 0, constraint: Constraint | None = None,
                 keys: KeySpec | None = None, key_source: np.ndarray | None = None, cuda_graphs: bool = True,
                 budget: int = 0) -> None:
        self.sampling = sampling or Sampling()
        self.device = next(model.parameters()).device
        model = model.eval()
        if cuda_graphs and use_cache and self.device.type == "cuda" and isinstance(model, TransformerModel):
            model = GraphedDecoding(model)
        self.model = model
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.grammar = torch.as_tensor(grammar, device=self.device) if grammar is not None else None
        # the grammar as log-odds (0 / -inf): one indexed add per step where no copier or constraint narrows
        # the mask further, the same numbers as masking the tokens out
        self.grammar_add = None if self.grammar is None else \
            torch.zeros(self.grammar.shape, device=self.device).masked_fill_(~self.grammar, float("-inf"))
        self.eos_id, self.use_cache, self.seq_len = eos_id, use_cache, seq_len
        self.is_transformer = hasattr(model, "blocks")
        seq = torch.as_tensor(np.asarray(primer, np.int64), device=self.device)
        # one primer for every sample, or one row per sample (e.g. each in its own key)
        seq = seq.unsqueeze(0).repeat(num_samples, 1) if seq.dim() == 1 else seq
        self.primer_len = self.length = seq.shape[1]
        # the token history, preallocated (grown by doubling): no per-step concatenation
        self.hist = torch.zeros(seq.shape[0], max(capacity, 2 * seq.shape[1], 64), dtype=torch.long,
                                device=self.device)
        self.hist[:, : self.length] = seq
        self.copier = BarCopier(repeats, self.hist, self.length) if repeats is not None else None
        self.bias: torch.Tensor | None = None
        if repeats is not None and self.sampling.repeat_bias:
            self.bias = torch.as_tensor((repeats.bars_back > 0) * self.sampling.repeat_bias, dtype=torch.float32,
                                        device=self.device)
        source = seq.cpu().numpy() if key_source is None else np.asarray(key_source)
        guide = key_bias(keys, source, self.sampling.key_strength)
        if guide is not None:
            guide_t = torch.as_tensor(guide, device=self.device)
            self.bias = guide_t if self.bias is None else self.bias + guide_t
        self.constraint = constraint
        self.finished = torch.zeros(num_samples, dtype=torch.bool, device=self.device)
        with torch.no_grad():
            logits, self.state = model(seq)
        self.last, self.prev = logits[:, -1], seq[:, -1]
        # the ending ramps: at generated token i >= start, EOS gains strength * (i - start + 1) / (budget - start);
        # the gated one (True) only where the latest onset is a full chord on the tonic of the sample's key, for
        # rows with a key; rows without one get the plain ramp (False)
        self.ramp: torch.Tensor | None = None
        self.tonic: TonicBass | None = None
        self.ramps: dict[bool, tuple[int, float]] = {}
        if budget and eos_id is not None:
            tonic = TonicBass(keys, source, self.device) if keys is not None and keys.onset is not None else None
            self.tonic = tonic if tonic is not None and bool(tonic.keyed.any()) else None
            for gated in {False, self.tonic is not None}:
                strength, share = ending_ramp(self.sampling, gated)
                if strength:
                    span = max(int(round(share * budget)), 1)
                    self.ramps[gated] = (budget - span, strength / span)
            if self.ramps:
                self.ramp = torch.zeros(logits.shape[-1], device=self.device)
                self.ramp[eos_id] = 1.0

    @torch.no_grad()
    def step(self) -> torch.Tensor:
        last = self.last if self.bias is None else self.last.float() + self.bias
        i = self.length - self.primer_len
        gain = self._ending_gain(i) if self.ramp is not None else None
        if gain is not None:
            last = last.float() + gain * self.ramp
        if self.copier is None and self.constraint is None and self.grammar_add is not None:
            last, allowed = last + self.grammar_add[self.prev], None
        else:
            allowed = self.grammar[self.prev] if self.grammar is not None else None
            if self.copier is not None:
                allowed = self.copier.allowed(allowed)
            if self.constraint is not None:
                allowed = self.constraint.allowed(allowed, self.prev)
        probs = filter_logits(last, self.sampling, allowed).softmax(-1)
        tok = draw(probs, self.gen)
        if self.copier is not None:
            tok = self.copier.force(tok, self.hist)
        if self.constraint is not None:
            self.constraint.advance(tok)
        if self.eos_id is not None:
            tok = torch.where(self.finished, torch.full_like(tok, self.eos_id), tok)
            self.finished |= tok == self.eos_id
        self._append(tok)
        self.prev = tok
        if self.use_cache:
            logits, self.state = self.model(tok[:, None], self.state)
        else:
            full = self.hist[:, : self.length]
            if self.is_transformer and self.seq_len:
                full = full[:, -self.seq_len :]
            logits, _ = self.model(full)
        self.last = logits[:, -1]
        return tok

    def _ending_gain(self, i: int) -> float | torch.Tensor | None:
        """EOS log-odds at generated token ``i``: a number for every row, or (B, 1) where the gate decides."""
        def at(gated: bool) -> float:
            start, step = self.ramps.get(gated, (i + 1, 0.0))
            return step * (i - start + 1) if i >= start else 0.0

        plain, gated = at(False), at(True)
        if self.tonic is None:
            return plain or None
        if not (plain or gated):
            return None
        closed = self.tonic.closed().float() * gated
        return torch.where(self.tonic.keyed, closed, torch.full_like(closed, plain))[:, None]

    def _append(self, tok: torch.Tensor) -> None:
        if self.length == self.hist.shape[1]:
            self.hist = torch.cat([self.hist, torch.zeros_like(self.hist)], 1)
            if self.copier is not None:
                self.copier.grow(self.hist.shape[1])
        self.hist[:, self.length] = tok
        if self.copier is not None:
            self.copier.advance(tok, self.hist, self.length)
        if self.tonic is not None:
            self.tonic.advance(tok)
        self.length += 1

    @property
    def done(self) -> bool:
        return bool(self.finished.all())

    def step_context(self) -> contextlib.AbstractContextManager:
        """The loop makes one-token model calls only when caching: pick the kernel that suits them."""
        return _one_token_backend(self.device) if self.use_cache else contextlib.nullcontext()

    def sequences(self) -> list[np.ndarray]:
        """Each sample's tokens, primer included, cut after its first generated EOS."""
        result = self.hist[:, : self.length].cpu().numpy()
        seqs = []
        for row in result:
            if self.eos_id is not None:
                stop = np.flatnonzero(row[self.primer_len :] == self.eos_id)
                if stop.size:
                    row = row[: self.primer_len + stop[0] + 1]
            seqs.append(row)
        return seqs


def generate(
    model: nn.Module,
    primer: list[int] | np.ndarray,
    num_tokens: int,
    num_samples: int = 1,
    sampling: Sampling | None = None,
    grammar: np.ndarray | None = None,
    eos_id: int | None = None,
    seed: int = 0,
    use_cache: bool = True,
    seq_len: int | None = None,
    repeats: RepeatSpec | None = None,
    constraint: Constraint | None = None,
    keys: KeySpec | None = None,
    key_source: np.ndarray | None = None,
    cuda_graphs: bool = True,
    ending: bool = True,
) -> list[np.ndarray]:
    """Continue ``primer`` (1-D, shared, or 2-D, a row per sample) by up to ``num_tokens`` tokens per sample
    (a sample stops at EOS; ``Sampling.ending`` draws it there over the budget's last part (``ENDING``), unless
    ``ending`` is False: an infill's fill, whose end the constraint decides)."""
    dec = Decoder(model, primer, num_samples, sampling, grammar, eos_id, seed, use_cache, seq_len, repeats,
                  capacity=np.asarray(primer).shape[-1] + num_tokens, constraint=constraint, keys=keys,
                  key_source=key_source, cuda_graphs=cuda_graphs, budget=num_tokens if ending else 0)
    # "all finished?" reads the device; on a GPU that stalls the queue, so it is asked every 16 steps there
    # (finished rows only add EOS, which ``sequences`` cuts)
    every = 1 if dec.device.type == "cpu" else 16
    with dec.step_context():
        for i in range(num_tokens):
            dec.step()
            if (i + 1) % every == 0 and dec.done:
                break
    return dec.sequences()
