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


NAMES = {"lstm": "An LSTM", "gru": "A GRU", "transformer": "A Transformer"}
CLASSIFIER_NOTE = (
    "The classifier (`musesynth/evaluate/judge.py`) is scikit-learn's boosted trees and a logistic regression "
    "voting on key-relative features of each window (pitch classes in the window's key, outer-voice motion, "
    "parallel fifths and octaves, the leading tone, dissonance and its treatment, long notes, texture, rhythm), "
    "cross-validated with every piece in one fold, each set subsampled to the same number of windows. 50% means "
    "it found nothing that tells the set from held-out Bach with these features and this many windows, not that "
    "listeners could not; the controls show what it can hear. The JS Fake Chorales (Peracha 2021, CC BY 4.0), "
    "scored by the same classifier (`--reference-set`), are a human-judged reference: listeners called them "
    "machine-made 57.3% of the time (8,096 answers).")


def budget(t: dict) -> str:
    if t.get("max_steps"):
        return f"the {t['max_steps']}-step budget"
    if t.get("max_tokens"):
        return f"the {t['max_tokens']:,}-token budget"
    if t.get("max_time"):
        return f"the {t['max_time']:.0f} s budget"
    return f"{t['epochs']} epochs"


def frames(t: dict) -> str:
    n = int(t.get("key_relative") or 0)
    if not n:
        return ""
    where = {1: "C", 2: "the nearer of C and F#"}.get(n, f"the nearest of {n} tonics")
    return (f" Key-relative (`--key-relative {n}`): every piece is learnt moved to {where}, its own key written "
            "beside the frame key in the header; generation moves each piece back to the key asked for.")


def _spread(values: list[float]) -> str:
    """'71.2%' for one figure, '71.2% (70.1-72.0% over 3 seeds)' for several."""
    v = [x for x in values if x is not None]
    if not v:
        return "n/a"
    if len(v) == 1:
        return f"{100 * v[0]:.1f}%"
    return f"{100 * sum(v) / len(v):.1f}% ({100 * min(v):.1f}-{100 * max(v):.1f}% over {len(v)} seeds)"


def classifier_rows(evs: list[dict]) -> list[str]:
    """One row per window length: the model, the reference set (the JS Fake Chorales) and the three controls,
    as the mean and range over the evaluations given (one per sampling seed)."""
    judged = [((e.get("musicality") or {}).get("classifier") or {}).get("by_window") or {} for e in evs]
    rows = []
    for wb in judged[0]:
        per = [j[wb] for j in judged if wb in j]
        gen = _spread([p["sets"]["generated"]["accuracy"] for p in per])
        ref = ([p["sets"]["reference_set"]["accuracy"] for p in per if "reference_set" in p["sets"]])
        c = [p["controls"] for p in per]
        ok = all(p["calibrated"] for p in per)
        folder = (evs[0].get("reference_set") or {}).get("folder") or ""
        name = "JS Fake Chorales" if "js-fakes" in folder else "reference set"
        rows.append(
            f"| classifier, {wb}-beat windows ({per[0]['windows_per_set']} per set): how often it tells the set from "
            f"held-out Bach | {gen} | {name} {_spread(ref)}; controls: real vs real "
            f"{_spread([x['real_vs_real']['accuracy'] for x in c])}, 5% of notes a semitone off "
            f"{_spread([x['semitone_5pct']['accuracy'] for x in c])}, pitches shuffled "
            f"{_spread([x['pitch_shuffled']['accuracy'] for x in c])}{'' if ok else ' (a control FAILED)'} |")
    return rows


