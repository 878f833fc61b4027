"""The CLI as a new user meets it: help texts, warnings, and what Ctrl-C says."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

import pytest

from musesynth.cli import build_parser, main

FLAGS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._StoreConstAction)


def subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_command_has_a_description_an_example_and_helped_options(name):
    p = subcommands()[name]
    assert p.description and "\n" not in p.description and f"musesynth {name}" in p.epilog
    for a in p._actions:
        if isinstance(a, argparse._HelpAction) or a.help == argparse.SUPPRESS:  # a quiet alias (--samples)
            continue
        assert a.help, (name, a.option_strings)
        if not isinstance(a, FLAGS) and not a.required:
            assert "default" in a.help, (name, a.option_strings, a.help)
        if a.choices and not isinstance(a, FLAGS):  # choices show in the usage and the option's line
            assert "{" in p.format_help()


def test_ablate_help_shows_only_its_options(capsys):
    assert main(["ablate", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--models", "--budget-tokens", "--budget-seconds", "--report", "--batch-size", "--lr"):
        assert option in out
    for option in ("--run-name", "--resume", "--overwrite", "--max-steps", "--max-time", "--halt-after-steps",
                   "--patience", "--out-dir", "--model "):
        assert option not in out, option


def test_a_piece_without_notes_is_a_warning_even_when_quiet(studio_runs, tmp_path, capsys):
    argv = ["generate", "-c", str(studio_runs / "tiny-gru"), "-k", "1", "-n", "1", "--no-wav", "--no-png",
            "-o", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "warning: this piece has no notes" in out and "wav:" not in out  # --no-wav: no line about it
    assert main([*argv, "-q"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "has no notes" in err and err.count("\n") == 1


def test_ctrl_c_of_a_training_says_how_to_resume(tiny_dataset, tmp_path):
    cmd = [sys.executable, "-m", "musesynth", "train", "-d", str(tiny_dataset), "-m", "gru", "-o", str(tmp_path),
           "--seq-len", "16", "--embed-dim", "16", "--hidden-dim", "32", "--batch-size", "4", "--max-time", "120",
           "--no-tensorboard", "--log-every", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    metrics, end = tmp_path / "gru" / "metrics.csv", time.monotonic() + 300
    # a logged step: the loop (and its Ctrl-C handler) runs; a busy machine may take a while to get there
    while proc.poll() is None and time.monotonic() < end and \
            not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert "resume with the same command plus --resume" in out and "Traceback" not in err
    assert (tmp_path / "gru" / "last.pt").is_file()


def test_a_primer_the_model_ends_at_once_gets_a_note():
    from musesynth.generate.run import summarize

    r = {"midi": "a.mid", "notes": 200, "seconds": 44.0, "generated_tokens": 1, "wav": None, "png": None,
         "primer": "bwv10.7.mid"}
    assert "the model ended the piece where the primer ends" in summarize([r])
    assert "primer ends" not in summarize([{**r, "generated_tokens": 300}])
    assert "primer ends" not in summarize([{**r, "primer": None}])


@pytest.mark.parametrize("command, hint", [("harmonize", "fewer --num-samples or --particles"),
                                           ("train", "a smaller --batch-size, --seq-len or model"),
                                           ("", "a smaller request")])
def test_out_of_memory_is_one_line_naming_options_the_command_has(command, hint, capsys):
    from musesynth.cli import run_guarded

    def body() -> int:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    assert run_guarded(body, command) == 2
    assert capsys.readouterr().err == f"musesynth: error: out of memory (try {hint})\n"
