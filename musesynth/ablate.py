"""`musesynth ablate`: train the model families under one equal budget (same tokens seen or same wall
time), same data, same seed; evaluate each on the test split; write a report folder:

    report.md              the table (params, train time, tokens/s, test NLL, perplexity, accuracy,
                           musical-statistics distances) next to unigram / bigram baselines
    learning_curves.png    validation loss vs training tokens, one line per family
    samples/               one generated piece per family (MIDI, WAV, piano-roll PNG, JSON)
    results.json           every figure, for scripts
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from musesynth.atomic import atomic_write_json, atomic_write_text
from musesynth.data.dataset import first_test_file, load_vocab
from musesynth.errors import MusesynthError
from musesynth.evaluate.music_stats import BINS
from musesynth.evaluate.run import EvaluateOptions, Evaluation, evaluate_checkpoint, json_safe
from musesynth.generate.run import GenerateOptions, run_generate
from musesynth.generate.sampling import Sampling
from musesynth.plotting import pyplot, save_png
from musesynth.training.config import TrainConfig
from musesynth.training.loop import train
from musesynth.training.progress import TrainSummary
from musesynth.training.setup import resolve_dataset


@dataclass
class AblationOptions:
    models: list[str]
    budget_tokens: int | None = None
    budget_seconds: float | None = None
    report: str = "reports/ablation"
    samples: int = 16
    sample_length: int = 512
    sampling: Sampling = field(default_factory=Sampling)
    command: str = ""


@dataclass
class Row:
    model: str
    summary: TrainSummary
    eval: Evaluation
    wall_s: float


def budgeted_config(base: TrainConfig, opt: AblationOptions) -> TrainConfig:
    """One config every family trains with: the same data, seed and budget, no early stop."""
    cfg = replace(base, dataset=str(resolve_dataset(base, base.quiet)), out_dir=str(Path(opt.report) / "checkpoints"),
                  resume=False, overwrite=True, patience=0)
    if opt.budget_tokens:
        cfg.max_tokens, cfg.max_time, cfg.epochs = opt.budget_tokens, 0.0, 10**6
        if not base.eval_every:  # about a dozen points on each learning curve
            cfg.eval_every = max(1, opt.budget_tokens // (cfg.batch_size * cfg.seq_len) // 12)
    else:
        cfg.max_time, cfg.max_tokens = float(opt.budget_seconds or 0), 0
    return cfg


def check_no_repeats(models: list[str]) -> None:
    """A family named twice would train twice into one run folder, the second run replacing the first."""
    twice = next((m for i, m in enumerate(models) if m in models[:i]), None)
    if twice is not None:
        raise MusesynthError(f"--models names {twice} twice; list each family once")


def run_ablation(base: TrainConfig, opt: AblationOptions) -> Path:
    check_no_repeats(opt.models)
    report = Path(opt.report)
    cfg0 = budgeted_config(base, opt)
    rows: list[Row] = []
    for fam in opt.models:
        cfg = replace(cfg0, model=fam, run_name=fam)
        if not cfg.quiet:
            print(f"=== {fam}")
        t0 = time.perf_counter()
        summary = train(cfg)
        ev = evaluate_checkpoint(EvaluateOptions(str(cfg.run_dir), cfg.dataset, "test", device=cfg.device,
                                                 samples=opt.samples, length=opt.sample_length, seed=cfg.seed,
                                                 sampling=opt.sampling))
        rows.append(Row(fam, summary, ev, time.perf_counter() - t0))
        if not cfg.quiet:
            m = ev.model_metrics
            print(f"{fam}: test NLL {m.nll:.4f}, perplexity {m.perplexity:.2f}, accuracy {m.accuracy:.3f}")
    samples = write_samples(rows, cfg0, report, opt)
    plot_curves(rows, report / "learning_curves.png")
    plot_music_stats(rows, report / "music_stats.png")
    results = {"command": opt.command, "budget": {"tokens": opt.budget_tokens, "seconds": opt.budget_seconds},
               "train_config": cfg0.to_dict(), "rows": [asdict(r) for r in rows], "samples": samples}
    atomic_write_json(report / "results.json", json_safe(results))
    atomic_write_text(report / "report.md", markdown(rows, cfg0, opt, samples))
    return report / "report.md"


def write_samples(rows: list[Row], cfg: TrainConfig, report: Path, opt: AblationOptions) -> dict[str, dict[str, Any]]:
    """One piece per family, primed with the opening of the first test-split piece."""
    out: dict[str, dict[str, Any]] = {}
    primer_path = first_test_file(cfg.dataset)
    for row in rows:
        gen = GenerateOptions(
            checkpoint=str(Path(cfg.out_dir) / row.model), primer=str(primer_path) if primer_path else None,
            primer_tokens=min(row.eval.seq_len // 2, 48) if primer_path else None, length=opt.sample_length,
            sampling=opt.sampling, seed=cfg.seed, out_dir=str(report / "samples"), device=cfg.device, overwrite=True)
        out[row.model] = run_generate(gen)[0]
    return out


def plot_curves(rows: list[Row], path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for row in rows:
        hist = row.summary.val_history
        ax.plot([h[1] for h in hist], [h[2] for h in hist], marker="o", markersize=3, label=row.model)
    if rows:
        b = rows[0].eval.baselines
        ax.axhline(b["unigram"].nll, color="grey", linestyle=":", label="unigram (test)")
        ax.axhline(b["bigram"].nll, color="black", linestyle="--", label="bigram (test)")
    ax.set_xlabel("training tokens")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title("Learning curves under one budget")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_png(fig, path)


def plot_music_stats(rows: list[Row], path: Path) -> None:
    rows = [r for r in rows if r.eval.music_stats is not None]
    if not rows:
        return
    plt = pyplot()
    feats = list(BINS)
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    w = 0.8 / len(rows)
    for i, row in enumerate(rows):
        ax.bar(np.arange(len(feats)) + i * w, [row.eval.music_stats[f]["distance"] for f in feats], w,
               label=row.model)
    ax.set_xticks(np.arange(len(feats)) + w * (len(rows) - 1) / 2, feats)
    ax.set_ylabel("1 - overlapping area (0 = same as held-out)")
    ax.set_title("Musical statistics: generated vs held-out test pieces")
    ax.legend()
    fig.tight_layout()
    save_png(fig, path)


def _header(cfg: TrainConfig, opt: AblationOptions) -> list[str]:
    vocab = load_vocab(cfg.dataset)
    budget = f"{opt.budget_tokens:,} training tokens" if opt.budget_tokens else \
        f"{opt.budget_seconds:.0f} s of training"
    return [
        "# Ablation: GRU vs LSTM vs Transformer", "", f"Command: `{opt.command}`", "",
        f"Budget per family: {budget}; same data ({cfg.dataset}, {vocab.encoding} encoding, {len(vocab)} tokens), "
        f"seed {cfg.seed}, sequence length {cfg.seq_len}, embedding {cfg.embed_dim}, batch {cfg.batch_size}, "
        f"learning rate {cfg.lr} (warm-up {cfg.warmup_steps} steps, cosine decay), dropout {cfg.dropout}.",
        "Test metrics: mean negative log-likelihood per token (nats) over every token of the test split, in fixed "
        "non-overlapping windows of the training length; perplexity = exp(NLL); accuracy = top-1 next token.",
        "Musical statistics: 1 - overlapping area between feature histograms of generated pieces (unconditioned, "
        "same token length) and held-out test pieces; 0 means identical distributions.", "",
    ]


def _main_table(rows: list[Row]) -> list[str]:
    lines = ["| model | params | train time (s) | tokens/s | tokens seen | test NLL | perplexity | accuracy "
             "| music dist. (mean) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        s, m, md = r.summary, r.eval.model_metrics, r.eval.music_stats_mean_distance
        lines.append(f"| {r.model} | {s.num_params:,} | {s.elapsed_s:.0f} | {s.tokens_per_s:,.0f} | {s.tokens:,} "
                     f"| {m.nll:.4f} | {m.perplexity:.2f} | {100 * m.accuracy:.1f}% | "
                     f"{'-' if md is None else f'{md:.3f}'} |")
    for name, b in (rows[0].eval.baselines.items() if rows else []):
        lines.append(f"| {name} baseline | - | - | - | - | {b.nll:.4f} | {b.perplexity:.2f} | "
                     f"{100 * b.accuracy:.1f}% | - |")
    return lines


def _music_table(rows: list[Row]) -> list[str]:
    rows = [r for r in rows if r.eval.music_stats is not None]
    if not rows:
        return []
    feats = list(rows[0].eval.music_stats)
    lines = ["", "## Musical statistics (1 - overlapping area; KL in brackets)", "",
             "| model | " + " | ".join(feats) + " |", "|---|" + "---:|" * len(feats)]
    for r in rows:
        ms = r.eval.music_stats
        lines.append(f"| {r.model} | " + " | ".join(f"{ms[f]['distance']:.3f} ({ms[f]['kl']:.2f})" for f in feats)
                     + " |")
    return lines


def _f(x: float | None, fmt: str) -> str:
    return "-" if x is None or x != x else format(x, fmt)


def _musicality_table(rows: list[Row]) -> list[str]:
    rows = [r for r in rows if r.eval.musicality is not None]
    if not rows:
        return []
    held = rows[0].eval.musicality
    lines = ["", "## Musicality (generated vs held-out test pieces)", "",
             "Classifier: how often a calibrated classifier tells generated 8-beat windows from held-out ones "
             "(0.5: no difference it could find with these features and this many windows; control = two halves "
             "of the held-out pieces). Repeat: share of pieces with an internal exact repeat of 8+ beats. Keys: "
             "share in keys with 4+ sharps/flats, and distance of the 24-key histograms. Copy: longest run of onsets "
             "copied from a training piece (beats).", "",
             "| model | classifier acc. | control | repeat >= 8 beats | mean longest repeat | 4+ accidentals "
             "| key dist. | scale consistency | copy median / max | copy >= 16 beats |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        c, rep, k, mem = (r.eval.musicality[x] for x in ("classifier", "repetition", "keys", "memorisation"))
        cells = [r.model, _f(c["accuracy"], ".3f"), _f(c["control_accuracy"], ".3f"),
                 _f(rep["share_with_repeat"], ".0%"), _f(rep["mean_longest_repeat_beats"], ".1f"),
                 _f(k["generated_share_4plus_accidentals"], ".0%"), _f(k["key_distribution_distance"], ".3f"),
                 _f(k["scale_consistency_generated"], ".3f"),
                 f"{_f(mem['median_beats'], '.1f')} / {_f(mem['max_beats'], '.1f')}",
                 _f(mem["share_ge_16_beats"], ".0%")]
        lines.append("| " + " | ".join(cells) + " |")
    rep0, k, mem = held["repetition_held_out"], held["keys"], held["memorisation"]
    cells = ["held-out", "-", "-", _f(rep0["share_with_repeat"], ".0%"), _f(rep0["mean_longest_repeat_beats"], ".1f"),
             _f(k["reference_share_4plus_accidentals"], ".0%"), "0", _f(k["scale_consistency_reference"], ".3f"),
             f"{_f(mem['held_out_median_beats'], '.1f')} / {_f(mem['held_out_max_beats'], '.1f')}",
             _f(mem["held_out_share_ge_16_beats"], ".0%")]
    lines.append("| " + " | ".join(cells) + " |")
    return lines


def _infill_table(rows: list[Row]) -> list[str]:
    """Both jobs of an infilling model: the span's tokens continued vs filled with the bars after it seen."""
    rows = [r for r in rows if r.eval.infill is not None]
    if not rows:
        return []
    lines = ["", "## Infilling (same span tokens, same prefix)", "",
             "| model | spans | tokens | continuation NLL | infill NLL | gain (95% interval over spans) "
             "| FILL_END NLL |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        i = r.eval.infill
        low, high = i.get("gain_95") or (None, None)
        gain = (f"{i['continuation_nll'] - i['infill_nll']:+.4f} ({_f(low, '+.4f')} to {_f(high, '+.4f')})"
                if i["tokens"] else "-")
        lines.append(f"| {r.model} | {i['spans']} | {i['tokens']:,} | {_f(i['continuation_nll'], '.4f')} "
                     f"| {_f(i['infill_nll'], '.4f')} | {gain} | {_f(i['fill_end_nll'], '.4f')} |")
    lines += ["", "A gain whose interval lies above 0 means the model uses the bars after the span."]
    return lines


def markdown(rows: list[Row], cfg: TrainConfig, opt: AblationOptions, samples: dict[str, dict[str, Any]]) -> str:
    lines = _header(cfg, opt) + _main_table(rows) + _infill_table(rows) + _musicality_table(rows) + _music_table(rows)
    if rows:
        best = min(rows, key=lambda r: r.eval.model_metrics.nll)
        lines += ["", f"**Lowest test NLL: {best.model}** ({best.eval.model_metrics.nll:.4f} nats/token).", ""]
    lines += ["![learning curves](learning_curves.png)", "", "![musical statistics](music_stats.png)", "",
              "## Samples", ""]
    for fam, s in samples.items():
        lines.append(f"- {fam}: `samples/{Path(s['midi']).name}` ({s['notes']} notes, {s['seconds']} s)")
        if s.get("png"):
            lines += ["", f"  ![{fam} sample](samples/{Path(s['png']).name})", ""]
    return "\n".join(lines) + "\n"
