"""The whole run's progress and time left, which training prints beside its per-epoch bar."""

from __future__ import annotations

from musesynth.training.progress import Progress, run_left


def test_a_step_budget_extrapolates_the_pace_so_far():
    assert run_left(Progress(step=250, elapsed=100.0), total_steps=1000, max_time=0) == \
        "25% of the run, about 5 min left"


def test_a_time_budget_counts_the_clock():
    assert run_left(Progress(step=10, elapsed=20.0), total_steps=10**9, max_time=80) == \
        "25% of the run, about 60 s left"
    assert run_left(Progress(step=10, elapsed=60.0), total_steps=10**9, max_time=600) == \
        "10% of the run, about 9 min left"


def test_the_first_budget_reached_ends_the_run():
    # 2,000 steps at this pace take 400 s more, but the 300-second budget ends the run sooner
    assert run_left(Progress(step=500, elapsed=100.0), total_steps=2500, max_time=300) == \
        "33% of the run, about 3 min left"


def test_before_the_first_step_there_is_no_pace_yet():
    assert run_left(Progress(), total_steps=100, max_time=0) == "0% of the run"
    assert run_left(Progress(step=120, elapsed=50.0), total_steps=100, max_time=0) == "100% of the run, about 0 s left"
