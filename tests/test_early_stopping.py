"""Early stopping of weak children (early_stopping.py): the median rule's record and
thresholds, a child behind stopped and one ahead not, and a search that uses it."""

import csv

import numpy as np
import pytest

import config as config_lib
import early_stopping
import manager
import search
import state_space


def complete(curve, **changes):
    return manager.ChildResult((1,), curve[-1], curve=list(curve), **changes)


def test_thresholds_are_the_medians_of_the_complete_children_once_there_are_enough():
    rule = early_stopping.MedianRule(epochs=3, after=3)
    rule.add(complete([0.2, 0.5, 0.6]))
    rule.add(complete([0.4, 0.6, 0.9]))
    assert rule.thresholds() is None  # Two complete children: not yet.
    rule.add(complete([0.3, 0.4, 0.5]))
    # Ignored: failed, cached, stopped early, or trained without a curve.
    rule.add(complete([0.9, 0.9, 0.9], failed=True))
    rule.add(complete([0.9, 0.9, 0.9], cached=True))
    rule.add(manager.ChildResult((1,), 0.9, curve=[0.9], stopped_epoch=1))
    rule.add(manager.ChildResult((1,), 0.9))
    (m1, g1), (m2, g2) = rule.thresholds()
    assert m1 == pytest.approx(0.3) and m2 == pytest.approx(0.5)
    # Median of each child's gain to its last epoch: (0.4, 0.5, 0.2) and (0.1, 0.3, 0.1).
    assert g1 == pytest.approx(0.4) and g2 == pytest.approx(0.1)
    again = early_stopping.MedianRule(epochs=3, after=3)
    again.set_state(rule.get_state())
    assert again.thresholds() == rule.thresholds()


def test_a_stopped_child_is_scored_on_the_scale_of_complete_children():
    stopped = manager.ChildResult((1,), 0.25, curve=[0.25], stopped_epoch=1, stop_gain=0.4)
    assert stopped.fitness == pytest.approx(0.65)
    assert manager.ChildResult((1,), None, score=3.0).fitness == 3.0  # NASWOT scores unchanged.


@pytest.mark.parametrize("epochs", [1, 0])
def test_the_rule_needs_children_of_two_epochs_or_more(epochs):
    with pytest.raises(ValueError, match=">= 2 epochs"):
        early_stopping.MedianRule(epochs)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(early_stop="mean"), "--early_stop must be one of"),
        (dict(early_stop="median", epochs=1), "needs --evaluation=train and --epochs >= 2"),
        (dict(early_stop="median", evaluation="naswot"), "needs --evaluation=train"),
        (dict(early_stop="median", early_stop_after=0), "--early_stop_after"),
    ],
)
def test_bad_early_stopping_settings_are_one_clear_error(changes, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.SearchConfig(**changes).resolved()


@pytest.fixture
def watched(tiny_dataset):
    m = manager.NetworkManager(
        tiny_dataset, state_space.toy_space(2), epochs=3, batch_size=32, early_stop=True
    )
    return m, m.space.sample(np.random.default_rng(0))


def test_a_child_behind_the_record_stops_after_that_epoch(watched):
    m, architecture = watched
    m.stop_thresholds = [(1.01, 0.3), (1.01, 0.1)]  # No child can be ahead of these.
    result = m.evaluate(architecture)
    assert not result.failed and result.stopped_epoch == 1
    assert len(result.curve) == 1 and result.accuracy == result.curve[0]
    assert result.stop_gain == 0.3 and result.fitness == pytest.approx(result.accuracy + 0.3)


def test_a_child_ahead_of_the_record_trains_every_epoch(watched):
    m, architecture = watched
    m.stop_thresholds = [(-0.01, 0.3), (-0.01, 0.1)]  # Every child is ahead.
    ahead = m.evaluate(architecture)
    assert ahead.stopped_epoch == 0 and ahead.stop_gain == 0.0 and len(ahead.curve) == 3
    assert ahead.accuracy == ahead.curve[-1]  # The last epoch's measure is the accuracy.
    m.stop_thresholds = None  # No record yet: every child trains every epoch.
    free = m.evaluate(architecture)
    assert free.stopped_epoch == 0 and len(free.curve) == 3
    m.early_stop = False
    plain = m.evaluate(architecture)
    assert plain.curve is None and plain.stopped_epoch == 0


def test_a_search_stops_weak_children_and_never_picks_one(tmp_path, tiny_dataset, monkeypatch):
    monkeypatch.setattr(search.data, "load_dataset", lambda *args, **kwargs: tiny_dataset)
    config = config_lib.SearchConfig(
        strategy="random",
        trials=12,
        children_per_step=3,
        epochs=2,
        early_stop="median",
        early_stop_after=3,
        batch_size=16,
        final_epochs=0,
        logdir=str(tmp_path),
        run_name="es",
        tensorboard=False,
    )
    lines = []
    best = search.run_search(config, out=lines.append)
    with open(tmp_path / "es" / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    stopped = [r for r in rows if r["stopped_epoch"] == "1"]
    assert all(r["stopped_epoch"] == "0" for r in rows[:3])  # The record fills first.
    assert stopped, "no child of 12 was below the median of the complete ones"
    assert best["architecture_str"] not in {r["architecture"] for r in stopped}
    assert any("stopped after epoch 1/2" in line for line in lines)
