"""SIGTERM (``kill``, a closing terminal, a job scheduler) handled like Ctrl-C: Python unwinds, so every
atomic write removes its temp file and a running FluidSynth is stopped, instead of the process dying on
the spot with a hidden ``.NAME.wav.XXXX.tmp`` left behind. Training installs its own handler on top
(finish the step, save) and puts this one back when it ends."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt in this process. Forked workers inherit the handler
    but not the intent: there, SIGTERM still ends the process at once, as the pool that sends it expects."""
    owner = os.getpid()

    def handler(signum: int, frame: Any) -> None:
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (an embedding application): leave signals to it
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
