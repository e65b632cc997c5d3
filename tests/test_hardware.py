"""Architectures that fit a device: costs, budgets and MnasNet's trade-off, the exact
Pareto fronts and random search's exact expectation under a budget.

Oracles: brute force over small constructed tables (every n-tuple of draws, every pair
of points, every unit square), counts by hand, the NAS-Bench-201 paper's FLOPs, and the
HW-NAS-Bench table itself for the flags of each history row.
"""

import csv
import hashlib
import itertools
import json
import math
import pathlib
import re

import keras
import numpy as np
import pytest
from conftest import TABLE_STRATEGIES

import config as config_lib
import costs
import fronts
import hardware
import manager as manager_lib
import nb201
import objectives
import pareto
import search
import stats
import templates
from state_space import NB201_OPS, StateSpace, nb201_space

ROOT = pathlib.Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ the table


def test_the_vendored_hardware_table_is_the_attributed_file():
    digest = hashlib.sha256((ROOT / "embedded" / "nb201_hardware_cifar10.csv.gz").read_bytes()).hexdigest()
    assert digest in (ROOT / "embedded" / "README.md").read_text()


def test_every_cell_has_its_costs_and_the_edge_tpu_lacks_4699():
    table = hardware.costs_by_row()
    assert set(table) == set(hardware.COSTS)
    for name, values in table.items():
        assert values.shape == (nb201.CELLS,)
        missing = int(np.isnan(values).sum())
        assert missing == (4699 if name == "edgetpu_latency" else 0), name
        assert np.nanmin(values) > 0, name


# ------------------------------------------------------------------ parameters and FLOPs


def test_the_flops_arithmetic_gives_the_benchmark_papers_figures():
    assert round(nb201.network_flops(["none"] * 6) / 1e6, 2) == 7.78
    assert round(nb201.network_flops(["nor_conv_3x3"] * 6) / 1e6, 2) == 220.12


def test_the_flops_arithmetic_matches_the_built_networks_count():
    """zero_cost.flops (tested by hand in test_zero_cost) on built networks, every op
    and a mixed cell, small sizes."""
    space, rng = nb201_space(), np.random.default_rng(3)
    cells = [tuple([op] * 6) for op in NB201_OPS] + [tuple(a) for a in space.sample(rng, 2)]
    for architecture in cells:
        model = templates.build_nb201(space, architecture, (8, 8, 1), 4, channels=3, cells=2)
        assert zero_cost_flops(model) == nb201.network_flops(
            architecture, channels=3, cells=2, num_classes=4, input_channels=1, image_size=8
        ), architecture
        keras.backend.clear_session()


def zero_cost_flops(model):
    import zero_cost  # pylint: disable=import-outside-toplevel

    return zero_cost.flops(model)


def test_the_tables_costs_are_the_arithmetic_of_each_row():
    bench = nb201.Benchmark(hardware=hardware.costs_by_row())
    space, rng = nb201_space(), np.random.default_rng(0)
    for architecture in space.sample(rng, 20):
        c = bench.costs(architecture)
        assert c["params"] == nb201.network_params(architecture)
        assert c["flops"] == nb201.network_flops(architecture)
        row = bench.row(architecture)
        for name in hardware.COSTS:
            assert c[name] == pytest.approx(hardware.costs_by_row()[name][row], nan_ok=True)


def test_the_cost_meter_counts_the_built_network_once_per_architecture():
    builds = []

    def build(architecture):
        builds.append(architecture)
        inputs = keras.Input((3,))
        return keras.Model(inputs, keras.layers.Dense(architecture[0])(inputs))

    meter = costs.CostMeter(("params", "flops", "latency"), build=build, input_shape=(3,))
    first = meter.measure((5,))
    assert first["params"] == 3 * 5 + 5 and first["flops"] == 3 * 5
    assert 0 < first["latency"] < 1000
    assert meter.measure((5,)) == first and builds == [(5,)]
    assert meter.measure((2,))["params"] == 3 * 2 + 2


# ------------------------------------------------------------------ objectives


