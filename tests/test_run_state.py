"""run_state.py without a search: what a run folder holds, read as assess.py and a
resume read it."""

import json

import pytest

import run_state


def test_the_phase_of_a_folder_is_what_its_state_says_and_none_without_a_run(tmp_path):
    run = tmp_path / "run"
    assert run_state.phase(run) is None  # No folder.
    run.mkdir()
    assert run_state.phase(run) is None  # Empty.
    (run / run_state.LOCK_FILE).write_text("")
    (run / "config.json.tmp").write_text("{")
    assert run_state.phase(run) is None  # What a start that stopped at once leaves.
    (run / "config.json").write_text("{}")
    assert run_state.phase(run) == "search"  # Started, never committed: resumable.
    for phase in ("search", "final", "finished"):
        (run / run_state.STATE_FILE).write_text(json.dumps({"phase": phase}))
        assert run_state.phase(run) == phase
    (run / run_state.STATE_FILE).write_text(json.dumps({"step": 1}))
    assert run_state.phase(run) == "search"  # A state of version 1 had no phase.
    for damaged in ("{", "[1, 2]"):
        (run / run_state.STATE_FILE).write_text(damaged)
        assert run_state.phase(run) == "search"  # The resume reports the damage.


def _state(**changes):
    value = {
        "version": run_state.STATE_VERSION, "phase": "search", "step": 2, "trial": 16,
        "elapsed": 12.5, "stopped_by": None, "strategy": {"checkpoint": None, "state": {}},
        "manager": {"baseline": None, "consecutive_failures": 0}, "pending": None, "events": {},
    }
    value.update(changes)
    return value


def test_a_state_reads_back_as_it_was_written_with_its_trials(tmp_path):
    value = _state(shared={"checkpoint": "checkpoints/supernet-0001", "state": {"epochs": 1}})
    state = run_state.RunState.from_json(value)
    assert state.to_json() == value and list(state.to_json()) == list(value)
    assert run_state.RunState.from_json(_state()).to_json() == _state()  # No "shared" key.
    (tmp_path / run_state.STATE_FILE).write_text(json.dumps(_state(trial=0)))
    read = run_state.read_state(tmp_path)
    assert read.trial == 0 and read.records == [] and read.elapsed == 12.5


def test_a_state_of_another_version_or_without_a_key_is_refused_as_damaged(tmp_path):
    for damaged in (_state(version=3), {k: v for k, v in _state().items() if k != "pending"}):
        (tmp_path / run_state.STATE_FILE).write_text(json.dumps(damaged))
        with pytest.raises(run_state.ConfigError, match="is damaged"):
            run_state.read_state(tmp_path)
    (tmp_path / run_state.STATE_FILE).write_text(json.dumps(_state(version=1)))
    with pytest.raises(run_state.ConfigError, match="state version 1"):
        run_state.read_state(tmp_path)
