"""Ctrl-C / SIGTERM during training: the first finishes the step and saves a resumable checkpoint."""

from __future__ import annotations

import signal
from typing import Any


class Interrupt:
    """First signal: set ``hit`` (the loop saves and stops); a second one raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.hit = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> Interrupt:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread
                pass
        return self

    def _handler(self, *_: Any) -> None:
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *_: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