def test_a_budget_and_a_trade_off_on_constructed_costs():
    objective = objectives.Objective.from_flags("params:100,pixel3_latency:5", "flops:1000", -0.07)
    assert objective.names == ("params", "pixel3_latency", "flops")
    within = objective.judge({"params": 100, "pixel3_latency": 4.99, "flops": 2000})
    assert within.feasible and within.factor == pytest.approx(2 ** -0.07)
    over = objective.judge({"params": 101, "pixel3_latency": 6.0, "flops": 1000})
    assert not over.feasible and len(over.over) == 2 and over.factor == 1.0
    assert "params 101 over the budget 100" in over.over[0]
    unknown = objective.judge({"params": 1, "pixel3_latency": math.nan, "flops": 1000})
    assert not unknown.feasible and "unknown" in unknown.over[0]
    assert objectives.Objective.from_flags("", "flops:1000", 0.0).judge({"flops": 5.0}).factor == 1.0


@pytest.mark.parametrize("flags, message", [
    (("pixel3:5", "", -0.07), "--max_cost takes cost:value"),
    (("params:0", "", -0.07), "positive"),
    (("params:1e6,params:2e6", "", -0.07), "twice"),
    (("", "flops:abc", -0.07), "--cost_target takes"),
    (("", "flops:1e6", 0.5), "--cost_weight"),
])
def test_bad_objective_flags_are_one_error_each(flags, message):
    with pytest.raises(objectives.ObjectiveError, match=message):
        objectives.Objective.from_flags(*flags)


class _Table:
    """A constructed table with costs: fitness and params per architecture."""

    def __init__(self, fitness, params):
        self.fitness_of, self.params_of = fitness, params
        self.size = len(fitness)

    def reward(self, architecture, query=0):
        return self.fitness_of[architecture[0]]

    def costs(self, architecture):
        return {"params": self.params_of[architecture[0]]}


def _manager(objective, fitness, params):
    space = StateSpace(1).add_state("cell", list(range(len(fitness))))
    meter = costs.CostMeter(objective.names, table=_Table(fitness, params))
    return manager_lib.NetworkManager(
        None, space, template=None, evaluation="benchmark", benchmark=_Table(fitness, params),
        acc_beta=0.5, max_failures=2, objective=objective, meter=meter,
    )


def test_an_infeasible_child_gets_the_failed_reward_and_is_not_a_failure():
    objective = objectives.Objective.from_flags("params:10")
    m = _manager(objective, fitness=[0.5, 0.9, 0.7], params=[5, 50, 10])
    results = m.get_rewards([(1,), (0,), (1,), (1,), (2,)])
    assert [bool(r.infeasible) for r in results] == [True, False, True, True, False]
    # The first baseline is the first feasible child's fitness; the infeasible ones have a
    # failed child's fitness (0) against it, and are not failures (max_failures is 2).
    assert [r.fitness for r in results] == [0.0, 0.5, 0.0, 0.0, 0.7]
    assert [r.reward for r in results] == pytest.approx([-0.5, 0.0, -0.5, -0.5, 0.2])
    assert not any(r.failed for r in results) and m.consecutive_failures == 0
    # Only the feasible ones update the baseline (bias-corrected moving average, beta 0.5).
    assert m.baseline.count == 2
    assert m.baseline.value == pytest.approx((0.5 * (0.5 * 0.5) + 0.5 * 0.7) / (1 - 0.5**2))
    assert results[0].costs == {"params": 50.0} and "params 50 over the budget 10" in results[0].infeasible


def test_the_soft_objective_multiplies_the_fitness_by_the_trade_off():
    objective = objectives.Objective.from_flags("", "params:10", -0.5)
    m = _manager(objective, fitness=[0.5, 0.9], params=[40, 10])
    small, large = m.get_rewards([(1,), (0,)])
    assert small.fitness == pytest.approx(0.9) and large.fitness == pytest.approx(0.5 * 4 ** -0.5)
    assert large.accuracy == 0.5 and large.reward == pytest.approx(0.25 - 0.9)


# ------------------------------------------------------------------ fronts


def _dominated(costs_, accuracies, i):
    return any(
        costs_[j] <= costs_[i] and accuracies[j] >= accuracies[i]
        and (costs_[j] < costs_[i] or accuracies[j] > accuracies[i])
        for j in range(len(costs_))
    )


