"""One table of bad generation requests, refused alike by the CLI and the API (issue 21): the same check, the same
words, each naming the culprit as its front end spells it (``--num-samples`` / ``num_samples``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import make_score, scale_melody

import musesynth
from musesynth.cli import main
from musesynth.errors import MusesynthError
from musesynth.generate.request import GenerationRequest, Primer
from musesynth.generate.sampling import Sampling

PRIMER = "PRIMER"  # replaced by a real MIDI file

BAD = [  # (API keywords, words the message must hold)
    (dict(num_samples=0), "num_samples must be at least 1 (got 0)"),
    (dict(length=0), "length must be at least 1 (got 0)"),
    (dict(length=-5), "length must be at least 1 (got -5)"),
    (dict(length=10**8), "length must be at most 1,000,000 tokens (got 100,000,000)"),
    (dict(primer_tokens=10), "primer_tokens cuts a primer: give one with primer"),
    (dict(primer_seconds=2.0), "primer_seconds cuts a primer: give one with primer"),
    (dict(primer=PRIMER, primer_tokens=0), "primer_tokens must be at least 1 (got 0)"),
    (dict(primer=PRIMER, primer_seconds=-1.0), "primer_seconds must be positive (got -1.0)"),
    (dict(primer=PRIMER, primer_tokens=5, primer_seconds=2.0), "primer_seconds cannot be combined with primer_tokens"),
    (dict(primer=PRIMER, primer_tokens=600), "tokens, longer than the model context of 512 tokens"),
    (dict(seed=-1), "seed must be a whole number, 0 or more (got -1)"),
    (dict(temperature=0.0), "temperature must be a positive number (got 0.0)"),
    (dict(top_k=-1), "top_k must be 0 (off) or a positive count (got -1)"),
    (dict(top_k=100_000), "at most the vocabulary size 570"),
    (dict(top_p=0.0), "top_p must be in (0, 1] (got 0.0)"),
    (dict(top_p=1.5), "top_p must be in (0, 1] (got 1.5)"),
    (dict(repeat_bias=25.0), "repeat_bias must be a number in [-20, 20] (got 25.0)"),
    (dict(key_strength=-1.0), "key_strength must be a number in [0, 20] (got -1.0)"),
    (dict(ending=30.0), "ending must be a number in [0, 20] (got 30.0)"),
    (dict(tempo=0.0), "tempo must be a positive number of beats per minute"),
    (dict(tempo=900.0), "unknown tempo 900 BPM"),
    (dict(key="H major"), "unknown key 'H major'"),
    (dict(composer="nobody"), "unknown composer 'nobody'"),
]


@pytest.fixture(scope="module")
def shipped():
    return musesynth.load_model(device="cpu")


@pytest.fixture(scope="module")
def primer_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("primer") / "primer.mid"
    make_score(scale_melody(3, n=400)).dump_midi(str(path))
    return path


def cli_args(kwargs: dict, primer: Path) -> list[str]:
    out: list[str] = []
    for name, value in kwargs.items():
        out += ["--" + name.replace("_", "-"), str(primer if value == PRIMER else value)]
    return out


def as_keywords(cli_message: str) -> str:
    """The CLI's message with its flags spelt as the API's keywords."""
    return re.sub(r"--([a-z][a-z-]*)", lambda m: m.group(1).replace("-", "_"), cli_message)


@pytest.mark.parametrize("kwargs, words", BAD, ids=[str(k) for k, _ in BAD])
def test_a_bad_request_is_refused_alike_by_the_cli_and_the_api(kwargs, words, shipped, primer_file, tmp_path,
                                                               capsys):
    api_kwargs = {k: primer_file if v == PRIMER else v for k, v in kwargs.items()}
    with pytest.raises(MusesynthError) as caught:
        musesynth.generate(shipped, length=api_kwargs.pop("length", 8), **api_kwargs)
    api = str(caught.value)
    assert words in api and "--" not in api  # the API names its keywords, never a flag

    out = tmp_path / "out"
    length = [] if "length" in kwargs else ["--length", "8"]
    rc = main(["generate", *cli_args(kwargs, primer_file), *length, "-o", str(out), "--no-wav", "--no-png", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("musesynth: error: ")
    cli = err.removeprefix("musesynth: error: ").strip()
    assert as_keywords(cli) == api  # the same check and words, flags for keywords
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_the_request_checks_without_a_model():
    with pytest.raises(MusesynthError, match="num_samples must be at least 1"):
        GenerationRequest(num_samples=0).validate()
    with pytest.raises(MusesynthError, match="primer_tokens cuts a primer"):
        GenerationRequest(primer=Primer(tokens=3)).validate()
    assert GenerationRequest().resolved().seed is not None  # a fresh seed when none is given
    assert GenerationRequest(seed=5).resolved().seed == 5


def test_an_unknown_dial_is_named_and_the_dials_are_keywords(shipped):
    with pytest.raises(MusesynthError, match="unknown sampling dial 'temprature'"):
        musesynth.generate(shipped, length=4, temprature=0.9)
    import inspect

    params = inspect.signature(musesynth.generate).parameters
    assert all(params[name].default == default for name, (default, _) in Sampling.dials().items())
