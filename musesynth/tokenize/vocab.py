"""A vocabulary: the token strings of an encoding, in id order, saved as JSON with its parameters.

It travels next to every dataset and inside every checkpoint, so a model always decodes with the
vocabulary it was trained with.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Vocabulary:
    encoding: str
    params: dict[str, Any]
    tokens: tuple[str, ...]
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({t: i for i, t in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        return self._index[token]

    def to_dict(self) -> dict[str, Any]:
        return {"encoding": self.encoding, "params": self.params, "tokens": list(self.tokens)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Vocabulary:
        return cls(d["encoding"], dict(d["params"]), tuple(d["tokens"]))

    @property
    def fingerprint(self) -> str:
        """Short hash that tells two vocabularies apart (shown in errors)."""
        return hashlib.sha1(self.to_json().encode()).hexdigest()[:12]
