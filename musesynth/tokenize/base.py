"""The interface every encoding implements, plus the grammar mask used for safe sampling."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import symusic

from musesynth.errors import MidiReadError
from musesynth.tokenize.midi_io import load_score
from musesynth.tokenize.vocab import Vocabulary

# Token budget of one piece: at most TOKENS_PER_NOTE tokens per note plus TOKENS_BASE. Once silences
# are capped (midi_io.cap_silences: no stretch without a note event is longer than 64 beats), notes
# alone cannot reach it in any encoding: a note costs 2 (chord, meter) or 3 (performance) tokens plus the
# time shifts of at most two capped stretches (8 SHIFT_96 each in chord, fewer in performance), and
# real music uses 1.2 to 4 tokens per note (the 410 Bach chorales). What exceeds it is a file made
# mostly of tempo changes or other non-notes, which is no music to learn from; it is rejected with a
# reason rather than cut, so a dataset never holds part of a file. The base covers short pieces with
# a long tempo map.
TOKENS_PER_NOTE = 32
TOKENS_BASE = 4096


def check_token_budget(tokens: int, notes: int) -> None:
    """Raise ``MidiReadError`` when a piece of ``notes`` notes would take more than its token budget."""
    limit = TOKENS_PER_NOTE * notes + TOKENS_BASE
    if tokens > limit:
        raise MidiReadError(f"{tokens} tokens for {notes} notes, more than the {TOKENS_PER_NOTE} per note "
                            f"+ {TOKENS_BASE} a piece may take (mostly tempo changes or time shifts, not notes)")


@dataclass(frozen=True)
class RepeatSpec:
    """Per-token tables that let a sampler copy bars when a model writes a repeat mark: how many bars
    back it points (0: not a repeat token), how many bars it covers (0: not a run token), which token
    opens a bar, which are marks (copied passages leave them out), which tokens after a BAR are not the
    bar's content (time signature, marks), and which may follow a copied passage."""

    bars_back: np.ndarray
    run_bars: np.ndarray
    is_bar: np.ndarray
    is_mark: np.ndarray
    skip: np.ndarray
    after_copy: np.ndarray


@dataclass(frozen=True)
class KeySpec:
    """Per-token tables for key-guided sampling: the key a KEY token names (mode * 12 + tonic pitch
    class, mode 0 major / 1 minor; -1: not a key token) and the pitch class a note token sounds (-1:
    not a note)."""

    key_of: np.ndarray
    pitch_class: np.ndarray
    # tokens that open an onset, after which come its notes (the lowest is the bass); None: the encoding does not
    # say, and endings are not held to the tonic
    onset: np.ndarray | None = None
    pitch: np.ndarray | None = None  # the MIDI pitch a note token sounds (-1: not a note); needed with ``onset``


class Keyed(Protocol):
    """An encoding whose header names the piece's key (``meter``): KEY tokens, and notes that move with them."""

    token_type: np.ndarray

    def key_token_id(self, tonic_pc: int, mode: str | int) -> int: ...

    def key_of(self, ids: np.ndarray | list[int]) -> tuple[int, str] | None: ...

    def set_key(self, ids: np.ndarray | list[int], tonic: int, mode: str | int,
                transpose: bool = False) -> np.ndarray: ...

    def transpose_ids(self, ids: np.ndarray | list[int], semitones: int | np.ndarray,
                      keys: bool = True) -> np.ndarray: ...


class HeaderControls(Protocol):
    """An encoding whose header a model can be conditioned on: composer and tempo tokens (``meter``)."""

    composers: tuple[str, ...]
    tempos: np.ndarray  # the tempo bins' beats per minute, ascending
    token_type: np.ndarray
    ts0: int  # the first time-signature token (the header's tempo comes right after one)

    def composer_token_id(self, name: str) -> int: ...

    def composer_of(self, ids: np.ndarray | list[int]) -> str | None: ...

    def set_composer(self, ids: np.ndarray | list[int], name: str) -> np.ndarray: ...

    def tempo_token_id(self, bpm: float) -> int: ...

    def set_tempo(self, ids: np.ndarray | list[int], bpm: float) -> np.ndarray: ...


class BarInfill(Protocol):
    """An encoding trained to rewrite bars in the middle of a piece (``meter`` with ``infill=True``): HOLE /
    FILL / FILL_END tokens around suffix, prefix and middle, and bar tables to splice a fill back."""

    bar_id: int
    hole_id: int
    fill_id: int
    fill_end_id: int
    resolution: int
    token_type: np.ndarray
    pos_of: np.ndarray

    def bar_times(self, ids: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray]: ...

    def transpose_ids(self, ids: np.ndarray | list[int], semitones: int | np.ndarray,
                      keys: bool = True) -> np.ndarray: ...

    def decode_quantized(self, ids: np.ndarray | list[int]) -> dict[str, Any]: ...

    def score_of(self, q: dict[str, Any]) -> symusic.Score: ...


