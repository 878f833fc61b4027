"""`musesynth evaluate`: test-set NLL / perplexity / accuracy against n-gram baselines, and musical
statistics of generated pieces against held-out pieces."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musesynth.atomic import atomic_write_json
from musesynth.data.build import load_pieces, load_split, load_vocab
from musesynth.errors import MusesynthError
from musesynth.evaluate.baselines import bigram, score_bigram, score_unigram, unigram
from musesynth.evaluate.likelihood import LossStats, split_loss
from musesynth.evaluate.music_stats import Piece, compare, mean_distance, piece_from_score
from musesynth.generate.sampling import Sampling, generate
from musesynth.tokenize import Encoding
from musesynth.training.checkpoint import load_model
from musesynth.training.loop import pick_device


def stats_dict(s: LossStats) -> dict[str, float]:
    return {"nll": s.nll, "perplexity": s.perplexity, "accuracy": s.accuracy, "tokens": s.tokens}


def baselines(dataset: Path, split: str, vocab_size: int) -> dict[str, dict[str, float]]:
    train, tokens = np.asarray(load_split(dataset, "train")), np.asarray(load_split(dataset, split))
    return {"unigram": stats_dict(score_unigram(unigram(train, vocab_size), tokens)),
            "bigram": stats_dict(score_bigram(bigram(train, vocab_size), tokens))}


def held_out_pieces(enc: Encoding, dataset: Path, split: str, max_tokens: int, limit: int) -> list[Piece]:
    """Held-out pieces cut to the same token budget as the generated ones, so lengths match."""
    pieces = load_pieces(dataset, split)[:limit]
    return [piece_from_score(enc.decode(p[:max_tokens])) for p in pieces]


def generated_pieces(model: torch.nn.Module, enc: Encoding, n: int, length: int, seed: int,
                     sampling: Sampling) -> list[Piece]:
    seqs = generate(model, [enc.bos_id], length, num_samples=n, sampling=sampling, grammar=enc.grammar(),
                    eos_id=enc.eos_id, seed=seed, context=model.cfg.context)
    return [piece_from_score(enc.decode(s)) for s in seqs]


def evaluate_checkpoint(checkpoint: str, dataset: str | None = None, split: str = "test", batch_size: int = 64,
                        device: str = "auto", samples: int = 16, length: int = 512, seed: int = 0,
                        sampling: Sampling | None = None) -> dict[str, Any]:
    dev = pick_device(device)
    model, enc, meta = load_model(checkpoint, dev)
    ds = Path(dataset or meta["dataset"])
    if not (ds / "manifest.json").is_file():
        raise MusesynthError(f"dataset not found: {ds} (pass -d DATASET_DIR)")
    if load_vocab(ds).tokens != enc.vocab.tokens:
        raise MusesynthError(f"dataset {ds} uses another vocabulary than the checkpoint")
    tokens = load_split(ds, split)
    if len(tokens) < 2:
        raise MusesynthError(f"the {split} split of {ds} is empty")
    ctx = int(meta["model_config"]["context"])
    s = split_loss(model, tokens, ctx, batch_size, dev, enc.pad_id)
    result: dict[str, Any] = {
        "checkpoint": meta["path"], "model": meta["model_config"]["family"], "params": meta["num_params"],
        "dataset": str(ds), "split": split, "window": ctx, "model_metrics": stats_dict(s),
        "baselines": baselines(ds, split, len(enc.vocab)),
    }
    if samples > 0:
        gen = generated_pieces(model, enc, samples, length, seed, sampling or Sampling())
        ref = held_out_pieces(enc, ds, split, length + 1, limit=max(samples, 64))
        ms = compare(ref, gen)
        result["music_stats"] = ms
        result["music_stats_mean_distance"] = mean_distance(ms)
        result["music_stats_setup"] = {"generated": samples, "held_out": len(ref), "tokens_per_piece": length}
    return result


def format_result(r: dict[str, Any]) -> str:
    m, b = r["model_metrics"], r["baselines"]
    lines = [f"{r['model']} ({r['params']:,} params) on the {r['split']} split: {m['tokens']:,} tokens, "
             f"windows of {r['window']}",
             f"{'':10s}{'NLL (nats)':>12s}{'perplexity':>12s}{'accuracy':>10s}"]
    for name, v in (("model", m), ("unigram", b["unigram"]), ("bigram", b["bigram"])):
        lines.append(f"{name:10s}{v['nll']:12.4f}{v['perplexity']:12.2f}{100 * v['accuracy']:9.1f}%")
    if "music_stats" in r:
        lines.append("musical statistics, generated vs held-out (overlap distance 0 = same, KL):")
        for k, v in r["music_stats"].items():
            lines.append(f"  {k:14s}{v['distance']:8.3f}{v['kl']:9.3f}")
        lines.append(f"  {'mean':14s}{r['music_stats_mean_distance']:8.3f}")
    return "\n".join(lines)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="test-set NLL/perplexity/accuracy, baselines and musical statistics")
    p.add_argument("-c", "--checkpoint", required=True, help="run folder or checkpoint file")
    p.add_argument("-d", "--dataset", help="dataset folder (default: the one the model was trained on)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--samples", type=int, default=16, help="generated pieces for musical statistics (0: skip)")
    p.add_argument("--length", type=int, default=512, help="tokens per generated piece")
    p.add_argument("-t", "--temperature", type=float, default=1.0)
    p.add_argument("-k", "--top-k", type=int, default=0)
    p.add_argument("-p", "--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    r = evaluate_checkpoint(args.checkpoint, args.dataset, args.split, args.batch_size, args.device, args.samples,
                            args.length, args.seed, Sampling(args.temperature, args.top_k, args.top_p))
    print(format_result(r))
    if args.json:
        atomic_write_json(args.json, r)
    return 0