@pytest.mark.parametrize("seed", range(5))
def test_the_front_is_every_point_no_other_dominates(seed):
    rng = np.random.default_rng(seed)
    c, a = rng.integers(0, 12, 60).astype(float), rng.integers(0, 12, 60).astype(float)
    c[[3, 7]] = np.nan
    f = pareto.front(c, a)
    expected = {(c[i], a[i]) for i in range(60) if np.isfinite(c[i]) and not _dominated(c, a, i)}
    assert set(zip(f.cost, f.accuracy)) == expected
    assert len(f) == len(expected)  # A point equal to another once.
    assert np.all(np.diff(f.cost) > 0) and np.all(np.diff(f.accuracy) > 0)


def test_best_within_and_the_distance_on_a_small_front():
    f = pareto.front([1, 2, 2, 4, 5], [0.5, 0.4, 0.7, 0.6, 0.9])
    assert list(f.index) == [0, 2, 4]
    assert pareto.best_within(f, 0.5) is None and pareto.best_within(f, 3.9) == 0.7
    assert pareto.distance(f, 4, 0.6) == pytest.approx(0.1)
    assert pareto.distance(f, 5, 0.9) == 0.0 and pareto.distance(f, math.nan, 0.9) is None


@pytest.mark.parametrize("seed", range(4))
def test_the_hypervolume_is_the_count_of_unit_squares_dominated(seed):
    rng = np.random.default_rng(seed)
    c, a = rng.integers(0, 10, 15), rng.integers(0, 10, 15)
    reference = (10, 2)
    squares = sum(
        any(ci <= x and ai >= y + 1 for ci, ai in zip(c, a))
        for x in range(0, 10) for y in range(2, 10)
    )
    assert pareto.hypervolume(c, a, reference) == squares


# ------------------------------------------------------------------ random search, exactly


def _brute_force(rewards, judged, p, n):
    """Every n-tuple of draws: the pick is the first of the best reward."""
    total = 0.0
    for draws in itertools.product(range(len(rewards)), repeat=n):
        best = max(rewards[i] for i in draws)
        pick = next(i for i in draws if rewards[i] == best)
        total += np.prod([p[i] for i in draws]) * judged[pick]
    return total


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_the_expected_pick_equals_every_tuple_of_draws(n):
    rewards = [0.3, 0.9, 0.9, 0.5, -np.inf, -np.inf]  # Ties, and two infeasible items.
    judged = [0.31, 0.80, 0.95, 0.52, 0.0, 0.0]
    p = [0.1, 0.15, 0.05, 0.2, 0.3, 0.2]
    assert stats.expected_pick(rewards, judged, p, n) == pytest.approx(_brute_force(rewards, judged, p, n))


def test_random_search_under_a_budget_on_the_table():
    bench = nb201.Benchmark(hardware=hardware.costs_by_row())
    accuracy = bench.table.accuracy["cifar10"]
    ok = fronts.feasible_rows(bench, [("pixel3_latency", 6.4)])
    assert bench.expected_best_of_random(50, feasible=np.ones(nb201.CELLS, bool)) == pytest.approx(
        bench.expected_best_of_random(50))
    # One query: the mean of the feasible cells' accuracies, an infeasible pick as 0.
    assert bench.expected_best_of_random(1, feasible=ok) == pytest.approx(accuracy[ok].sum() / nb201.CELLS)
    # Very many: the constrained optimum.
    _, optimum = fronts.constrained_optimum(bench, [("pixel3_latency", 6.4)])
    assert optimum == accuracy[ok].max()
    assert bench.expected_best_of_random(10**7, feasible=ok) == pytest.approx(optimum)
    assert bench.expected_best_of_random(100, feasible=ok) < bench.expected_best_of_random(100)


# ------------------------------------------------------------------ searches


def _table_search(tmp_path, **changes):
    settings = dict(
        space="nb201", evaluation="benchmark", trials=64, children_per_step=8, tensorboard=False,
        logdir=str(tmp_path), run_name="run", max_cost="pixel3_latency:6.4",
    )
    return search.run_search(config_lib.SearchConfig(**{**settings, **changes}), out=lambda line: None)


