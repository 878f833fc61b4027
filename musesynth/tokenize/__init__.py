"""Encodings: MIDI <-> token ids, selectable by name, rebuilt from a saved vocabulary."""

from __future__ import annotations

from typing import Any

import numpy as np

from musesynth.errors import MusesynthError
from musesynth.tokenize.base import Encoding
from musesynth.tokenize.chord import ChordEncoding
from musesynth.tokenize.meter import MeterEncoding
from musesynth.tokenize.parts import PartsEncoding
from musesynth.tokenize.performance import PerformanceEncoding
from musesynth.tokenize.vocab import Vocabulary

ENCODINGS: dict[str, type[Encoding]] = {"chord": ChordEncoding, "performance": PerformanceEncoding}
ENCODINGS["meter"] = MeterEncoding
ENCODINGS["parts"] = PartsEncoding


def get_encoding(name: str = "chord", **params: Any) -> Encoding:
    if name not in ENCODINGS:
        raise MusesynthError(f"unknown encoding '{name}' (choose from: {', '.join(ENCODINGS)})")
    return ENCODINGS[name](**params)


def key_token_ids(enc: Encoding) -> np.ndarray | None:
    """Ids of the 24 KEY tokens (C major .. B major, C minor .. B minor) of an encoding that has them."""
    keyed = enc.keyed()
    if keyed is None:
        return None
    return np.array([keyed.key_token_id(k % 12, k // 12) for k in range(24)])


def encoding_from_vocab(vocab: Vocabulary | dict[str, Any]) -> Encoding:
    """Rebuild the exact encoding a dataset or checkpoint was made with, and check it matches."""
    if isinstance(vocab, dict):
        vocab = Vocabulary.from_dict(vocab)
    cls = ENCODINGS.get(vocab.encoding)
    legacy = {k: v for k, v in getattr(cls, "LEGACY_DEFAULTS", {}).items() if k not in vocab.params}
    enc = get_encoding(vocab.encoding, **{**legacy, **vocab.params})
    if enc.vocab.tokens != vocab.tokens:
        raise MusesynthError(
            f"saved vocabulary ({vocab.encoding}, {len(vocab)} tokens) does not match what this version "
            f"of musesynth builds from its parameters ({len(enc.vocab)} tokens)"
        )
    return enc


__all__ = ["Encoding", "Vocabulary", "get_encoding", "encoding_from_vocab", "key_token_ids", "ENCODINGS"]
