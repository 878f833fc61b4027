"""A progress bar fed a share done in [0, 1]: generation and infilling report the share of model calls made
(``run_generate(progress=...)``, the studio's bar too), so the command line shows the same."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]"


@contextmanager
def share_bar(desc: str, disable: bool = False) -> Iterator[Callable[[float], None]]:
    """The bar is cleared when it ends: a piece may stop before --length, short of 100%."""
    with tqdm(total=100, desc=desc, leave=False, bar_format=BAR_FORMAT, disable=disable) as bar:
        def update(share: float) -> None:
            n = int(share * 100)
            if n > bar.n:
                bar.update(n - bar.n)

        yield update
