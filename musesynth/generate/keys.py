"""Which key a piece is written in, for encodings with a KEY token (``meter``): the key asked for
(``--key "D major"``; a primer is transposed to it), else the primer's own, else one drawn from the
corpus' key distribution stored in the checkpoint (so augmentation that taught the model every key
does not spread the pieces over keys the corpus never uses)."""

from __future__ import annotations

import numpy as np

from musesynth.errors import BadRequest
from musesynth.tokenize import Encoding, key_token_ids


def parse_requested_key(enc: Encoding, key: str | None) -> tuple[int, str] | None:
    if key is None:
        return None
    if key_token_ids(enc) is None:
        raise BadRequest("key", f"needs a model whose encoding has key tokens (this one is '{enc.name}'; train on "
                         f"a dataset made with `musesynth data --encoding meter`)")
    from musesynth.tokenize.meter import parse_key

    return parse_key(key)


def primer_rows(enc: Encoding, ids: np.ndarray, key: tuple[int, str] | None, prior: list[float] | None,
                num_samples: int, seed: int) -> np.ndarray:
    """(num_samples, T) primers: every row in the asked key, or (no key, no KEY in the primer) each in a
    key drawn from ``prior``; else the primer as it is, for every row."""
    ids = np.asarray(ids, np.int64)
    keyed, key_ids = enc.keyed(), key_token_ids(enc)
    if keyed is None or key_ids is None:  # parse_requested_key has refused a key for such a model
        return np.tile(ids, (num_samples, 1))
    if key is not None:
        return np.tile(keyed.set_key(ids, key[0], key[1], transpose=True), (num_samples, 1))
    if prior is None or np.isin(ids, key_ids).any():
        return np.tile(ids, (num_samples, 1))
    rng = np.random.default_rng([seed, 24])
    drawn = rng.choice(24, size=num_samples, p=np.asarray(prior) / np.sum(prior))
    return np.stack([keyed.set_key(ids, k % 12, "minor" if k >= 12 else "major") for k in drawn])
