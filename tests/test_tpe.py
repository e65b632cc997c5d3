"""--strategy=tpe (tpe.py): Optuna's TPE through ask and tell, its journal in the run
folder, and a resume that asks for what an uninterrupted search would."""

import json
import sys

import numpy as np
import pytest

import manager
import state_space

optuna = pytest.importorskip("optuna")
import tpe  # noqa: E402


def fitness(architecture):
    """Wider layers are better: the best of the toy space is every filter at 64."""
    return sum(architecture[1::2]) / (64 * (len(architecture) // 2))


def step(strategy, n):
    architectures = strategy.propose(n)
    results = [manager.ChildResult(a, fitness(a)) for a in architectures]
    strategy.learn(architectures, results)
    return architectures


def test_tpe_asks_one_categorical_per_decision_and_learns_from_what_it_is_told(tmp_path):
    space = state_space.toy_space(3)
    strategy = tpe.TpeStrategy(space, seed=0, run_dir=str(tmp_path), startup=8)
    history = [a for _ in range(10) for a in step(strategy, 4)]
    for a in history:
        space.validate(a)  # Raises for an architecture the space does not hold.
    assert all(len({a[i] for a in history}) > 1 for i in range(len(space.decisions)))  # Explored.
    study = optuna.load_study(
        study_name=tpe.STUDY,
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / tpe.JOURNAL))
        ),
    )
    assert len(study.trials) == 40 and set(study.best_params) == {d.key for d in space.decisions}
    assert study.best_value == max(fitness(a) for a in history)
    # After its 8 random children TPE proposes better ones than random search does.
    rng = np.random.default_rng(0)
    random_mean = np.mean([fitness(space.sample(rng)) for _ in range(200)])
    assert np.mean([fitness(a) for a in history[-16:]]) > random_mean + 0.1


def test_a_resumed_tpe_asks_what_an_uninterrupted_one_would(tmp_path):
    space = state_space.toy_space(3)
    full = tpe.TpeStrategy(space, 3, str(tmp_path / "full"), startup=4)
    (tmp_path / "full").mkdir()
    expected = [step(full, 3) for _ in range(5)]

    (tmp_path / "cut").mkdir()
    first = tpe.TpeStrategy(space, 3, str(tmp_path / "cut"), startup=4)
    got = [step(first, 3) for _ in range(3)]
    committed = json.loads(json.dumps(first.get_state()))
    first.propose(3)  # Asked after the last commit, then the process died.
    again = tpe.TpeStrategy(space, 3, str(tmp_path / "cut"), startup=4)
    again.set_state(committed)
    running = again.study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    failed = again.study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    assert running == [] and len(failed) == 3  # The orphans are marked failed.
    got += [step(again, 3) for _ in range(2)]
    assert got == expected


def test_a_step_told_before_a_crash_is_not_told_twice(tmp_path):
    space = state_space.toy_space(2)
    strategy = tpe.TpeStrategy(space, 0, str(tmp_path), startup=2)
    architectures = strategy.propose(2)
    pending = json.loads(json.dumps(strategy.get_state()))
    results = [manager.ChildResult(a, fitness(a)) for a in architectures]
    strategy.learn(architectures, results)  # Told; the process dies before its commit.
    again = tpe.TpeStrategy(space, 0, str(tmp_path), startup=2)
    again.set_state(pending)
    again.learn(architectures, results)  # The resumed step tells again: no error.
    complete = again.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert [t.value for t in complete] == [fitness(a) for a in architectures]


def test_a_journal_line_cut_off_by_a_full_disk_does_not_stop_the_resume(tmp_path):
    """bench/faults.py (tpe, disk): a journal line the full disk cut off merged with the
    first line the resumed search appended, and Optuna's next read raised
    JSONDecodeError (a traceback, exit 1)."""
    space = state_space.toy_space(3)
    full = tpe.TpeStrategy(space, 3, str(tmp_path / "full"), startup=4)
    (tmp_path / "full").mkdir()
    expected = [step(full, 3) for _ in range(4)]
    (tmp_path / "cut").mkdir()
    first = tpe.TpeStrategy(space, 3, str(tmp_path / "cut"), startup=4)
    got = [step(first, 3) for _ in range(2)]
    committed = json.loads(json.dumps(first.get_state()))
    journal = tmp_path / "cut" / tpe.JOURNAL
    with open(journal, "a") as f:
        f.write('{"op_code":5,"worker_id":"x","trial_id":6,"st')  # The write the disk cut.
    again = tpe.TpeStrategy(space, 3, str(tmp_path / "cut"), startup=4)
    again.set_state(committed)
    got += [step(again, 3) for _ in range(2)]
    assert got == expected
    reread = tpe.TpeStrategy(space, 3, str(tmp_path / "cut"), startup=4)
    assert len(reread.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 12


def test_without_optuna_the_strategy_is_one_line_naming_the_install(monkeypatch, tmp_path):
    import config as config_lib
    import strategies

    monkeypatch.setitem(sys.modules, "optuna", None)  # As if it were not installed.
    monkeypatch.delitem(sys.modules, "tpe")
    config = config_lib.SearchConfig(strategy="tpe").resolved()
    with pytest.raises(config_lib.ConfigError, match=r"needs Optuna.*pip install optuna==5.0.0"):
        strategies.make_strategy(config, state_space.toy_space(2), None, str(tmp_path))
