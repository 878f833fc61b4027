"""`musesynth evaluate`: test-set NLL / perplexity / accuracy against n-gram baselines, and musical
statistics of generated pieces against held-out pieces."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musesynth.data.dataset import is_dataset, load_pieces, load_split, load_vocab
from musesynth.device import pick_device
from musesynth.errors import MusesynthError
from musesynth.evaluate.baselines import bigram, score_bigram, score_unigram, unigram
from musesynth.evaluate.music_stats import Piece, compare, mean_distance, piece_from_score
from musesynth.generate.sampling import Sampling, generate
from musesynth.tokenize import Encoding
from musesynth.training.checkpoint import load_model
from musesynth.training.likelihood import LossStats, split_loss

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class EvaluateOptions:
    """Every `musesynth evaluate` setting with its default (the parser reads them from here)."""

    checkpoint: str
    dataset: str | None = None
    split: str = "test"
    batch_size: int = 64
    device: str = "auto"
    samples: int = 16
    length: int = 512
    seed: int = 0
    sampling: Sampling = field(default_factory=Sampling)

    def validate(self) -> None:
        if self.split not in SPLIT_NAMES:
            raise MusesynthError(f"--split must be one of {', '.join(SPLIT_NAMES)} (got {self.split})")
        for name, low in (("batch_size", 1), ("samples", 0), ("length", 1)):
            if getattr(self, name) < low:
                raise MusesynthError(f"--{name.replace('_', '-')} must be at least {low} (got {getattr(self, name)})")
        self.sampling.validate()


@dataclass
class Metrics:
    nll: float
    perplexity: float
    accuracy: float
    tokens: int

    @classmethod
    def of(cls, s: LossStats) -> Metrics:
        return cls(s.nll, s.perplexity, s.accuracy, s.tokens)


@dataclass
class Evaluation:
    """What `musesynth evaluate` measures; ``to_dict`` is its JSON."""

    checkpoint: str
    model: str
    params: int
    dataset: str
    split: str
    seq_len: int
    model_metrics: Metrics
    baselines: dict[str, Metrics]
    music_stats: dict[str, dict[str, float]] | None = None
    music_stats_mean_distance: float | None = None
    music_stats_setup: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def baselines(dataset: Path, split: str, vocab_size: int) -> dict[str, Metrics]:
    train, tokens = np.asarray(load_split(dataset, "train")), np.asarray(load_split(dataset, split))
    return {"unigram": Metrics.of(score_unigram(unigram(train, vocab_size), tokens)),
            "bigram": Metrics.of(score_bigram(bigram(train, vocab_size), tokens))}


def held_out_pieces(enc: Encoding, dataset: Path, split: str, max_tokens: int, limit: int) -> list[Piece]:
    """Held-out pieces cut to the same token budget as the generated ones, so lengths match."""
    pieces = load_pieces(dataset, split)[:limit]
    return [piece_from_score(enc.decode(p[:max_tokens])) for p in pieces]


def generated_pieces(model: torch.nn.Module, enc: Encoding, n: int, length: int, seed: int,
                     sampling: Sampling) -> list[Piece]:
    seqs = generate(model, [enc.bos_id], length, num_samples=n, sampling=sampling, grammar=enc.grammar(),
                    eos_id=enc.eos_id, seed=seed, seq_len=model.cfg.seq_len)
    return [piece_from_score(enc.decode(s)) for s in seqs]


def _dataset_for(opt: EvaluateOptions, trained_on: str, enc: Encoding) -> Path:
    ds = Path(opt.dataset or trained_on)
    if not is_dataset(ds):
        raise MusesynthError(f"dataset not found: {ds} (pass -d DATASET_DIR)")
    if load_vocab(ds).tokens != enc.vocab.tokens:
        raise MusesynthError(f"dataset {ds} uses another vocabulary than the checkpoint")
    return ds


def evaluate_checkpoint(opt: EvaluateOptions) -> Evaluation:
    opt.validate()
    dev = pick_device(opt.device)
    model, enc, meta = load_model(opt.checkpoint, dev)
    ds = _dataset_for(opt, meta.dataset, enc)
    tokens = load_split(ds, opt.split)
    if len(tokens) < 2:
        raise MusesynthError(f"the {opt.split} split of {ds} is empty")
    seq_len = meta.model_config.seq_len
    s = split_loss(model, tokens, seq_len, opt.batch_size, dev, enc.pad_id)
    result = Evaluation(checkpoint=meta.path, model=meta.family, params=meta.num_params, dataset=str(ds),
                        split=opt.split, seq_len=seq_len, model_metrics=Metrics.of(s),
                        baselines=baselines(ds, opt.split, len(enc.vocab)))
    if opt.samples > 0:
        gen = generated_pieces(model, enc, opt.samples, opt.length, opt.seed, opt.sampling)
        ref = held_out_pieces(enc, ds, opt.split, opt.length + 1, limit=max(opt.samples, 64))
        result.music_stats = compare(ref, gen)
        result.music_stats_mean_distance = mean_distance(result.music_stats)
        result.music_stats_setup = {"generated": opt.samples, "held_out": len(ref), "tokens_per_piece": opt.length}
    return result


def format_result(r: Evaluation) -> str:
    m, b = r.model_metrics, r.baselines
    lines = [f"{r.model} ({r.params:,} params) on the {r.split} split: {m.tokens:,} tokens, windows of {r.seq_len}",
             f"{'':10s}{'NLL (nats)':>12s}{'perplexity':>12s}{'accuracy':>10s}"]
    for name, v in (("model", m), ("unigram", b["unigram"]), ("bigram", b["bigram"])):
        lines.append(f"{name:10s}{v.nll:12.4f}{v.perplexity:12.2f}{100 * v.accuracy:9.1f}%")
    if r.music_stats is not None:
        lines.append("musical statistics, generated vs held-out (overlap distance 0 = same, KL):")
        for k, v in r.music_stats.items():
            lines.append(f"  {k:14s}{v['distance']:8.3f}{v['kl']:9.3f}")
        lines.append(f"  {'mean':14s}{r.music_stats_mean_distance:8.3f}")
    return "\n".join(lines)
