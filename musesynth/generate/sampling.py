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
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from musesynth.errors import BadRequest, MusesynthError
from musesynth.generate.fast_decode import GraphedDecoding
from musesynth.generate.key_guide import TonicBass, key_bias
from musesynth.generate.repeats import BarCopier
from musesynth.models.state import select_state
from musesynth.models.transformer import TransformerModel
from musesynth.tokenize.base import Encoding, KeySpec, RepeatSpec


class Constraint(Protocol):
    """Extra per-sample rules on top of the grammar (e.g. an infill's bar count): ``allowed`` narrows
    the (B, V) mask before each draw, ``advance`` sees each drawn token."""

    def allowed(self, allowed: torch.Tensor | None, prev: torch.Tensor) -> torch.Tensor: ...

    def advance(self, tok: torch.Tensor) -> None: ...


class Chain:
    """Several constraints applied in turn (each narrows what the one before allowed; all see each token)."""

    def __init__(self, *constraints: Constraint) -> None:
        self.constraints = constraints

    def allowed(self, allowed: torch.Tensor | None, prev: torch.Tensor) -> torch.Tensor | None:
        for c in self.constraints:
            allowed = c.allowed(allowed, prev)
        return allowed

    def advance(self, tok: torch.Tensor) -> None:
        for c in self.constraints:
            c.advance(tok)

    def reindex(self, idx: np.ndarray) -> None:
        for c in self.constraints:
            c.reindex(idx)  # type: ignore[attr-defined]


def chain(*constraints: Constraint | None) -> Constraint | None:
    """The constraints given (None ones left out) as one, or None when there are none."""
    cs = [c for c in constraints if c is not None]
    return None if not cs else cs[0] if len(cs) == 1 else Chain(*cs)


@dataclass(frozen=True)
class Dial:
    """What a sampling dial is: its range (``low`` / ``high`` inclusive unless ``open_low``), whether it is a
    whole number, its short CLI flag and its help. The CLI's options, the API's keyword arguments, the studio's
    fields and the checks are all built from these, so a new dial is one field of ``Sampling``."""

    low: float
    high: float
    help: str
    whole: bool = False
    open_low: bool = False
    short: str | None = None
    optional: bool = False  # None allowed: the default decides per piece

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is out of range, worded without the dial's name (callers add theirs: flag or keyword)."""
        if value is None and self.optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (self.whole and value != int(value)):
            return f"must be {'a whole number' if self.whole else 'a number'} (got {value!r})"
        low_ok = value > self.low if self.open_low else value >= self.low
        if math.isfinite(value) and low_ok and value <= self.high:
            return None
        if self.open_low and math.isinf(self.high):
            return f"must be a positive number (got {value})"
        if self.whole and math.isinf(self.high):
            return f"must be 0 (off) or a positive count (got {value})"
        if self.open_low:
            return f"must be in ({self.low:g}, {self.high:g}] (got {value})"
        return f"must be a number in [{self.low:g}, {self.high:g}] (got {value})"


def dial(default: float | None, low: float, high: float, help: str, **kw: Any) -> Any:
    """A ``Sampling`` field with its ``Dial``."""
    return field(default=default, metadata={"dial": Dial(low, high, help, **kw)})


# (default log-odds, share of the length budget the ramp spans) without / with the tonic-close gate; a gated
# ramp can be strong: it can only end a piece where a chorale could end. Measurements: docs/pretrained-notes.md.
ENDING = {False: (8.0, 0.3), True: (20.0, 0.5)}


