"""run_state.py without a search: what a run folder holds, read as assess.py and a
resume read it."""

import json

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
