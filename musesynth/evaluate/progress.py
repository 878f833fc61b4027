"""Progress with an ETA for `musesynth evaluate`'s long steps (scoring, generating, classifying), on stderr.

Each step prints its name when it starts and its time when it ends; steps whose work can be counted (model
calls, classifiers fitted) show a tqdm bar with the rate and the time left. Silent with ``quiet``."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from tqdm import tqdm


class Steps:
    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    @contextmanager
    def step(self, name: str, total: int | None = None, unit: str = "it") -> Iterator[Any]:
        """A bar (``.update(n)``) when ``total`` is known, else a start and an end line."""
        t0 = time.perf_counter()
        if total:
            bar = tqdm(total=total, desc=f"evaluate: {name}", unit=unit, disable=self.quiet, file=sys.stderr,
                       leave=False, dynamic_ncols=True)
            try:
                yield bar
            finally:
                bar.close()
        else:
            if not self.quiet:
                print(f"evaluate: {name} ...", file=sys.stderr, flush=True)
            yield tqdm(disable=True)
        if not self.quiet:
            print(f"evaluate: {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)


@contextmanager
def count_calls(model: torch.nn.Module, bar: Any) -> Iterator[None]:
    """Advance ``bar`` once per forward call of ``model`` (a batch when scoring, a token step when decoding)."""
    def hook(*_: Any) -> None:  # returns None: a hook's return value would replace the model's output
        bar.update(1)

    handle = model.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
