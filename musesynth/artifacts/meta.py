"""What a checkpoint or a shipped model says about itself besides tensors, stored as JSON, and checked
field by field when read: a damaged value is a one-line error naming the file and the field."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from musesynth.artifacts.jsonsafe import loads
from musesynth.artifacts.progress import Progress
from musesynth.data.key_frame import frame_tonics
from musesynth.errors import MusesynthError
from musesynth.models import ModelConfig
from musesynth.tokenize import Encoding, Vocabulary, key_token_ids


@dataclass
class CheckpointMeta:
    """What a checkpoint says about itself besides tensors (stored as JSON inside the file)."""

    model_config: ModelConfig
    vocab: Vocabulary
    train_config: dict[str, Any] = field(default_factory=dict)
    dataset: str = ""
    num_params: int = 0
    world_size: int = 1
    progress: Progress = field(default_factory=Progress)
    key_prior: list[float] | None = None  # share of each KEY token in the training data (keyed encodings)
    composer_prior: list[float] | None = None  # share of each COMPOSER token in the training data
    path: str = ""  # where it was loaded from (not stored)
    weights_sha256: str = ""  # of the weights as saved ("" in files written before musesynth stored it)
    state_sha256: str = ""  # of the optimizer, schedule and RNG states (what --resume continues from)

    @property
    def family(self) -> str:
        return self.model_config.family

    @property
    def key_frames(self) -> tuple[int, ...]:
        """The frame tonics a key-relative model reads pieces on (``train --key-relative N``, ``data.key_frame``);
        () for a model of written keys."""
        return frame_tonics(int(self.train_config.get("key_relative", 0)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_config": self.model_config.to_dict(), "vocab": self.vocab.to_dict(),
            "vocab_fingerprint": self.vocab.fingerprint, "train_config": self.train_config,
            "dataset": self.dataset, "num_params": self.num_params, "world_size": self.world_size,
            "progress": self.progress.to_dict(), "key_prior": self.key_prior,
            "composer_prior": self.composer_prior,
        }

    def to_json(self, weights_sha256: str = "", state_sha256: str = "") -> str:
        digests = {"weights_sha256": weights_sha256, "state_sha256": state_sha256}
        return json.dumps({**self.to_dict(), **{k: v for k, v in digests.items() if v}})

    @classmethod
    def from_json(cls, text: str, path: str) -> CheckpointMeta:
        return cls.from_dict(loads(text, f"damaged checkpoint {path}: bad metadata"), path)

    @classmethod
    def from_dict(cls, d: Any, path: str) -> CheckpointMeta:
        """Build and check the metadata; any fault is one line naming ``path``."""
        try:
            if not isinstance(d, dict):
                raise ValueError(f"metadata is a {type(d).__name__}, not an object")
            vocab = _vocab(d.get("vocab"))
            mcfg = ModelConfig.from_dict(d["model_config"])
            if mcfg.vocab_size != len(vocab):
                raise ValueError(f"model_config says {mcfg.vocab_size} tokens, the vocabulary has {len(vocab)}")
            if "vocab_fingerprint" in d and d["vocab_fingerprint"] != vocab.fingerprint:
                raise ValueError("the vocabulary does not match its recorded fingerprint")
            train_config = d.get("train_config", {})
            if not isinstance(train_config, dict):
                raise ValueError("train_config is not an object")
            digest, state_digest = d.get("weights_sha256", ""), d.get("state_sha256", "")
            if not all(isinstance(x, str) and len(x) in (0, 64) for x in (digest, state_digest)):
                raise ValueError("weights_sha256/state_sha256 is not a SHA-256")
            meta = cls(
                model_config=mcfg, vocab=vocab, train_config=train_config, dataset=str(d.get("dataset", "")),
                num_params=_count(d.get("num_params", 0)), world_size=_count(d.get("world_size", 1)),
                progress=Progress.from_dict(d.get("progress", {})), key_prior=_shares(d.get("key_prior"), "key_prior"),
                composer_prior=_shares(d.get("composer_prior"), "composer_prior"), path=path, weights_sha256=digest,
                state_sha256=state_digest,
            )
            frames = train_config.get("key_relative", 0)
            if not isinstance(frames, int) or isinstance(frames, bool) or not 0 <= frames <= 12:
                raise ValueError(f"train_config key_relative is {frames!r}, not 0..12 frames")
            return meta
        except MusesynthError as exc:
            raise MusesynthError(f"damaged checkpoint {path}: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise MusesynthError(f"damaged checkpoint {path}: bad metadata ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None

    def check_encoding(self, enc: Encoding) -> None:
        """The priors have one share per KEY/COMPOSER token of the encoding the model was trained with."""
        keys = key_token_ids(enc)
        ctl = enc.header_controls()
        composers = 0 if ctl is None else len(ctl.composers)
        for name, prior, n in (("key_prior", self.key_prior, 0 if keys is None else len(keys)),
                               ("composer_prior", self.composer_prior, composers)):
            if prior is not None and len(prior) != n:
                raise MusesynthError(f"damaged checkpoint {self.path}: {name} has {len(prior)} shares, the "
                                     f"{enc.vocab.encoding} encoding has {n} such tokens")


def _vocab(d: Any) -> Vocabulary:
    if not isinstance(d, dict) or not isinstance(d.get("encoding"), str) or not isinstance(d.get("params"), dict):
        raise ValueError("vocab is not an object with encoding, params and tokens")
    tokens = d.get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens) or len(set(tokens)) != len(tokens):
        raise ValueError("vocab tokens are not a list of distinct strings")
    return Vocabulary.from_dict(d)


def _count(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ValueError(f"{v!r} is not a count")
    return v


def _shares(v: Any, name: str) -> list[float] | None:
    """A prior: None, or finite non-negative shares that sum to about 1."""
    if v is None:
        return None
    if (not isinstance(v, list) or not v or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                     and math.isfinite(x) and x >= 0 for x in v)
            or abs(sum(v) - 1) > 1e-3):
        raise ValueError(f"{name} is not a list of shares summing to 1")
    return [float(x) for x in v]
