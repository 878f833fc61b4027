"""The Python API: the same pipeline as the CLI, for notebooks and scripts.

    from musesynth import load_model, generate
    model = load_model()                         # the shipped Bach model (or a run folder / checkpoint)
    pieces = generate(model, length=600, key="D major", num_samples=2, seed=1)
    pieces[0].save("chorale.mid")                # a symusic.Score is in pieces[0].score
    tokens = tokenize("chorale.mid", "meter")    # token ids in a named encoding
    satb = harmonize("tune.mid", voices="A,T,B", seed=1)   # the shipped parts model writes the other voices
    new = infill("chorale.mid", bars="5-8", parts="A,T")   # those voices rewritten there, every other note kept
    summary = train(dataset="datasets/bach", model="lstm", max_time=600)   # any `musesynth train` option

Errors are ``MusesynthError``s that name the keyword argument at fault.
"""

from __future__ import annotations

import inspect
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import symusic

from musesynth.errors import MusesynthError
from musesynth.generate.harmonize import DEFAULT_PARTICLES, Harmonization
from musesynth.generate.infill import Infilling
from musesynth.generate.model import Model
from musesynth.generate.pipeline import GeneratedPiece, generate_pieces
from musesynth.generate.request import DEFAULT_LENGTH, Controls, GenerationRequest, Primer
from musesynth.generate.sampling import Sampling
from musesynth.tokenize import get_encoding
from musesynth.tokenize.midi_io import load_score

Piece = GeneratedPiece  # the API's name for a generated piece: tokens, score, info, save()
DEFAULT_SEED = 0  # the API's pieces are reproducible by default (the CLI draws a fresh seed instead)


def load_model(path: str | Path | None = None, device: str = "auto") -> Model:
    """A run folder, checkpoint file or shipped model folder; None: the model shipped in the package."""
    return Model.load(path, device)


def generate(model: Model | None = None, primer: str | Path | None = None, length: int = DEFAULT_LENGTH, *,
             primer_tokens: int | None = None, primer_seconds: float | None = None, num_samples: int = 1,
             seed: int | None = DEFAULT_SEED, key: str | None = None, composer: str | None = None,
             tempo: float | None = None, particles: int = 1, transpose: str | int = "auto",
             **dials: Any) -> list[Piece]:
    """New pieces: each continues ``primer`` (a MIDI file; None: from nothing) by up to ``length`` tokens.
    Scores are DAW-ready like the CLI's: the primer's meter, a piano track, a marker where generation starts.
    ``key``, ``composer``, ``tempo`` (BPM) are `musesynth generate`'s --key, --composer, --tempo; ``seed``
    defaults to 0 (the same pieces each call; None: a fresh seed, in ``piece.seed``). The sampling dials are
    keywords too (``Sampling``'s fields: temperature, top_k, top_p, repeat_bias, key_strength, ending). ``particles``
    (parts models): SMC particles per piece, weighed by the voice rules (``generate --particles``). ``transpose``:
    semitones the model reads the primer at, the new notes moved back ("auto": only a parts primer whose parts
    stray past their voices' ranges; 0: as it lies)."""
    request = GenerationRequest(
        primer=Primer(Path(primer) if primer is not None else None, primer_tokens, primer_seconds),
        controls=Controls(key, composer, tempo), sampling=Sampling.of(dials), length=length,
        num_samples=num_samples, seed=seed, particles=particles, transpose=transpose).validate()
    return generate_pieces(model or load_model(), request)


def _signature() -> inspect.Signature:
    """``generate``'s signature with each sampling dial as a keyword and its default (``help(generate)``)."""
    sig = inspect.signature(generate)
    params = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
               for name, (default, _) in Sampling.dials().items()]
    return sig.replace(parameters=params)


vars(generate)["__signature__"] = _signature()


