"""Headless matplotlib for every figure the package draws (piano rolls, learning curves, reports)."""

from __future__ import annotations

from pathlib import Path

from musesynth.atomic import atomic_write


def pyplot():
    """matplotlib's pyplot on the headless Agg backend (no display on servers and CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: Path) -> None:
    """Write a figure atomically and free it."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    pyplot().close(fig)
