"""The package's front door: `musesynth --help` / `--version` without torch, and API names that keep meaning the
API (issue 21 items 6 and 7)."""

from __future__ import annotations

import argparse
import subprocess
import sys

from musesynth.cli import SUMMARIES, build_parser


def test_help_and_version_do_not_import_torch():
    code = ("import sys, musesynth.cli as c\n"
            "for argv in (['--help'], ['--version']):\n"
            "    assert c.main(argv) == 0\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "musesynth 0." in run.stdout and all(name in run.stdout for name in SUMMARIES)


def test_the_top_level_help_lists_each_commands_own_summary():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {c.dest: c.help for c in sub._choices_actions} == SUMMARIES


def test_importing_a_submodule_never_replaces_an_api_function():
    import musesynth
    import musesynth.generate.run  # noqa: F401
    import musesynth.tokenize.meter  # noqa: F401
    import musesynth.train  # noqa: F401
    from musesynth import api
    from musesynth.training import keywords

    assert musesynth.generate is api.generate and musesynth.train is keywords.train
    assert musesynth.tokenize is api.tokenize and musesynth.load_model is api.load_model
    from musesynth.generate.sampling import Sampling  # the subpackages stay importable by their full path

    assert Sampling().temperature == 1.0