def harmonize(melody: str | Path | None = None, *, chorale: str | None = None, model: Model | str | Path | None = None,
              part: str | None = None, voices: str | None = None, key: str | None = None, num_samples: int = 1,
              seed: int | None = DEFAULT_SEED, particles: int = DEFAULT_PARTICLES, transpose: str | int = "auto",
              top_line: bool = False, melody_voice: str | None = None, **dials: Any) -> list[Harmonization]:
    """The other voices written under a melody (`musesynth harmonize`): ``melody`` is a MIDI file (its one track,
    its Soprano, or ``part``), or ``chorale`` names a corpus chorale whose soprano is the melody. ``model``: a
    loaded parts model, a path, or None for the shipped parts model. Each ``Harmonization`` has ``.score`` (one
    named track per voice; every melody note exactly as given), ``.tokens``, ``.info`` and ``.save(path)``.
    ``particles``: SMC particles per harmonisation (``harmonize --particles``, default 4; 1: plain masked
    sampling). ``transpose``: semitones the voices are written at, then moved back with the melody ("auto": only a
    melody outside its voice's range, by the fewest semitones that bring it in; 0: as it lies). ``top_line``: a
    melody track with chords gives its top line (else it is refused). ``melody_voice``: the melody's voice (S, A,
    T, B; default: its track's voice name, else the Soprano, or the Bass for a line as low as a bass's). The
    sampling dials are keywords too; ``temperature`` defaults to harmonize's 0.85."""
    from musesynth.generate.harmonize import HARMONIZE_TEMPERATURE, HarmonizeOptions, harmonizations

    path, loaded = _model_arg(model)
    opt = HarmonizeOptions(melody=None if melody is None else str(melody), chorale=chorale, checkpoint=path,
                           part=part, melody_voice=melody_voice, voices=voices, key=key, num_samples=num_samples,
                           seed=seed, particles=particles,
                           transpose=transpose, top_line=top_line, wav=False, png=False,
                           sampling=Sampling.of({"temperature": HARMONIZE_TEMPERATURE, **dials}))
    return harmonizations(opt, loaded=loaded)


def infill(piece: str | Path | symusic.Score, bars: str, *, parts: str | None = None,
           model: Model | str | Path | None = None, num_samples: int = 1, seed: int | None = DEFAULT_SEED,
           particles: int = 1, max_tokens: int | None = None, transpose: str | int = "auto",
           **dials: Any) -> list[Infilling]:
    """Chosen bars rewritten with the music before and after them kept (`musesynth infill`): ``piece`` is a MIDI
    file or a score; ``bars`` as "5-8" or "5" (counted from 1); ``parts`` (a parts model) as "A,T,B" rewrites only
    those voices there, every other note exactly as it was (None: every note in the bars). ``model``: a loaded
    model, a path, or None for the shipped parts model. Each ``Infilling`` has ``.score``, ``.tokens`` (the
    fill), ``.info`` (``info["span_beats"]``: where the new bars lie) and ``.save(path)``. ``transpose``: semitones
    the bars are written at, the new notes moved back ("auto": only a piece whose parts stray past their voices'
    ranges; 0: as it lies)."""
    from musesynth.generate.infill import InfillOptions, infillings

    where, loaded = _model_arg(model)
    with tempfile.TemporaryDirectory() as tmp:
        in_memory = isinstance(piece, symusic.Score)
        if in_memory:  # read like a file: the same checks and budget
            path = Path(tmp) / "score.mid"
            piece.dump_midi(str(path))
        else:
            path = Path(piece)
        opt = InfillOptions(checkpoint=where, input=str(path), bars=bars, parts=parts, sampling=Sampling.of(dials),
                            seed=seed, num_samples=num_samples, particles=particles, max_tokens=max_tokens,
                            transpose=transpose, wav=False, png=False)
        try:
            out = infillings(opt, loaded=loaded)
        except MusesynthError as exc:
            if in_memory:  # the temporary file is the caller's score
                raise MusesynthError(str(exc).replace(repr(str(path)), "<symusic.Score>")
                                     .replace(str(path), "<symusic.Score>")) from None
            raise
    if in_memory:
        for r in out:
            r.info["input"] = "<symusic.Score>"  # the temporary file is gone
    return out


def _model_arg(model: Model | str | Path | None) -> tuple[str | None, tuple[Any, Any, Any] | None]:
    """(checkpoint path, loaded model) of the API's ``model`` argument; anything else is a one-line error."""
    if model is None:
        return None, None
    if isinstance(model, Model):
        return None, (model.net, model.encoding, model.meta)
    if isinstance(model, (str, Path)):
        return str(model), None
    raise MusesynthError(f"model: give a loaded Model, a path or None (got {type(model).__name__})")


def tokenize(midi: str | Path | symusic.Score, encoding: str = "chord", **params: Any) -> np.ndarray:
    """Token ids (BOS ... EOS) of a MIDI file or score in the named encoding."""
    enc = get_encoding(encoding, **params)
    return enc.encode(midi if isinstance(midi, symusic.Score) else load_score(midi))