class Parts(Protocol):
    """An encoding whose notes keep their part (``parts``): the part of every token (-1: not a note), the header's
    parts, the NOTE id of a pitch in a part, the grid form (``quantize`` / ``encode_quantized`` /
    ``decode_quantized``) that harmonize lays a melody into, and the token tables its constrained sampler
    writes with."""

    max_parts: int
    drop_extra: bool  # parts beyond max_parts dropped (else joined to the last)
    part_of: np.ndarray
    token_type: np.ndarray
    pos_of: np.ndarray  # the grid step a POS token names
    dur_of: np.ndarray  # the grid steps a DUR token holds
    bar_id: int
    dur0: int  # the first DUR token
    pos0: int  # the first POS token
    resolution: int
    max_dur: int
    max_bar: int

    @property
    def eos_id(self) -> int: ...

    def bar_times(self, ids: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray]: ...

    def key_of(self, ids: np.ndarray | list[int]) -> tuple[int, str] | None: ...

    def score_of(self, q: dict[str, Any]) -> symusic.Score: ...

    def parts_of(self, ids: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray]: ...

    def note_token_id(self, pitch: np.ndarray | int, part: np.ndarray | int) -> np.ndarray: ...

    def part_rank(self, part: np.ndarray | int) -> np.ndarray: ...

    def note_order(self, onset: np.ndarray, part: np.ndarray, pitch: np.ndarray) -> np.ndarray: ...

    def quantize(self, score: symusic.Score) -> dict[str, np.ndarray]: ...

    def encode_quantized(self, q: dict[str, np.ndarray]) -> np.ndarray: ...

    def decode_quantized(self, ids: np.ndarray | list[int]) -> dict[str, Any]: ...

    def set_key(self, ids: np.ndarray | list[int], tonic: int, mode: str | int,
                transpose: bool = False) -> np.ndarray: ...


class Encoding(ABC):
    """MIDI <-> integer ids. Sequences produced by ``encode`` start with BOS and end with EOS."""

    name: str
    vocab: Vocabulary

    @property
    def pad_id(self) -> int:
        return self.vocab.id(self.special["PAD"])

    @property
    def bos_id(self) -> int:
        return self.vocab.id(self.special["BOS"])

    @property
    def eos_id(self) -> int:
        return self.vocab.id(self.special["EOS"])

    special: dict[str, str]
    # decode writes the time signatures it read (else a generated piece takes its primer's meter)
    writes_meter: bool = False

    # Capabilities: each is the encoding itself, typed as what it can do, or None when it cannot; callers ask
    # here instead of probing for attributes.
    def keyed(self) -> Keyed | None:
        return None

    def header_controls(self) -> HeaderControls | None:
        return None

    def bar_infill(self) -> BarInfill | None:
        return None

    def parts(self) -> Parts | None:
        return None

    @abstractmethod
    def encode(self, score: symusic.Score) -> np.ndarray:
        """Token ids (int64) of a tick-timed score, BOS ... EOS."""

    @abstractmethod
    def decode(self, ids: np.ndarray | list[int]) -> symusic.Score:
        """A playable score; invalid or special tokens are skipped, decoding stops at EOS."""

    @abstractmethod
    def grammar(self) -> np.ndarray:
        """Bool matrix ``allowed[prev, next]`` (V x V): which token may follow which."""

    @abstractmethod
    def transpose_table(self, semitones: int) -> np.ndarray:
        """Id -> id map that transposes every pitch token; -1 where the result leaves the range."""

    @abstractmethod
    def tempo_table(self, steps: int) -> np.ndarray:
        """Id -> id map that moves every tempo token by ``steps`` bins (clipped to the range)."""

    def end_beats(self, ids: np.ndarray | list[int]) -> float:
        """Where (in beats) a token prefix ends; used to mark the primer on the piano roll."""
        score = self.decode(ids)
        ends = [t.notes.numpy()["time"].max() for t in score.tracks if len(t.notes)]
        return float(max(ends)) / score.ticks_per_quarter if ends else 0.0

    def header_info(self, ids: np.ndarray | list[int]) -> dict[str, Any]:
        """What a piece's header says (composer, key, meter, tempo) for the dataset manifest; {} without one."""
        return {}

    def repeat_spec(self) -> RepeatSpec | None:
        """Tables for exact bar repeats at sampling time; None for encodings without repeat tokens."""
        return None

    def key_spec(self) -> KeySpec | None:
        """Tables for key-guided sampling; None for encodings without a key token."""
        return None

    def encode_file(self, path: str | Path) -> np.ndarray:
        return self.encode(load_score(path))

    def __len__(self) -> int:
        return len(self.vocab)


def transition_matrix(token_type: np.ndarray, allowed_types: dict[int, list[int]], n_types: int) -> np.ndarray:
    """Expand a type->types table to a token x token bool matrix."""
    type_ok = np.zeros((n_types, n_types), bool)
    for prev, nxt in allowed_types.items():
        type_ok[prev, nxt] = True
    return type_ok[token_type][:, token_type]