@dataclass(frozen=True)
class Sampling:
    """How each token is drawn: the one home of every sampling dial, its default, range and help (``Dial``).
    Build it by keyword (``Sampling(top_p=0.95)``); why these defaults: docs/pretrained-notes.md."""

    temperature: float = dial(1.0, 0.0, math.inf, "divide the logits by T: < 1 safer, > 1 wilder", open_low=True,
                              short="-t")
    top_k: int = dial(0, 0, math.inf, "keep only the K most likely tokens (0: off)", whole=True, short="-k")
    top_p: float = dial(1.0, 0.0, 1.0, "nucleus sampling: keep the smallest set of tokens with this probability "
                        "mass (1: off)", open_low=True, short="-p")
    repeat_bias: float = dial(1.5, -20.0, 20.0, "models with repeat marks (meter encoding): log-odds added to the "
                              "marks, i.e. how readily a passage repeats an earlier one (0: the model's own rate)")
    key_strength: float = dial(1.0, 0.0, 20.0, "models with key tokens (meter encoding): log-odds taken from notes "
                               "outside the piece's key, i.e. how firmly it stays in the key asked for (0: the "
                               "model's own)")
    ending: float | None = dial(
        None, 0.0, 20.0, "log-odds added to the end of the piece near the length, rising to this, so it stops at a "
        "close rather than mid-bar at the limit. For models with key tokens (meter encoding) only on a full chord "
        f"on the key's tonic, over the last {ENDING[True][1]:.0%} of the length (default {ENDING[True][0]:g}); for "
        f"others wherever the model would end, over the last {ENDING[False][1]:.0%} (default {ENDING[False][0]:g}); "
        "before that the piece does not end. 0: off, the piece runs to the length or to where the model ends it",
        optional=True)

    @staticmethod
    def dials() -> dict[str, tuple[Any, Dial]]:
        """Each dial's name -> (default, ``Dial``), in field order."""
        return {f.name: (f.default, f.metadata["dial"]) for f in fields(Sampling)}

    @classmethod
    def of(cls, values: dict[str, Any]) -> Sampling:
        """A Sampling from named dials (unset ones keep their defaults); an unknown name is a one-line error."""
        unknown = sorted(set(values) - set(cls.dials()))
        if unknown:
            raise MusesynthError(f"unknown sampling dial {unknown[0]!r} (choose from: {', '.join(cls.dials())})")
        return cls(**values)

    def validate(self, vocab_size: int | None = None) -> Sampling:
        """Each dial in its range; errors name the dial as a keyword (``BadRequest``; the CLI names its flag)."""
        for name, (_, d) in self.dials().items():
            why = d.problem(getattr(self, name))
            if why is not None:
                raise BadRequest(name, why)
        if vocab_size is not None and self.top_k > vocab_size:
            raise BadRequest("top_k", f"must be 0 (off) or a positive count and at most the vocabulary size "
                             f"{vocab_size} (got {self.top_k})")
        return self


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


@dataclass(frozen=True)
class DecodeSpec:
    """What a decoder needs to know of the encoding and how to run: the grammar and EOS, the model context, the
    tables of the encoding's capabilities (exact bar repeats, key guidance) and the decoding path. ``of`` derives
    it from an encoding."""

    grammar: np.ndarray | None = None
    eos_id: int | None = None
    seq_len: int | None = None
    repeats: RepeatSpec | None = None  # a written repeat copies its bar exactly (``generate.repeats``)
    keys: KeySpec | None = None  # ``Sampling.key_strength`` holds each sample in its header's key
    use_cache: bool = True  # False: the naive reference, the whole prefix re-run every step
    cuda_graphs: bool = True  # on a GPU a Transformer's one-token steps replay a CUDA graph

    @classmethod
    def of(cls, enc: Encoding, seq_len: int | None, exact_repeats: bool = True, use_cache: bool = True,
           eos_id: int | None = None) -> DecodeSpec:
        """The spec of an encoding; ``eos_id``: another end token than EOS (an infill's FILL_END)."""
        return cls(enc.grammar(), enc.eos_id if eos_id is None else eos_id, seq_len,
                   enc.repeat_spec() if exact_repeats else None, enc.key_spec(), use_cache)