def harmonization_rows(h: dict) -> list[str]:
    """The harmonisation benchmark (benchmarks/harmonize.py --json) as a table beside Bach."""
    n, hz, vl = h["nll"], h["harmonizations"], h["voice_leading"]
    g, b = vl["generated"], vl["held_out"]
    u = h.get("unconditioned_voice_leading") or {}
    rows = [
        "", f"## Harmonisation (`benchmarks/harmonize.py`: the {h['chorales']} {'+'.join(h.get('splits', ['test']))}"
        f"-split sopranos, {h['seeds']} seed(s) each, {h.get('particles', 1)} particle(s) each"
        f"{', temperature {:g}'.format(h['sampling']['temperature']) if 'sampling' in h else ''}, beside Bach's own "
        "harmonisations; the model's own pieces at generate's defaults)", "",
        "| measure | harmonisations | Bach | the model's own pieces |", "|---|---:|---:|---:|",
        f"| NLL of Bach's alto, tenor and bass given the soprano (nats per A/T/B token / per 16th) | "
        f"{n['per_token_melody_first']:.3f} / {n['per_16th_melody_first']:.3f} | | read left to right: "
        f"{n['per_token_left_to_right']:.3f} / {n['per_16th_left_to_right']:.3f} |",
        f"| melody notes kept exactly | {hz['melody_exact']}/{hz['melody_notes']} | | |",
        f"| beats with Bach's pitch-class set | {hz['beat_pitch_class_match']:.1%} | 100% | |",
        f"| parallel fifths and octaves per 100 chord changes | {g['parallels_per_100']:.2f} | "
        f"{b['parallels_per_100']:.2f} | {fmt(u.get('parallels_per_100'), '.2f')} |",
        f"| onsets with crossed voices | {g['crossings']:.1%} | {b['crossings']:.1%} | "
        f"{fmt(u.get('crossings'), '.1%')} |",
        f"| notes outside the SATB ranges | {g['out_of_range']:.1%} | {b['out_of_range']:.1%} | "
        f"{fmt(u.get('out_of_range'), '.1%')} |",
        f"| time with more than four notes sounding | {g['over_four']:.2%} | {b['over_four']:.2%} | "
        f"{fmt(u.get('over_four'), '.2%')} |",
        f"| notes of 2 beats or more | {hz['long_notes']:.1%} | {h['bach']['long_notes']:.1%} | "
        f"{fmt((h.get('unconditioned') or {}).get('long_notes'), '.1%')} |",
    ]
    for wb, rep in h.get("classifier", {}).items():
        sets = rep["sets"]
        rows.append(f"| classifier vs Bach, {wb}-beat windows ({rep['windows_per_set']} per set) | "
                    f"{100 * sets['harmonizations']['accuracy']:.1f}% | 50% | "
                    + (f"{100 * sets['unconditioned']['accuracy']:.1f}%" if "unconditioned" in sets else "") + " |")
    return rows


