"""`musesynth ablate`: train the model families under one equal budget (same tokens seen or same wall
time), same data, same seed; evaluate each on the test split; write a report folder:

    report.md              the table (params, train time, tokens/s, test NLL, perplexity, accuracy,
                           musical-statistics distances) next to unigram / bigram baselines
    learning_curves.png    validation loss vs training tokens, one line per family
    samples/               one generated piece per family (MIDI, WAV, piano-roll PNG, JSON)
    results.json           every figure, for scripts
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from musesynth.atomic import atomic_write_json, atomic_write_text
from musesynth.data.build import first_test_file, load_vocab
from musesynth.errors import MusesynthError
from musesynth.evaluate.music_stats import BINS
from musesynth.evaluate.run import evaluate_checkpoint
from musesynth.generate.render import pyplot, save_png
from musesynth.generate.run import GenerateOptions, run_generate
from musesynth.generate.sampling import Sampling
from musesynth.models import FAMILIES
from musesynth.train import add_train_options, config_from_args
from musesynth.training.loop import resolve_dataset, train


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ablate", help="train GRU, LSTM and Transformer under one budget and compare them")
    add_ablate_options(p)
    p.set_defaults(func=run)


def add_ablate_options(p: argparse.ArgumentParser) -> None:
    add_train_options(p)
    a = p.add_argument_group("ablation")
    a.add_argument("--models", nargs="+", default=list(FAMILIES), help="families to compare (default: all)")
    budget = a.add_mutually_exclusive_group(required=True)
    budget.add_argument("--budget-tokens", type=int, help="each family sees this many training tokens")
    budget.add_argument("--budget-seconds", type=float, help="each family trains this many seconds")
    a.add_argument("--report", default="reports/ablation", help="report folder (default %(default)s)")
    a.add_argument("--samples", type=int, default=16, help="generated pieces per family for musical statistics")
    a.add_argument("--sample-length", type=int, default=512, help="tokens per generated piece")
    a.add_argument("--top-k", type=int, default=0, help="sampling for samples and statistics")
    a.add_argument("--temperature", type=float, default=1.0)


def run(args: argparse.Namespace) -> int:
    unknown = [m for m in args.models if m not in FAMILIES]
    if unknown:
        raise MusesynthError(f"unknown model '{unknown[0]}' (choose from: {', '.join(FAMILIES)})")
    base = config_from_args(args)
    report = Path(args.report)
    report.mkdir(parents=True, exist_ok=True)
    base.dataset = str(resolve_dataset(base, base.quiet))
    base.out_dir = str(report / "checkpoints")
    base.resume = False
    base.patience = 0  # equal budgets: no family stops early
    if args.budget_tokens:
        base.max_tokens, base.max_time, base.epochs = args.budget_tokens, 0.0, 10**6
        if not args.eval_every:  # about a dozen points on each learning curve
            base.eval_every = max(1, args.budget_tokens // (base.batch_size * base.seq_len) // 12)
    else:
        base.max_time, base.max_tokens = args.budget_seconds, 0
    sampling = Sampling(args.temperature, args.top_k)
    rows: list[dict[str, Any]] = []
    for fam in args.models:
        cfg = type(base).from_dict({**base.to_dict(), "model": fam, "run_name": fam})
        if not base.quiet:
            print(f"=== {fam}")
        t0 = time.perf_counter()
        summary = train(cfg)
        ev = evaluate_checkpoint(
            str(Path(cfg.out_dir) / fam),
            cfg.dataset,
            "test",
            device=cfg.device,
            samples=args.samples,
            length=args.sample_length,
            seed=cfg.seed,
            sampling=sampling,
        )
        rows.append({"model": fam, "summary": summary, "eval": ev, "wall_s": time.perf_counter() - t0})
        if not base.quiet:
            m = ev["model_metrics"]
            print(f"{fam}: test NLL {m['nll']:.4f}, perplexity {m['perplexity']:.2f}, accuracy {m['accuracy']:.3f}")
    samples = write_samples(rows, base, report, args, sampling)
    plot_curves(rows, report / "learning_curves.png")
    plot_music_stats(rows, report / "music_stats.png")
    command = (
        "musesynth " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        if sys.argv[0].endswith(("musesynth", "__main__.py"))
        else " ".join(shlex.quote(a) for a in sys.argv)
    )
    results = {
        "command": command,
        "budget": {"tokens": args.budget_tokens, "seconds": args.budget_seconds},
        "train_config": base.to_dict(),
        "rows": rows,
        "samples": samples,
    }
    atomic_write_json(report / "results.json", results)
    atomic_write_text(report / "report.md", markdown(results))
    if not base.quiet:
        print(f"report: {report / 'report.md'}")
    return 0


def write_samples(
    rows: list[dict[str, Any]], base: Any, report: Path, args: argparse.Namespace, sampling: Sampling
) -> dict[str, dict[str, Any]]:
    """One piece per family, primed with the opening of the first test-split piece."""
    out: dict[str, dict[str, Any]] = {}
    primer_path = first_test_file(base.dataset)
    for row in rows:
        fam = row["model"]
        ctx = row["eval"]["window"]
        opt = GenerateOptions(
            checkpoint=str(Path(base.out_dir) / fam),
            primer=str(primer_path) if primer_path else None,
            primer_tokens=min(ctx // 2, 48) if primer_path else None,
            length=args.sample_length,
            temperature=sampling.temperature,
            top_k=sampling.top_k,
            seed=base.seed,
            out_dir=str(report / "samples"),
            device=base.device,
        )
        out[fam] = run_generate(opt)[0]
    return out


def plot_curves(rows: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for row in rows:
        hist = row["summary"]["val_history"]
        ax.plot([h[1] for h in hist], [h[2] for h in hist], marker="o", markersize=3, label=row["model"])
    if rows:
        b = rows[0]["eval"]["baselines"]
        ax.axhline(b["unigram"]["nll"], color="grey", linestyle=":", label="unigram (test)")
        ax.axhline(b["bigram"]["nll"], color="black", linestyle="--", label="bigram (test)")
    ax.set_xlabel("training tokens")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title("Learning curves under one budget")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_png(fig, path)


def plot_music_stats(rows: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()
    import numpy as np

    rows = [r for r in rows if "music_stats" in r["eval"]]
    if not rows:
        return
    feats = list(BINS)
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    w = 0.8 / len(rows)
    for i, row in enumerate(rows):
        ax.bar(
            np.arange(len(feats)) + i * w,
            [row["eval"]["music_stats"][f]["distance"] for f in feats],
            w,
            label=row["model"],
        )
    ax.set_xticks(np.arange(len(feats)) + w * (len(rows) - 1) / 2, feats)
    ax.set_ylabel("1 - overlapping area (0 = same as held-out)")
    ax.set_title("Musical statistics: generated vs held-out test pieces")
    ax.legend()
    fig.tight_layout()
    save_png(fig, path)


def markdown(res: dict[str, Any]) -> str:
    rows = res["rows"]
    cfg = res["train_config"]
    vocab = load_vocab(cfg["dataset"])
    b = rows[0]["eval"]["baselines"] if rows else {}
    budget = (
        f"{res['budget']['tokens']:,} training tokens"
        if res["budget"]["tokens"]
        else f"{res['budget']['seconds']:.0f} s of training"
    )
    lines = [
        "# Ablation: GRU vs LSTM vs Transformer",
        "",
        f"Command: `{res['command']}`",
        "",
        f"Budget per family: {budget}; same data ({cfg['dataset']}, {vocab.encoding} encoding, "
        f"{len(vocab)} tokens), seed {cfg['seed']}, sequence length {cfg['seq_len']}, embedding {cfg['embed_dim']}, "
        f"batch {cfg['batch_size']}, learning rate {cfg['lr']} (warm-up {cfg['warmup_steps']} steps, cosine decay), "
        f"dropout {cfg['dropout']}.",
        "Test metrics: mean negative log-likelihood per token (nats) over every token of the test split, in fixed "
        "non-overlapping windows of the training length; perplexity = exp(NLL); accuracy = top-1 next token.",
        "Musical statistics: 1 - overlapping area between feature histograms of generated pieces (unconditioned, "
        "same token length) and held-out test pieces; 0 means identical distributions.",
        "",
        "| model | params | train time (s) | tokens/s | tokens seen | test NLL | perplexity | accuracy "
        "| music dist. (mean) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        s, m = r["summary"], r["eval"]["model_metrics"]
        md = r["eval"].get("music_stats_mean_distance")
        md_cell = f"{md:.3f}" if md is not None else "-"
        lines.append(
            f"| {r['model']} | {s['num_params']:,} | {s['elapsed_s']:.0f} | {s['tokens_per_s']:,.0f} "
            f"| {s['tokens']:,} | {m['nll']:.4f} | {m['perplexity']:.2f} | {100 * m['accuracy']:.1f}% | {md_cell} |"
        )
    for name in ("unigram", "bigram"):
        if name in b:
            lines.append(
                f"| {name} baseline | - | - | - | - | {b[name]['nll']:.4f} | {b[name]['perplexity']:.2f} | "
                f"{100 * b[name]['accuracy']:.1f}% | - |"
            )
    if rows and "music_stats" in rows[0]["eval"]:
        feats = list(rows[0]["eval"]["music_stats"])
        lines += [
            "",
            "## Musical statistics (1 - overlapping area; KL in brackets)",
            "",
            "| model | " + " | ".join(feats) + " |",
            "|---|" + "---:|" * len(feats),
        ]
        for r in rows:
            ms = r["eval"]["music_stats"]
            lines.append(
                f"| {r['model']} | " + " | ".join(f"{ms[f]['distance']:.3f} ({ms[f]['kl']:.2f})" for f in feats) + " |"
            )
    best = min(rows, key=lambda r: r["eval"]["model_metrics"]["nll"]) if rows else None
    if best:
        lines += [
            "",
            f"**Lowest test NLL: {best['model']}** ({best['eval']['model_metrics']['nll']:.4f} nats/token).",
            "",
        ]
    lines += [
        "![learning curves](learning_curves.png)",
        "",
        "![musical statistics](music_stats.png)",
        "",
        "## Samples",
        "",
    ]
    for fam, s in res["samples"].items():
        png = Path(s["png"]).name if s.get("png") else None
        lines.append(f"- {fam}: `samples/{Path(s['midi']).name}` ({s['notes']} notes, {s['seconds']} s)")
        if png:
            lines += ["", f"  ![{fam} sample](samples/{png})", ""]
    return "\n".join(lines) + "\n"
