"""`evaluate --seeds 0,1,2`: the same evaluation drawn with several sampling seeds, and the spread of what varies.

Why: which pieces a model draws moves the classifier by a few points (3-5 for the shipped models), as much as many
changes one would like to claim, so a figure without its spread over seeds is not one to trust. Everything but the
drawn pieces (the likelihood, the held-out and reference sets) is the same for every seed."""

from __future__ import annotations

import statistics
from typing import Any

from musesynth.evaluate.run import Evaluation

SETS = (("generated", "the model's pieces"), ("reference_set", "reference set"))


def seed_summary(runs: list[tuple[int, Evaluation]]) -> dict[str, Any]:
    """Per window length and set: the classifier's accuracy for each seed, their mean, lowest and highest; and the
    model's lead over the reference set (positive: the model is told from held-out music more often)."""
    out: dict[str, Any] = {"seeds": [s for s, _ in runs], "classifier": {}}
    first = runs[0][1].musicality
    if first is None:
        return out
    for w in first["classifier"]["by_window"]:
        row: dict[str, Any] = {}
        for key, _ in SETS:
            per = [r.musicality["classifier"]["by_window"][w]["sets"].get(key, {}).get("accuracy") for _, r in runs]
            if any(a is None for a in per):
                continue
            row[key] = {"per_seed": per, "mean": statistics.fmean(per), "min": min(per), "max": max(per)}
        if len(row) == 2:
            gaps = [g - r for g, r in zip(row["generated"]["per_seed"], row["reference_set"]["per_seed"])]
            row["model_minus_reference"] = {"per_seed": gaps, "mean": statistics.fmean(gaps)}
        out["classifier"][w] = row
    return out


def format_seed_summary(summary: dict[str, Any]) -> list[str]:
    seeds = ", ".join(map(str, summary["seeds"]))
    lines = [f"over seeds {seeds}: how often the classifier tells each set from held-out music "
             f"(mean, lowest-highest: each seed)"]
    pct = lambda a: f"{100 * a:.1f}"  # noqa: E731
    for w, row in summary["classifier"].items():
        lines.append(f"  {w}-beat windows:")
        for key, label in SETS:
            if key in row:
                v = row[key]
                lines.append(f"    {label:20s}{pct(v['mean']):>6s}%  ({pct(v['min'])}-{pct(v['max'])}: "
                             f"{', '.join(pct(a) for a in v['per_seed'])})")
        if "model_minus_reference" in row:
            g = row["model_minus_reference"]
            lines.append(f"    model minus reference {100 * g['mean']:+.1f} points "
                         f"({', '.join(f'{100 * x:+.1f}' for x in g['per_seed'])})")
    if not summary["classifier"]:
        lines.append("  (no generated pieces: nothing here depends on the seed)")
    return lines