class Decoder:
    """Decoding state for a batch of samples: ``step()`` draws one token for each and advances.

    ``rows``: the prompt, (B, T) one row per sample, or 1-D for one sample. ``spec.use_cache=False`` is the naive
    reference: every step re-runs the model over the whole prefix (the last ``seq_len`` tokens for a Transformer),
    as a model without a cache would. ``spec.repeats`` makes a written repeat token copy its bar exactly;
    ``spec.keys`` lets ``Sampling.key_strength`` hold each sample in its header's key (read from ``key_source``,
    rows of tokens, where the prompt may not hold the header: an infill prompt). On a GPU a Transformer's
    one-token steps replay a CUDA graph (``fast_decode.GraphedDecoding``: the same tokens, one launch per step
    instead of ~15 kernels per layer); ``spec.cuda_graphs=False`` runs them eagerly. ``budget``: the tokens to
    be generated (room is made for them; the ending ramp spans its last part).
    """

    def __init__(self, model: nn.Module, rows: list[int] | np.ndarray, spec: DecodeSpec = DecodeSpec(),
                 sampling: Sampling | None = None, seed: int = 0, budget: int = 0,
                 constraint: Constraint | None = None, key_source: np.ndarray | None = None) -> None:
        self.sampling = sampling or Sampling()
        self.device = next(model.parameters()).device
        model = model.eval()
        if spec.cuda_graphs and spec.use_cache and self.device.type == "cuda" and isinstance(model, TransformerModel):
            model = GraphedDecoding(model)
        self.model = model
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.grammar = torch.as_tensor(spec.grammar, device=self.device) if spec.grammar is not None else None
        # the grammar as log-odds (0 / -inf): one indexed add per step where no copier or constraint narrows
        # the mask further, the same numbers as masking the tokens out
        self.grammar_add = None if self.grammar is None else \
            torch.zeros(self.grammar.shape, device=self.device).masked_fill_(~self.grammar, float("-inf"))
        self.eos_id, self.use_cache, self.seq_len = spec.eos_id, spec.use_cache, spec.seq_len
        self.is_transformer = isinstance(model, (TransformerModel, GraphedDecoding))
        seq = torch.as_tensor(np.atleast_2d(np.asarray(rows, np.int64)), device=self.device)
        num_samples = seq.shape[0]
        self.primer_len = self.length = seq.shape[1]
        # the token history, preallocated (grown by doubling): no per-step concatenation
        self.hist = torch.zeros(seq.shape[0], max(seq.shape[1] + budget, 2 * seq.shape[1], 64), dtype=torch.long,
                                device=self.device)
        self.hist[:, : self.length] = seq
        repeats, keys = spec.repeats, spec.keys
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
        # with ``weigh``: each step's log-probability of the tokens allowed, by the tempered model (``particles``)
        self.weigh, self.mass = False, torch.zeros(num_samples, device=self.device)
        with torch.no_grad():
            logits, self.state = model(seq)
        self.last, self.prev = logits[:, -1], seq[:, -1]
        self._ramps(keys, source, budget, logits.shape[-1])

    def _ramps(self, keys: KeySpec | None, source: np.ndarray, budget: int, vocab: int) -> None:
        """The ending ramps: at generated token i >= start, EOS gains strength * (i - start + 1) / (budget - start);
        the gated one (True) only where the latest onset is a full chord on the tonic of the sample's key, for
        rows with a key; rows without one get the plain ramp (False). Before the earliest ramp starts, EOS is
        held off (``hold``): a piece asked for ``budget`` tokens is not ended by the model after a few bars
        (the shipped model ended 1 of 64 pieces of 512 tokens after 3 bars); the ramp's start is its minimum length."""
        self.ramp: torch.Tensor | None = None
        self.tonic: TonicBass | None = None
        self.ramps: dict[bool, tuple[int, float]] = {}
        self.hold = 0
        if not budget or self.eos_id is None:
            return
        tonic = TonicBass(keys, source, self.device) if keys is not None and keys.onset is not None else None
        self.tonic = tonic if tonic is not None and bool(tonic.keyed.any()) else None
        for gated in {False, self.tonic is not None}:
            strength, share = ending_ramp(self.sampling, gated)
            if strength:
                span = max(int(round(share * budget)), 1)
                self.ramps[gated] = (budget - span, strength / span)
        if self.ramps:
            self.ramp = torch.zeros(vocab, device=self.device)
            self.ramp[self.eos_id] = 1.0
            self.hold = min(start for start, _ in self.ramps.values())
            self.eos_index = torch.tensor([self.eos_id], device=self.device)
        else:
            self.tonic = None  # no ramp to gate

    @torch.no_grad()
    def step(self) -> torch.Tensor:
        last = self.last if self.bias is None else self.last.float() + self.bias
        i = self.length - self.primer_len
        gain = self._ending_gain(i) if self.ramp is not None else None
        if gain is not None:
            last = last.float() + gain * self.ramp
        if i < self.hold:
            last = last.float().index_fill(1, self.eos_index, float("-inf"))  # EOS held off
        if self.copier is None and self.constraint is None and self.grammar_add is not None:
            last, allowed = last + self.grammar_add[self.prev], None
        else:
            allowed = self.grammar[self.prev] if self.grammar is not None else None
            if self.copier is not None:
                allowed = self.copier.allowed(allowed)
            if self.constraint is not None:
                allowed = self.constraint.allowed(allowed, self.prev)
        probs = filter_logits(last, self.sampling, allowed).softmax(-1)
        if self.weigh:
            self._weigh(last, allowed)
        tok = draw(probs, self.gen)
        if self.copier is not None:  # a constraint's rules hold inside a copied bar too
            tok = self.copier.force(tok, self.hist, allowed if self.constraint is not None else None)
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

    def _weigh(self, last: torch.Tensor, allowed: torch.Tensor | None) -> None:
        """``mass``: per row, the log of the tempered model's probability of the allowed tokens (0 when all are,
        or when the row has finished)."""
        if allowed is None:
            self.mass = torch.zeros_like(self.mass)
            return
        logp = (last.float() / max(self.sampling.temperature, 1e-6)).log_softmax(-1)
        mass = logp.masked_fill(~allowed, float("-inf")).logsumexp(-1)
        self.mass = torch.where(self.finished, torch.zeros_like(mass), mass.clamp(min=-1e4))

    def reindex(self, idx: torch.Tensor) -> None:
        """Take the samples in the row order ``idx`` (rows may repeat: SMC's resampling), their model state and
        constraint's with them."""
        if self.copier is not None:
            self.copier.reindex(idx)
        if self.tonic is not None:
            self.tonic.reindex(idx)
        if self.bias is not None and self.bias.dim() == 2 and self.bias.shape[0] == self.hist.shape[0] > 1:
            self.bias = self.bias[idx]  # one row per sample (a row for all broadcasts)
        self.hist, self.last, self.prev = self.hist[idx], self.last[idx], self.prev[idx]
        self.finished, self.mass = self.finished[idx], self.mass[idx]
        self.state = select_state(self.state, idx)
        if self.constraint is not None:
            self.constraint.reindex(idx.cpu().numpy())  # type: ignore[attr-defined]

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
    ``ending`` is False: an infill's fill, whose end the constraint decides). The loose form of ``decode``."""
    rows = np.asarray(primer, np.int64)
    rows = np.tile(rows, (num_samples, 1)) if rows.ndim == 1 else rows
    spec = DecodeSpec(grammar, eos_id, seq_len, repeats, keys, use_cache, cuda_graphs)
    s = sampling or Sampling()
    return decode(model, rows, spec, s if ending else replace(s, ending=0.0), seed, num_tokens, constraint,
                  key_source)


def decode(model: nn.Module, rows: np.ndarray, spec: DecodeSpec, sampling: Sampling, seed: int, num_tokens: int,
           constraint: Constraint | None = None, key_source: np.ndarray | None = None) -> list[np.ndarray]:
    """Continue each of ``rows`` (one per sample) by up to ``num_tokens`` tokens (``Decoder``)."""
    dec = Decoder(model, rows, spec, sampling, seed, num_tokens, constraint, key_source)
    # "all finished?" reads the device; on a GPU that stalls the queue, so it is asked every 16 steps there
    # (finished rows only add EOS, which ``sequences`` cuts)
    every = 1 if dec.device.type == "cpu" else 16
    with dec.step_context():
        for i in range(num_tokens):
            dec.step()
            if (i + 1) % every == 0 and dec.done:
                break
    return dec.sequences()