def card(model_dir: Path, ev: dict, command: str, hardware: str, notes: str = "",
         more: list[dict] | None = None, config: str = "configs/pretrained-bach.toml",
         harmonization: dict | None = None) -> str:
    cfg = json.loads((model_dir / "config.json").read_text())
    m, t, tr = cfg["model_config"], cfg["train_config"], cfg.get("training", {})
    size = sum(f.stat().st_size for f in model_dir.glob("model.safetensors"))
    mm, b = ev["model_metrics"], ev["baselines"]
    mu = ev.get("musicality") or {}
    c, rep, rep0, keys, mem = (mu.get(k, {}) for k in ("classifier", "repetition", "repetition_held_out", "keys",
                                                        "memorisation"))
    km, km0 = keys.get("key_match") or {}, keys.get("key_match_held_out") or {}
    end, end0 = mu.get("endings") or {}, mu.get("endings_held_out") or {}
    setup = ev.get("music_stats_setup") or {}
    if m["family"] == "transformer":
        arch = (f"{m['num_layers']} layers, embedding {m['embed_dim']}, {m['num_heads']} heads, feed-forward "
                f"{m['hidden_dim']}, context {m['seq_len']} tokens")
    else:
        arch = (f"{m['num_layers']} layers, embedding {m['embed_dim']}, hidden {m['hidden_dim']}, trained on "
                f"{m['seq_len']}-token windows; its state carries the whole piece when it writes")
    tokens = cfg["vocab"]["tokens"]
    marks = "bars, positions, phrase marks, key, time signature" + (
        " and repeat marks" if any(t.startswith("REPEAT_") for t in tokens) else "")
    lines = [
        f"# Model card: {model_dir.name}", "",
        f"{NAMES.get(m['family'], 'A ' + m['family'])} ({cfg['num_params']:,} parameters, {arch}) trained on the Bach "
        f"chorales that ship inside the music21 wheel (exported with `musesynth corpus --name bach`: 410 pieces, "
        f"split 0.8/0.1/0.1 by file), in the `{cfg['vocab']['encoding']}` encoding ({len(tokens)} "
        f"tokens: {marks}). Weights: fp16 safetensors, {size / 1e6:.1f} MB; loading runs no code.", "",
        "## Recipe", "",
        f"Command: `{command}` (the config is `{config}`).", "",
        f"Batch {t['batch_size']} x {t['seq_len']} tokens, AdamW lr {t['lr']} (warm-up {t['warmup_steps']} steps, "
        f"cosine to {t['min_lr_ratio']} of the peak, sized to {budget(t)}), weight decay "
        f"{t['weight_decay']}, dropout {t['dropout']}, transposition augmentation +/-{t['augment_transpose']} "
        f"semitones (the key token moves with the notes), seed {t['seed']}.{frames(t)}", "",
        f"Hardware: {hardware}. Training: {tr.get('steps', 'n/a')} steps, {fmt(tr.get('tokens'), ',')} tokens in "
        f"{fmt(tr.get('elapsed_s'), '.0f')} s ({fmt(tr.get('tokens_per_s'), ',.0f')} tokens/s); best validation NLL "
        f"{fmt(tr.get('best_val_loss'), '.4f')}.", "",
        "## Evaluation (`musesynth evaluate`, test split)", "",
        "| measure | model | reference |", "|---|---:|---:|",
        f"| test NLL (nats/token), windows of {ev['seq_len']} | {mm['nll']:.4f} | unigram {b['unigram']['nll']:.4f}, "
        f"bigram {b['bigram']['nll']:.4f} |",
        f"| perplexity / top-1 accuracy | {mm['perplexity']:.2f} / {100 * mm['accuracy']:.1f}% | |",
        *(classifier_rows([ev, *(more or [])]) if c.get("by_window") else [
            f"| classifier accuracy, 8-beat windows, generated vs held-out | {fmt(c.get('accuracy'), '.3f')} | "
            f"real-vs-real control {fmt(c.get('control_accuracy'), '.3f')} |"]),
        f"| pieces with an internal repeat >= 8 beats | {fmt(rep.get('share_with_repeat'), '.0%')} | held-out "
        f"{fmt(rep0.get('share_with_repeat'), '.0%')} |",
        f"| mean longest internal repeat (beats) | {fmt(rep.get('mean_longest_repeat_beats'), '.1f')} | held-out "
        f"{fmt(rep0.get('mean_longest_repeat_beats'), '.1f')} |",
        f"| pieces in keys with 4+ sharps/flats | {fmt(keys.get('generated_share_4plus_accidentals'), '.0%')} | "
        f"held-out {fmt(keys.get('reference_share_4plus_accidentals'), '.0%')} |",
        f"| pieces in the key asked for (Krumhansl-Schmuckler estimate / with the final bass) | "
        f"{fmt(km.get('match'), '.0%')} / {fmt(km.get('match_cadence'), '.0%')} | held-out in their own key "
        f"{fmt(km0.get('match'), '.0%')} / {fmt(km0.get('match_cadence'), '.0%')} |",
        f"| pieces that end before the limit / close on the tonic's bass / on a full chord | "
        f"{fmt(end.get('ended'), '.0%')} / {fmt(end.get('tonic_close'), '.0%')} / {fmt(end.get('full_close'), '.0%')}"
        f" | held-out whole pieces 100% / {fmt(end0.get('tonic_close'), '.0%')} / "
        f"{fmt(end0.get('full_close'), '.0%')} |",
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
        "tokens at temperature 1.0 and the default repeat bias and key strength (keys drawn from the corpus' key "
        "distribution); "
        "held-out: "
        f"{setup.get('held_out', 'n/a')} test-split pieces cut to the same length.",
        *(["", CLASSIFIER_NOTE] if c.get("by_window") else []),
        "",
        f"Reproduce: `make pretrained` (training took {fmt((tr.get('elapsed_s') or 0) / 60, '.0f')} minutes here; "
        "then export, evaluation and this card).",
    ]
    if harmonization:
        lines += harmonization_rows(harmonization)
    if notes:
        lines += ["", notes.strip()]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("--evaluation", required=True)
    ap.add_argument("--more-evaluations", nargs="*", default=[], help="evaluations of other sampling seeds: the "
                    "classifier rows show the mean and range over all")
    ap.add_argument("--command", default="make pretrained")
    ap.add_argument("--hardware", default=f"{platform.machine()} CPU, 2 cores (no GPU)")
    ap.add_argument("--notes", help="a Markdown file appended to the card (what the figures do not say)")
    ap.add_argument("--harmonization", help="benchmarks/harmonize.py --json output: a harmonisation table")
    ap.add_argument("--config", help="the recipe (default: the config the training record names)")
    a = ap.parse_args()
    d = Path(a.model_dir)
    notes = Path(a.notes).read_text() if a.notes else ""
    more = [json.loads(Path(p).read_text()) for p in a.more_evaluations]
    cfg = json.loads((d / "config.json").read_text())
    config = a.config or ("configs/pretrained-parts.toml" if cfg["vocab"]["encoding"] == "parts"
                          else "configs/pretrained-bach.toml")
    harm = json.loads(Path(a.harmonization).read_text()) if a.harmonization else None
    text = card(d, json.loads(Path(a.evaluation).read_text()), a.command, a.hardware, notes, more, config, harm)
    (d / "MODEL_CARD.md").write_text(text)
    print(f"wrote {d / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main()
