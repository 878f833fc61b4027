"""One JSON reader for everything that comes from a checkpoint or a model folder: nesting is bounded
before parsing, so a damaged or hostile file is a one-line error rather than a RecursionError."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from musesynth.errors import MusesynthError

MAX_DEPTH = 32  # our files nest 4 deep; a training record at most a few more
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting of a JSON text (brackets inside strings do not count)."""
    b = np.frombuffer(_STRINGS.sub('""', text).encode("utf-8", "surrogatepass"), np.uint8)
    step = (b == ord("[")).astype(np.int32) + (b == ord("{")) - (b == ord("]")) - (b == ord("}"))
    return int(np.cumsum(step).max()) if len(step) else 0


def loads(text: str | bytes, what: str) -> Any:
    """Parse JSON with a depth limit; any fault is a ``MusesynthError`` naming ``what``."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        depth = nesting_depth(text)
        if depth > MAX_DEPTH:
            raise MusesynthError(f"{what}: JSON nested {depth} deep (more than {MAX_DEPTH}; damaged?)")
        return json.loads(text)
    except (UnicodeError, ValueError, RecursionError) as exc:
        first = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise MusesynthError(f"{what}: not valid JSON ({first})") from None
