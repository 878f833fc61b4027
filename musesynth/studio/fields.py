"""Which control of the page an error is about, so the page shows it beside that control (not under a button
far below). Errors that name no field go beside the Generate button."""

from __future__ import annotations

import re

# (pattern on the message's start, the request field it is about); the first match wins
_FIELDS = [
    (r"(--)?(length|new tokens)\b", "length"), (r"(--)?temperature", "temperature"), (r"(--)?seed", "seed"),
    (r"(--)?top[-_ ]k", "top_k"), (r"(--)?top[-_ ]p", "top_p"), (r"(--)?repeat[-_ ]bias", "repeat_bias"),
    (r"(--)?key[-_ ]strength", "key_strength"), (r"(--)?ending", "ending"), (r"(--)?particles", "particles"),
    (r"(--)?primer[-_ ]seconds", "primer_seconds"), (r"(that )?primer|rewriting bars needs|unknown corpus", "primer"),
    (r"unknown key|key\b|--key", "key"), (r"unknown composer|composer|--composer", "composer"),
    (r"unknown tempo|tempo|--tempo", "tempo"), (r"bars |bars first|rewrite:", "bars_first"),
    (r"bars last", "bars_last"), (r"mode\b", "mode"), (r"unknown model|\S+ was not trained for infilling", "model"),
]
FIELDS = frozenset(f for _, f in _FIELDS)


def field_of(message: str, field: str | None = None) -> str | None:
    """The request field an error message is about (``field`` when the raiser knew it), else None."""
    if field is not None:
        return field
    text = message.strip().lower()
    for pattern, name in _FIELDS:
        if re.match(pattern, text):
            return name
    return None
