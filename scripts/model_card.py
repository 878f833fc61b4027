"""Write MODEL_CARD.md for a shipped model from its config.json and a `musesynth evaluate --json` file.

    python scripts/model_card.py musesynth/pretrained/bach --evaluation musesynth/pretrained/bach/evaluation.json
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path


def fmt(x, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def card(model_dir: Path, ev: dict, command: str, hardware: str) -> str:
    cfg = json.loads((model_dir / "config.json").read_text())
    m, t, tr = cfg["model_config"], cfg["train_config"], cfg.get("training", {})
    size = sum(f.stat().st_size for f in model_dir.glob("model.safetensors"))
    mm, b = ev["model_metrics"], ev["baselines"]
    mu = ev.get("musicality") or {}
    c, rep, rep0, keys, mem = (mu.get(k, {}) for k in ("classifier", "repetition", "repetition_held_out", "keys",
                                                        "memorisation"))
    setup = ev.get("music_stats_setup") or {}
    lines = [
        f"# Model card: {model_dir.name}", "",
        f"A {m['family']} ({cfg['num_params']:,} parameters, {m['num_layers']} layers, embedding {m['embed_dim']}, "
        f"{m['num_heads']} heads, feed-forward {m['hidden_dim']}, context {m['seq_len']} tokens) trained on the Bach "
        f"chorales that ship inside the music21 wheel (exported with `musesynth corpus --name bach`: 410 pieces, "
        f"split 0.8/0.1/0.1 by file), in the `{cfg['vocab']['encoding']}` encoding ({len(cfg['vocab']['tokens'])} "
        f"tokens: bars, positions, phrase marks, key and time signature). Weights: fp16 safetensors, "
        f"{size / 1e6:.1f} MB; loading runs no code.", "",
        "## Recipe", "",
        f"Command: `{command}` (the config is `configs/pretrained-bach.toml`).", "",
        f"Batch {t['batch_size']} x {t['seq_len']} tokens, AdamW lr {t['lr']} (warm-up {t['warmup_steps']} steps, "
        f"cosine to {t['min_lr_ratio']} of the peak, sized to the {t['max_time']:.0f} s budget), weight decay "
        f"{t['weight_decay']}, dropout {t['dropout']}, transposition augmentation +/-{t['augment_transpose']} "
        f"semitones (the key token moves with the notes), seed {t['seed']}.", "",
        f"Hardware: {hardware}. Training: {tr.get('steps', 'n/a')} steps, {fmt(tr.get('tokens'), ',')} tokens in "
        f"{fmt(tr.get('elapsed_s'), '.0f')} s ({fmt(tr.get('tokens_per_s'), ',.0f')} tokens/s); best validation NLL "
        f"{fmt(tr.get('best_val_loss'), '.4f')}.", "",
        "## Evaluation (`musesynth evaluate`, test split)", "",
        "| measure | model | reference |", "|---|---:|---:|",
        f"| test NLL (nats/token), windows of {ev['seq_len']} | {mm['nll']:.4f} | unigram {b['unigram']['nll']:.4f}, "
        f"bigram {b['bigram']['nll']:.4f} |",
        f"| perplexity / top-1 accuracy | {mm['perplexity']:.2f} / {100 * mm['accuracy']:.1f}% | |",
        f"| classifier accuracy, 8-beat windows, generated vs held-out | {fmt(c.get('accuracy'), '.3f')} | "
        f"real-vs-real control {fmt(c.get('control_accuracy'), '.3f')} |",
        f"| pieces with an internal repeat >= 8 beats | {fmt(rep.get('share_with_repeat'), '.0%')} | held-out "
        f"{fmt(rep0.get('share_with_repeat'), '.0%')} |",
        f"| mean longest internal repeat (beats) | {fmt(rep.get('mean_longest_repeat_beats'), '.1f')} | held-out "
        f"{fmt(rep0.get('mean_longest_repeat_beats'), '.1f')} |",
        f"| pieces in keys with 4+ sharps/flats | {fmt(keys.get('generated_share_4plus_accidentals'), '.0%')} | "
        f"held-out {fmt(keys.get('reference_share_4plus_accidentals'), '.0%')} |",
        f"| key distribution distance (total variation, 24 keys) | {fmt(keys.get('key_distribution_distance'), '.3f')}"
        " | 0 |",
        f"| scale consistency | {fmt(keys.get('scale_consistency_generated'), '.3f')} | held-out "
        f"{fmt(keys.get('scale_consistency_reference'), '.3f')} |",
        f"| longest run copied from a training piece, median / max (beats) | {fmt(mem.get('median_beats'), '.1f')} / "
        f"{fmt(mem.get('max_beats'), '.1f')} | held-out vs train {fmt(mem.get('held_out_median_beats'), '.1f')} / "
        f"{fmt(mem.get('held_out_max_beats'), '.1f')} |",
        f"| share of pieces with a copied run >= 16 beats | {fmt(mem.get('share_ge_16_beats'), '.0%')} | held-out "
        f"{fmt(mem.get('held_out_share_ge_16_beats'), '.0%')} |",
        "",
        f"Generated: {setup.get('generated', 'n/a')} unconditioned pieces of {setup.get('tokens_per_piece', 'n/a')} "
        f"tokens at temperature 1.0 (keys drawn from the corpus' key distribution); held-out: "
        f"{setup.get('held_out', 'n/a')} test-split pieces cut to the same length.",
        "",
        "Reproduce: `make pretrained` (about 50 minutes on 2 CPU cores).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("--evaluation", required=True)
    ap.add_argument("--command", default="make pretrained")
    ap.add_argument("--hardware", default=f"{platform.machine()} CPU, 2 cores (no GPU)")
    a = ap.parse_args()
    d = Path(a.model_dir)
    text = card(d, json.loads(Path(a.evaluation).read_text()), a.command, a.hardware)
    (d / "MODEL_CARD.md").write_text(text)
    print(f"wrote {d / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main()