@pytest.mark.parametrize("strategy", list(TABLE_STRATEGIES))
def test_every_strategy_searches_the_table_within_a_budget(tmp_path, strategy):
    best = _table_search(tmp_path, strategy=strategy, **TABLE_STRATEGIES[strategy])
    budget = hardware.costs_by_row()["pixel3_latency"]
    space = nb201_space()
    bench = nb201.Benchmark()
    with open(tmp_path / "run" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 64
    for row in rows:
        cost = budget[bench.row(space.from_string(row["architecture"]))]
        assert float(row["cost_pixel3_latency"]) == pytest.approx(cost, rel=1e-5)
        assert row["feasible"] == str(int(cost <= 6.4))
        if row["feasible"] == "0":
            assert float(row["test200_accuracy"]) == 0.0 and float(row["objective"]) == 0.0
    assert best["costs"]["pixel3_latency"] <= 6.4
    front = best["front"]
    assert front["constrained_regret"] == pytest.approx(front["constrained_optimum"] - best["test_accuracy"])
    assert front["constrained_regret"] >= 0
    assert front["costs"]["pixel3_latency"]["distance_to_front"] >= 0
    assert 0 < front["costs"]["pixel3_latency"]["hypervolume_ratio"] <= 1
    assert (tmp_path / "run" / "front_pixel3_latency.png").stat().st_size > 0
    assert len(best["infeasible_share_by_quarter"]) == 4


def test_a_budget_nothing_meets_ends_with_one_clear_error(tmp_path):
    with pytest.raises(manager_lib.SearchError, match="no child met the objective"):
        _table_search(tmp_path, max_cost="params:1000", trials=16, strategy="random")


def test_a_trained_search_under_a_parameter_budget_trains_no_child_over_it(tmp_path):
    """The toy space on mnist5k: a budget between the smallest and the largest children."""
    config = config_lib.SearchConfig(
        trials=6, children_per_step=3, epochs=1, train_size=100, val_size=50, batch_size=50,
        tensorboard=False, logdir=str(tmp_path), run_name="run", max_cost="params:6000",
        strategy="random", seed=1,
    )
    best = search.run_search(config, out=lambda line: None)
    with open(tmp_path / "run" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["feasible"] for r in rows} == {"0", "1"}, [r["cost_params"] for r in rows]
    for row in rows:
        over = float(row["cost_params"]) > 6000
        assert row["feasible"] == str(int(not over))
        if over:
            assert float(row["train_seconds"]) == 0.0 and row["val_accuracy"] == "0.000000"
        else:
            assert int(row["params"]) == int(float(row["cost_params"]))
    assert best["costs"]["params"] == best["params"] <= 6000
    assert json.loads((tmp_path / "run" / "best.json").read_text())["costs"] == best["costs"]


def test_weight_sharing_derives_its_pick_within_the_budget(tmp_path):
    """The macro supernet with a parameter budget: no infeasible child is scored, and the
    derivation ranks only candidates within the budget."""
    config = config_lib.SearchConfig(
        space="macro", evaluation="shared", num_layers=3, filters=4, trials=8, children_per_step=4,
        train_size=64, val_size=32, batch_size=32, eval_batch=16, shared_steps_per_epoch=2,
        derive_candidates=8, final_epochs=0, tensorboard=False, logdir=str(tmp_path),
        run_name="run", max_cost="params:700", seed=2,
    )
    best = search.run_search(config, out=lambda line: None)
    with open(tmp_path / "run" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["feasible"] for r in rows} == {"0", "1"}, [r["cost_params"] for r in rows]
    for row in rows:
        assert row["feasible"] == str(int(float(row["cost_params"]) <= 700))
    with open(tmp_path / "run" / "derive.csv") as f:
        derived = list(csv.DictReader(f))
    pick = next(r for r in derived if r["architecture"] == best["architecture_str"])
    assert best["costs"]["params"] == int(pick["params"]) <= 700  # Not retrained: the meter's.


def test_the_objective_needs_costs_the_run_can_know():
    for changes, message in (
        (dict(max_cost="pixel3_latency:6"), "--space=nb201"),
        (dict(space="nb201", evaluation="benchmark", max_cost="latency:3"), "builds none"),
        (dict(space="nb201", evaluation="shared", strategy="gdas", max_cost="params:1e5"), "argmax"),
    ):
        with pytest.raises(config_lib.ConfigError, match=re.escape(message)):
            config_lib.SearchConfig(**changes).resolved()
