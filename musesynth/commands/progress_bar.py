"""A progress bar fed a share done in [0, 1]: generation and infilling report the share of model calls made
(``run_generate(progress=...)``, the studio's bar too), so the command line shows the same."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]"


@contextmanager
def share_bar(desc: str, disable: bool = False) -> Iterator[Callable[[float], None]]:
    """The bar is cleared when it ends: a piece may stop before --length, short of 100%. It appears with the first
    progress, so a request refused before any work prints its error alone, not after an empty bar."""
    bar: tqdm | None = None

    def update(share: float) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=100, desc=desc, leave=False, bar_format=BAR_FORMAT, disable=disable)
        n = int(share * 100)
        if n > bar.n:
            bar.update(n - bar.n)

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()
