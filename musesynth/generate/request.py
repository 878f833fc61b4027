"""What a user asks of generation, typed and checked in one place.

The CLI, the API, the studio, `evaluate` and the control benchmark each translate their inputs into a
``GenerationRequest``; ``validate`` is the one set of checks they all get. Errors are ``BadRequest``s that name
fields as the API's keywords; the CLI rewords them with its flags (``cli_flag``)."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

from musesynth.errors import BadRequest
from musesynth.generate.particles import check_particles
from musesynth.generate.ranges import parse_transpose
from musesynth.generate.sampling import Sampling

DEFAULT_LENGTH = 512  # new tokens per piece: about 12 bars of chorale with the shipped model
MAX_LENGTH = 1_000_000  # new tokens per piece: about 15 hours at the shipped model's 20 tokens/s on one core
MAX_SEED = 2**63  # seeds also seed NumPy draws (keys, composers from the corpus' shares), which take no negatives


def fresh_seed() -> int:
    """A new seed for a request that gives none: a new piece each time, recorded so it can be made again."""
    return secrets.randbelow(2**31)


@dataclass(frozen=True)
class Primer:
    """A MIDI file to continue, cut to its first ``tokens`` tokens or ``seconds`` seconds (neither: half the
    model context). ``path`` None: no primer, the piece starts from nothing."""

    path: Path | None = None
    tokens: int | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class Controls:
    """Header controls: a key (``"D major"``, keyed encodings; a primer is transposed to it), a composer the
    checkpoint's vocabulary knows and a tempo in BPM (meter encoding). None: the primer's, else drawn from the
    training corpus (key, composer) or the model's choice (tempo)."""

    key: str | None = None
    composer: str | None = None
    tempo: float | None = None


@dataclass(frozen=True)
class GenerationRequest:
    """One generation: ``num_samples`` pieces continuing ``primer`` by up to ``length`` tokens each."""

    primer: Primer = field(default_factory=Primer)
    controls: Controls = field(default_factory=Controls)
    sampling: Sampling = field(default_factory=Sampling)
    length: int = DEFAULT_LENGTH
    num_samples: int = 1
    seed: int | None = None  # None: a fresh seed (``resolved``)
    exact_repeats: bool = True  # a repeat mark copies its bar exactly (False: --free-repeats)
    use_cache: bool = True  # False: naive decoding (--no-cache)
    particles: int = 1  # parts models: SMC particles per piece, weighed by the voice rules (``generate.particles``)
    transpose: str | int = "auto"  # semitones a primer is read at, the new notes moved back (``ranges.piece_shift``)

    def validate(self) -> GenerationRequest:
        """Every check that needs no model (the encoding's are ``prompt.build_prompt``'s)."""
        whole("length", self.length, 1)
        if self.length > MAX_LENGTH:
            raise BadRequest("length", f"must be at most {MAX_LENGTH:,} tokens (got {self.length:,})")
        whole("num_samples", self.num_samples, 1)
        check_particles(self.particles)
        parse_transpose(self.transpose)
        if self.seed is not None:
            whole("seed", self.seed, 0, "must be a whole number, 0 or more")
            if self.seed >= MAX_SEED:
                raise BadRequest("seed", f"must be below 2**63 (got {self.seed})")
        p = self.primer
        if p.tokens is not None and p.seconds is not None:
            raise BadRequest("primer_seconds", "cannot be combined with {primer_tokens}: give one of them")
        for name, value in (("primer_tokens", p.tokens), ("primer_seconds", p.seconds)):
            if value is not None and p.path is None:
                raise BadRequest(name, f"cuts a primer: give one with {{primer}} (or leave {{{name}}} out)")
        if p.tokens is not None:
            whole("primer_tokens", p.tokens, 1)
        if p.seconds is not None and not (isinstance(p.seconds, (int, float)) and math.isfinite(p.seconds)
                                          and p.seconds > 0):
            raise BadRequest("primer_seconds", f"must be positive (got {p.seconds})")
        tempo = self.controls.tempo
        if tempo is not None and not (isinstance(tempo, (int, float)) and math.isfinite(tempo) and tempo > 0):
            raise BadRequest("tempo", f"must be a positive number of beats per minute (got {tempo})")
        self.sampling.validate()
        return self

    def resolved(self) -> GenerationRequest:
        """The request with its seed fixed (a fresh one when none was given), so its pieces can be made again."""
        return self if self.seed is not None else replace(self, seed=fresh_seed())


def whole(name: str, value: object, low: int, problem: str | None = None) -> None:
    """``value`` must be a whole number of at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(name, f"{problem or f'must be a whole number, {low} or more'} (got {value!r})")
    if value < low:
        raise BadRequest(name, f"{problem or f'must be at least {low}'} (got {value!r})")


def cli_flag(field_name: str) -> str:
    """How the CLI spells a request field: ``num_samples`` -> ``--num-samples``."""
    return "--" + field_name.replace("_", "-")
