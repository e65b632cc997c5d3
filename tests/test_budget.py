"""budget.py and --time_budget: durations, when a step may start, and searches that
stop on time, including across a resume."""

import csv
import json
import math

import pytest
from conftest import tiny_config

import budget
import config as config_lib
import search


@pytest.mark.parametrize(
    "value, seconds",
    [("90s", 90), ("45m", 2700), ("2h", 7200), ("1h30m", 5400), ("1.5h", 5400),
     ("1d", 86400), ("3600", 3600), ("2.5", 2.5), (120, 120), (" 10 m ", 600)],
)
def test_durations_read_as_seconds(value, seconds):
    assert budget.parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "soon", "10x", "m", "-5m", "0", "0s", "5m later", True])
def test_a_bad_duration_names_what_is_allowed(value):
    with pytest.raises(ValueError, match="a duration like 90s, 45m, 2h"):
        budget.parse_duration(value)


def test_a_bad_time_budget_is_one_config_error():
    with pytest.raises(config_lib.ConfigError, match="--time_budget: expected a duration"):
        config_lib.SearchConfig(time_budget="soon").resolved()
    with pytest.raises(config_lib.ConfigError, match="may be left out only with --time_budget"):
        config_lib.SearchConfig(trials=None).resolved()
    c = config_lib.SearchConfig(trials=None, time_budget="1h30m").resolved()
    assert (c.trials, c.time_budget, c.workers) == (None, 5400.0, 1)  # Any length: a worker.
    assert config_lib.SearchConfig(trials=None, time_budget="2m", strategy="proxy_ranking").resolved(
    ).proxy_candidates == 1000


def test_a_step_starts_only_while_it_is_expected_to_fit():
    b = budget.Budget(trials=None, seconds=100)
    b.observe(0, 0.0)
    assert b.exhausted(steps_done=0) is None and b.fraction() == 0.0
    b.observe(30, 60.0)  # 3 steps of 20 s: the next ends at 80 s.
    assert b.exhausted(steps_done=3) is None
    b.observe(40, 85.0)  # 4 steps, 21.25 s each: the next would end at 106 s.
    assert b.exhausted(steps_done=4) == "time_budget"
    assert b.fraction() == 0.85 and b.children_left() == math.inf
    b.observe(1, 100.0)
    assert b.exhausted(steps_done=0) == "time_budget"  # Time up, even without a step yet.


def test_trials_and_time_both_bound_the_budget():
    b = budget.Budget(trials=10, seconds=1000)
    b.observe(10, 1.0)
    assert b.exhausted(steps_done=5) == "trials" and b.fraction() == 1.0
    b.observe(4, 800.0)
    assert b.fraction() == 0.8 and b.children_left() == 6  # The larger share.


def _config(tmp_path, name, **changes):
    """The tiny search limited by 4 s alone (no trial limit), its children in this process,
    no final retraining (it runs after the budget: not what these tests time)."""
    timed = dict(strategy="random", trials=None, time_budget=4.0, train_size=100, val_size=50,
                 batch_size=50, workers=0, final_epochs=0)
    return tiny_config(tmp_path, name, **{**timed, **changes})


def _rows(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_a_search_with_only_a_time_budget_stops_before_a_step_that_would_overrun(tmp_path):
    lines = []
    best = search.run_search(_config(tmp_path, "timed"), out=lines.append)
    rows = _rows(tmp_path / "timed")
    assert best["stopped_by"] == "time_budget" and best["time_budget_seconds"] == 4.0
    assert best["trials"] == len(rows) >= 2
    assert any("the time budget of 4s is spent" in line for line in lines)
    # Every step began with time left for one more step of the mean length so far.
    ends = {}
    for r in rows:
        ends[int(r["step"])] = float(r["elapsed_seconds"])
    steps = sorted(ends)
    for i, step in enumerate(steps[1:], 1):
        assert ends[steps[i - 1]] + ends[steps[i - 1]] / i <= 4.0 + 1e-6
    assert any(line.startswith("trial 1 step 0") for line in lines)  # No "/N": no trial limit.


def test_a_resumed_search_keeps_the_time_its_earlier_processes_spent(tmp_path):
    config = _config(tmp_path, "cut", time_budget=3600.0)
    lines = []
    with pytest.raises(KeyboardInterrupt):  # After the first step's two children.
        search.run_search(
            config,
            out=lines.append,
            should_stop=lambda: sum(line.startswith("trial ") for line in lines) >= 2,
        )
    state_path = tmp_path / "cut" / "state.json"
    state = json.loads(state_path.read_text())
    state["elapsed"] = 3599.5  # As if the first process had spent the budget.
    state_path.write_text(json.dumps(state))
    resumed = []
    best = search.run_search(config, out=resumed.append, resume=True)
    assert not any(line.startswith("trial ") for line in resumed)  # No child trained again.
    assert best["stopped_by"] == "time_budget" and best["trials"] == 2
    assert best["search_seconds"] >= 3599.5
    assert len(_rows(tmp_path / "cut")) == 2


def test_a_trial_limit_still_ends_a_timed_search(tmp_path):
    best = search.run_search(
        _config(tmp_path, "both", trials=3, time_budget=3600.0), out=lambda line: None
    )
    assert best["stopped_by"] == "trials" and best["trials"] == 3
