"""NAS-Bench-201: the cell's strings, the table's lookups, the network, and searches on it.

The oracles: the vendored CSV read here on its own (every row), the benchmark's
published figures (Dong & Yang 2020: best cells 94.37 / 73.51 / 47.31, the all-skip cell
54.30, 1,531,546 and 73,306 parameters), a reachability check written here, Keras's
own parameter count, and the order statistics of random search computed by brute
force on small spaces.
"""

import csv
import gzip
import hashlib
import itertools
import json
import pathlib
import signal
import sys
import time

import keras
import numpy as np
import pytest
from conftest import TABLE_STRATEGIES, run_script, start_background, start_script, tiny_flags

import config as config_lib
import manager
import nb201
import operations
import poisoning
import run_log
import search
import state_space
import templates
from state_space import NB201_EXAMPLE, NB201_OPS, nb201_space

ROOT = pathlib.Path(__file__).resolve().parents[1]
ALL_3X3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
NO_CONV = "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|skip_connect~1|skip_connect~2|"
# Node 3 takes only zeros: no path from the cell's input to its output.
DISCONNECTED = "|skip_connect~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|none~2|"


@pytest.fixture(scope="module")
def rows():
    """The vendored table, read with nothing but csv: (string, cifar10, cifar100, imagenet) per row."""
    with gzip.open(ROOT / "embedded" / "nb201_accuracies.csv.gz", "rt", newline="") as f:
        return [
            (r["ArchitectureString"], *(float(r[c]) for c in nb201._COLUMNS.values()))
            for r in csv.DictReader(f)
        ]


@pytest.fixture(scope="module")
def bench():
    return nb201.Benchmark("cifar10")


def _connected(ops):
    """Is node 3 reachable from node 0 through edges that are not `none`?"""
    reach = {0}
    for (i, j), op in zip(state_space.NB201_EDGES, ops):
        if op != "none" and i in reach:
            reach.add(j)
    return 3 in reach


# ---------------------------------------------------------------------- the vendored copy


def test_the_vendored_table_is_the_attributed_file():
    digest = hashlib.sha256((ROOT / "embedded" / "nb201_accuracies.csv.gz").read_bytes()).hexdigest()
    readme = (ROOT / "embedded" / "README.md").read_text()
    assert digest in readme and "NATS-Bench" in readme and "MIT" in readme


def test_the_table_holds_the_published_figures(rows, bench):
    assert len(rows) == nb201.CELLS == 15_625 == len({r[0] for r in rows})
    best = [max(r[k] for r in rows) for k in (1, 2, 3)]
    assert [round(b, 2) for b in best] == [94.37, 73.51, 47.31]
    space = nb201_space()
    assert round(100 * bench.accuracy(space.from_string(ALL_SKIP)), 2) == 54.30
    for d, b in zip(nb201.DATASETS, best):
        assert bench.table.best(d) == pytest.approx(b / 100)


def test_cells_without_a_path_to_the_output_are_the_341_at_chance(rows):
    disconnected = [r for r in rows if not _connected(state_space.parse_nb201_string(r[0]))]
    assert len(disconnected) == 341
    assert all(r[1] == pytest.approx(10.0, abs=0.01) for r in disconnected)
    connected = [r[1] for r in rows if _connected(state_space.parse_nb201_string(r[0]))]
    assert min(connected) > 10.0


# ---------------------------------------------------------------------- strings


def test_every_string_of_the_table_round_trips_and_looks_up_its_own_row(rows, bench):
    space = nb201_space()
    for index, (text, c10, c100, img) in enumerate(rows):
        architecture = space.from_string(text)
        assert space.to_string(architecture) == text
        assert bench.row(architecture) == index
        accuracy, params = bench.query(architecture)
        assert accuracy == c10 / 100
        assert bench.accuracy(architecture, "cifar100") == c100 / 100
        assert bench.accuracy(architecture, "imagenet16-120") == img / 100
        assert params == nb201.network_params(architecture)


def test_an_architecture_is_the_ops_in_the_benchmarks_edge_order():
    space = nb201_space()
    assert space.from_string(NB201_EXAMPLE) == (
        "nor_conv_3x3",  # 0->1
        "nor_conv_3x3",  # 0->2
        "avg_pool_3x3",  # 1->2
        "skip_connect",  # 0->3
        "nor_conv_3x3",  # 1->3
        "skip_connect",  # 2->3
    )
    assert [d.key for d in space.decisions] == [
        "edge_0_1", "edge_0_2", "edge_1_2", "edge_0_3", "edge_1_3", "edge_2_3"
    ]
    assert space.num_architectures == 15_625
    assert space.format(space.from_string(f"  {NB201_EXAMPLE}\n")) == NB201_EXAMPLE


@pytest.mark.parametrize(
    "text, message",
    [
        (3, "is text of the form"),
        ("", "has 3 nodes separated by '+'"),
        ("|none~0|+|none~0|none~1|", "has 2"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "between bars"),
        ("|none~0|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "node 1 of"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 takes exactly 2"),
        ("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|", "must be op~1"),
        ("|none|+|none~0|none~1|+|none~0|none~1|none~2|", "must be op~0"),
        ("|conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_3x3' on edge 0->1"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|zero~2|", "the benchmark's ops: none, skip_connect"),
    ],
)
def test_a_bad_string_is_one_error_naming_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=None) as raised:
        nb201_space().from_string(text)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_string_with_an_op_the_space_lacks_is_refused_by_name():
    space = poisoning.remove_ops(nb201_space(), "nor_conv_3x3")
    with pytest.raises(ValueError, match="op 'nor_conv_3x3' of edge 0->1 is not a choice of this space"):
        space.from_string(NB201_EXAMPLE)


# ---------------------------------------------------------------------- ranks, regrets, params


def test_rank_and_regret_are_counted_against_every_cell(rows, bench):
    space = nb201_space()
    c10 = np.array([r[1] for r in rows]) / 100
    for index in (0, 1, 777, int(np.argmax(c10)), int(np.argmin(c10))):
        summary = bench.summary(space.from_string(rows[index][0]), space)
        assert summary["nb201_index"] == index and summary["nb201_string"] == rows[index][0]
        assert summary["benchmark_rank"]["cifar10"] == 1 + int(np.sum(c10 > c10[index]))
        assert summary["benchmark_regret"]["cifar10"] == pytest.approx(c10.max() - c10[index])
        assert summary["cells_in_space"] == 15_625 and summary["regret_in_space"] == pytest.approx(
            c10.max() - c10[index]
        )


def test_the_network_has_the_benchmarks_parameter_counts():
    space = nb201_space()
    for text, expected in ((ALL_3X3, 1_531_546), (NO_CONV, 73_306)):
        architecture = space.from_string(text)
        model = templates.build_nb201(space, architecture, (32, 32, 3), 10)
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        assert trainable == expected == nb201.network_params(architecture)
        keras.backend.clear_session()


def test_the_parameter_arithmetic_matches_keras_on_small_networks():
    space, rng = nb201_space(), np.random.default_rng(1)
    for architecture in space.sample(rng, 2):
        model = templates.build_nb201(space, architecture, (8, 8, 1), 4, channels=3, cells=2)
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        assert trainable == nb201.network_params(
            architecture, channels=3, cells=2, num_classes=4, input_channels=1
        )
        keras.backend.clear_session()


def test_a_cell_without_a_path_from_its_input_predicts_a_constant():
    space, x = nb201_space(), np.random.default_rng(0).uniform(size=(16, 8, 8, 1)).astype("float32")
    for text, constant in ((DISCONNECTED, True), (NB201_EXAMPLE, False)):
        model = templates.build_nb201(space, space.from_string(text), (8, 8, 1), 4, channels=4, cells=1)
        for training in (False, True):
            p = keras.ops.convert_to_numpy(model(x, training=training))
            assert (np.ptp(p, axis=0).max() == 0.0) == constant, (text, training)
        keras.backend.clear_session()


def test_the_ops_are_the_benchmarks():
    x = np.arange(1, 19, dtype="float32").reshape(1, 3, 3, 2)
    inputs = keras.Input((3, 3, 2))
    spec = operations.EdgeSpec(0, 2, prefix="t")
    none = keras.Model(inputs, operations.OPS["none"](inputs, spec))
    pool = keras.Model(inputs, operations.OPS["avg_pool_3x3"](inputs, spec))
    skip = keras.Model(inputs, operations.OPS["skip_connect"](inputs, spec))
    assert not keras.ops.convert_to_numpy(none(x)).any()  # A real zero.
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(skip(x)), x)
    pooled = keras.ops.convert_to_numpy(pool(x))
    # The corner averages its 4 pixels inside the map: padding is not counted.
    assert pooled[0, 0, 0, 0] == pytest.approx(np.mean(x[0, :2, :2, 0]))
    assert pooled[0, 1, 1, 1] == pytest.approx(np.mean(x[0, :, :, 1]))
    keras.backend.clear_session()


# ---------------------------------------------------------------------- poisoning on the table


def test_poisoned_copies_look_up_their_op_and_count_as_poison(bench):
    space = poisoning.poison(nb201_space(), "none", instances=5)
    choices = space.states["op"]
    assert choices[:5] == NB201_OPS and choices[5:] == ("none#2", "none#3", "none#4", "none#5")
    assert space.poisoned["op"] == frozenset({"none", "none#2", "none#3", "none#4", "none#5"})
    assert space.poison_prior() == pytest.approx(5 / 9)  # k / (4 clean + k)
    plain = nb201_space().from_string(DISCONNECTED)
    copy = tuple(f"{op}#4" if op == "none" else op for op in plain)
    assert bench.row(copy) == bench.row(plain) and bench.query(copy) == bench.query(plain)
    assert space.poisoned_layers(copy) == 3 and space.format(copy) == DISCONNECTED
    # k = 1 marks the op without widening the space.
    marked = poisoning.poison(nb201_space(), "avg_pool_3x3")
    assert marked.states["op"] == NB201_OPS and marked.poison_prior() == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="already a choice"):
        poisoning.poison(marked, "avg_pool_3x3", instances=3)


def test_removed_ops_shrink_the_reachable_table(rows, bench):
    space = poisoning.remove_ops(nb201_space(), "nor_conv_3x3")
    reachable, p = bench.reachable_rows(space)
    expected = [i for i, r in enumerate(rows) if "nor_conv_3x3" not in r[0]]
    assert list(reachable) == expected and len(expected) == 4**6
    assert p.sum() == pytest.approx(1.0)
    best = max(rows[i][1] for i in expected) / 100
    summary = bench.summary(space.from_string(rows[expected[0]][0]), space)
    assert summary["cells_in_space"] == 4096 and summary["best_in_space"] == best


def test_a_degraded_op_is_not_in_the_table():
    space = poisoning.poison(nb201_space(), "dropout1.0")
    with pytest.raises(nb201.BenchmarkError, match="no op 'dropout1.0'; it knows none, skip_connect"):
        nb201.Benchmark().reachable_rows(space)


# ---------------------------------------------------------------------- order statistics


def _brute_force_best(space, bench, n):
    """E[max of n uniform draws of `space`] by enumerating every draw of the choices."""
    accuracy = {}
    for choices in itertools.product(*(d.choices for d in space.decisions)):
        accuracy[choices] = bench.accuracy(choices)
    values = np.array(list(accuracy.values()))
    if n == 1:
        return float(values.mean())
    best = np.maximum.outer(values, values)
    return float(best.mean())


@pytest.mark.parametrize("n", [1, 2])
def test_the_expected_best_of_random_search_is_its_order_statistic(bench, n):
    small = poisoning.remove_ops(nb201_space(), keep=["none", "nor_conv_3x3"])
    assert bench.expected_best_of_random(n, small) == pytest.approx(_brute_force_best(small, bench, n))
    # Copies make `none` three of four choices: non-uniform over the cells.
    weighted = poisoning.poison(small, "none", instances=3)
    assert bench.expected_best_of_random(n, weighted) == pytest.approx(
        _brute_force_best(weighted, bench, n)
    )


def test_the_expected_best_of_random_search_matches_the_published_best_of_100(bench):
    # Dong & Yang 2020: "best of N = 100 random cells by test accuracy": 93.84 ± 0.23.
    assert 100 * bench.expected_best_of_random(100) == pytest.approx(93.84, abs=0.05)


def _brute_force_pick(space, bench, n, reward):
    """E[test accuracy of the best-rewarded of n uniform draws of `space`, the first of
    equal rewards], by enumerating every sequence of n draws of the choices."""
    cells = list(itertools.product(*(d.choices for d in space.decisions)))
    rows = [bench.row(c) for c in cells]
    rewards = bench.table.metric(reward, bench.dataset)[rows]
    judged = bench.table.accuracy[bench.dataset][rows]
    # Every sequence of n draws at once: draws[k] is the k-th draw's cell, over all sequences.
    draws = np.stack(np.meshgrid(*[np.arange(len(cells))] * n, indexing="ij")).reshape(n, -1)
    first_best = np.argmax(rewards[draws], axis=0)  # argmax: the first of equal rewards.
    return float(judged[draws[first_best, np.arange(draws.shape[1])]].mean())


@pytest.mark.parametrize("dataset, reward", [("cifar10", "valid12"), ("imagenet16-120", "valid12"),
                                             ("cifar100", "valid200"), ("cifar10", "test200")])
def test_the_expected_pick_of_random_search_rewarded_by_another_metric(dataset, reward):
    """The exact expectation of the pick's test accuracy when another metric picks,
    against every sequence of draws; ties of the reward are many among these cells
    (the 24 cells without a path from input to output score alike)."""
    bench = nb201.Benchmark(dataset)
    small = poisoning.remove_ops(nb201_space(), keep=["none", "skip_connect"])
    rewards = bench.table.metric(reward, dataset)[[bench.row(c) for c in itertools.product(
        *(d.choices for d in small.decisions))]]
    assert len(set(rewards.tolist())) < len(rewards)  # Ties, the case the formula groups.
    for n in (1, 2, 3):
        assert bench.expected_best_of_random(n, small, reward=reward) == pytest.approx(
            _brute_force_pick(small, bench, n, reward), rel=1e-12)


def test_the_reward_metrics_read_the_fidelities_and_the_pick_is_judged_by_the_test_accuracy():
    """The other fidelities, read here with nothing but csv, are what each metric rewards;
    the published checks of the file hold."""
    with gzip.open(ROOT / "embedded" / "nb201_fidelities.csv.gz", "rt", newline="") as f:
        raw = list(csv.DictReader(f))
    table = nb201.load_table()
    assert [r["ArchitectureString"] for r in raw] == table.strings
    for (metric, dataset), column in nb201._FIDELITY_COLUMNS.items():
        bench = nb201.Benchmark(dataset, metric=metric)
        expected = np.array([float(r[column]) for r in raw]) / 100
        np.testing.assert_array_equal(bench.rewards, expected)
        row = int(np.argmax(expected))
        architecture = tuple(NB201_OPS[o] for o in table.ops[row])
        assert bench.reward(architecture) == expected[row]
        assert bench.fitness(architecture) == table.accuracy[dataset][row]  # Judged by test200.
        assert bench.column == f"{metric}_accuracy"
    valid200 = nb201.Benchmark("cifar10", metric="valid200").rewards
    assert 100 * valid200.max() == pytest.approx(91.607, abs=1e-3)
    assert np.argmax(valid200) == np.argmax(table.accuracy["cifar10"])  # The best cell: 94.37.
    valid12 = nb201.Benchmark("cifar10", metric="valid12").rewards
    assert 100 * valid12.max() == pytest.approx(84.892, abs=1e-3)
    ranks = [np.argsort(np.argsort(a)) for a in (valid12, table.accuracy["cifar10"])]
    assert np.corrcoef(*ranks)[0, 1] == pytest.approx(0.772, abs=0.002)  # Spearman (few ties).
    with pytest.raises(nb201.BenchmarkError, match="unknown benchmark metric 'valid13'"):
        nb201.Benchmark("cifar10", metric="valid13")


def test_the_time_model_is_least_squares_in_the_op_counts():
    """On cells whose times are made exactly linear the fit recovers the coefficients;
    on the benchmark's 1,000 known cells it explains 99.5% of the variance, and a model
    fitted without a fifth of them predicts that fifth within a few percent."""
    table = nb201.load_table()
    rng = np.random.default_rng(0)
    rows = rng.choice(nb201.CELLS, 300, replace=False)
    truth = nb201.TimeModel(70.0, (-3.0, 40.0, 55.0, 20.0))
    fitted = nb201.TimeModel.fit(table.ops[rows], truth.predict(table.ops[rows]))
    assert fitted.intercept == pytest.approx(70.0) and fitted.per_op == pytest.approx(truth.per_op)
    known, seconds = nb201.load_train_seconds()
    model = nb201.load_time_model()
    predicted = model.predict(table.ops[known])
    assert 1 - np.sum((predicted - seconds) ** 2) / np.sum((seconds - seconds.mean()) ** 2) > 0.99
    held_out = np.arange(len(known)) % 5 == 0
    partial = nb201.TimeModel.fit(table.ops[known[~held_out]], seconds[~held_out])
    error = np.abs(partial.predict(table.ops[known[held_out]]) - seconds[held_out]) / seconds[held_out]
    assert np.median(error) < 0.05
    # A query's cost: the reward's run. cifar10-valid trains on 25k of the 50k images.
    cell = nb201_space().from_string(ALL_3X3)
    row = table.row_of_code[nb201.cell_code(list(cell))]
    base = float(model.predict(table.ops[row])[0])
    assert nb201.Benchmark("cifar10", metric="valid12").seconds(cell) == pytest.approx(base / 2)
    assert nb201.Benchmark("cifar10", metric="valid200").seconds(cell) == pytest.approx(base / 2 * 200 / 12)
    assert nb201.Benchmark("cifar100", metric="valid12").seconds(cell) == pytest.approx(base)
    assert nb201.Benchmark("imagenet16-120", metric="valid12").seconds(cell) is None


def _queries(tmp_path, name, **settings):
    best, _, run_dir = _run_in_process(tmp_path, name, tensorboard=False, **settings)
    with open(run_dir / "history.csv", newline="") as f:
        return best, list(csv.DictReader(f))


@pytest.mark.parametrize("strategy, per_step", [("random", 1), ("evolution", 4), ("tpe", 4)])
def test_a_simulated_budget_stops_before_the_query_that_would_pass_it(tmp_path, strategy, per_step):
    """The same seed without the budget proposes the same queries: the budgeted run holds
    the longest prefix whose simulated seconds fit, and the next query would not; each
    query is charged its cell's modelled time for the reward's run."""
    settings = dict(strategy=strategy, children_per_step=per_step, benchmark_metric="valid12",
                    population_size=10, sample_size=3)
    budget = 3000.0
    best, rows = _queries(tmp_path, "budget", benchmark_seconds=budget, trials=None, **settings)
    _, free = _queries(tmp_path, "free", trials=len(rows) + per_step, **settings)
    bench = nb201.Benchmark("cifar10", metric="valid12")
    costs = [bench.seconds(nb201_space().from_string(r["architecture"])) for r in free]
    assert [r["architecture"] for r in rows] == [r["architecture"] for r in free[: len(rows)]]
    assert [float(r["train_seconds"]) for r in free] == pytest.approx(costs, abs=1e-3)
    spent = sum(costs[: len(rows)])
    assert spent <= budget < spent + costs[len(rows)]
    assert best["stopped_by"] == "benchmark_seconds" and best["trials"] == len(rows)
    assert best["simulated_seconds"] == pytest.approx(spent)
    assert "valid12_accuracy" in rows[0] and best["reward_metric"] == "valid12"
    rewards = [float(r["valid12_accuracy"]) for r in rows]
    assert rewards == pytest.approx([bench.reward(nb201_space().from_string(r["architecture"]))
                                     for r in rows], abs=1e-6)
    # The pick is the first query with the best reward, judged by its test accuracy.
    pick = rows[int(np.argmax(rewards))]
    assert best["nb201_string"] == pick["architecture"]
    assert best["benchmark_fitness"] == bench.fitness(nb201_space().from_string(pick["architecture"]))
    # --trials stays an upper bound.
    capped, few = _queries(tmp_path, "capped", benchmark_seconds=budget, trials=3, **settings)
    assert len(few) == 3 and capped["stopped_by"] == "trials"


def test_a_search_stopped_anywhere_under_a_simulated_budget_resumes_to_the_same_end(tmp_path):
    """Stopped after any query, the last step's (cut by the budget) included, and resumed:
    the same queries, the same pick and the same simulated seconds as without the stop.
    Evolution: a strategy with a state of its own (the population), without the
    controller's start-up in each of the seven searches (the controller's own state
    resumes mid-step in tests/test_strategies.py and test_resume.py)."""
    settings = dict(space="nb201", evaluation="benchmark", strategy="evolution",
                    population_size=6, sample_size=2,
                    children_per_step=4, benchmark_metric="valid12", benchmark_seconds=3000.0,
                    trials=None, tensorboard=False, logdir=str(tmp_path))
    whole = search.run_search(config_lib.SearchConfig(run_name="whole", **settings), out=lambda line: None)
    with open(tmp_path / "whole" / "history.csv", newline="") as f:
        expected = [r["architecture"] for r in csv.DictReader(f)]
    assert whole["stopped_by"] == "benchmark_seconds" and len(expected) % 4 != 0  # The last step cut.
    for stop in (3, len(expected) - 1, len(expected)):
        calls = []
        name = f"cut{stop}"
        with pytest.raises(KeyboardInterrupt):
            search.run_search(config_lib.SearchConfig(run_name=name, **settings), out=lambda line: None,
                              should_stop=lambda: calls.append(1) or len(calls) >= stop)
        again = search.run_search(config_lib.SearchConfig(run_name=name, **settings),
                                  out=lambda line: None, resume=True)
        with open(tmp_path / name / "history.csv", newline="") as f:
            assert [r["architecture"] for r in csv.DictReader(f)] == expected, stop
        for key in ("nb201_string", "simulated_seconds", "trials", "stopped_by"):
            assert again[key] == whole[key], (stop, key)


def _run_in_process(tmp_path, name, **settings):
    config = config_lib.SearchConfig(
        space="nb201", evaluation="benchmark", logdir=str(tmp_path), run_name=name, **settings
    )
    lines = []
    best = search.run_search(config, out=lines.append)
    return best, lines, tmp_path / name


def test_random_search_on_the_loop_finds_the_expected_best(tmp_path, bench):
    """Mean best of 40 seeds of 10 queries through the whole loop, against the exact
    expectation: within 3 standard errors (the seeds are fixed: this cannot flake)."""
    bests = [
        _run_in_process(
            tmp_path, f"s{seed}", strategy="random", trials=10, children_per_step=5,
            seed=seed, tensorboard=False,
        )[0]["test_accuracy"]
        for seed in range(40)
    ]
    expected = bench.expected_best_of_random(10)
    assert abs(np.mean(bests) - expected) < 3 * np.std(bests, ddof=1) / np.sqrt(len(bests))


# ---------------------------------------------------------------------- searches


@pytest.mark.parametrize("strategy", list(TABLE_STRATEGIES))
def test_every_strategy_searches_the_table(tmp_path, rows, strategy):
    trials = 48  # In steps of 8, as configs/nb201.flags searches (each step costs a learning
    # strategy an update, whatever its size).
    best, lines, run_dir = _run_in_process(
        tmp_path, strategy, strategy=strategy, trials=trials, children_per_step=8, poison="none",
        poison_instances=3, **TABLE_STRATEGIES[strategy],
    )
    by_string = {r[0]: r for r in rows}
    with open(run_dir / "history.csv", newline="") as f:
        history = list(csv.DictReader(f))
    assert len(history) == trials == best["trials"]
    for row in history:  # Every fitness is the table's accuracy of the row's cell.
        assert float(row["test200_accuracy"]) == pytest.approx(by_string[row["architecture"]][1] / 100, abs=1e-6)
        ops = [row[f"edge_{i}_{j}"] for i, j in state_space.NB201_EDGES]
        assert int(row["poisoned_layers"]) == sum(state_space.op_of(v) == "none" for v in ops)
    top = max(history, key=lambda r: float(r["test200_accuracy"]))
    assert best["nb201_string"] == top["architecture"] == best["architecture_str"]
    pick = by_string[best["nb201_string"]]
    assert best["benchmark_test_accuracy"] == pytest.approx(
        {"cifar10": pick[1] / 100, "cifar100": pick[2] / 100, "imagenet16-120": pick[3] / 100}
    )
    assert best["test_accuracy"] == best["search_reward"] == best["benchmark_test_accuracy"]["cifar10"]
    assert best["reward_metric"] == "test200" and "val_accuracy" not in history[0]
    assert best["benchmark_rank"]["cifar10"] == 1 + sum(r[1] > pick[1] for r in rows)
    assert best["poison_prior"] == pytest.approx(3 / 7)
    assert "200-epoch test accuracies" in best["benchmark_metric"]
    assert any("search against an oracle" in line for line in lines)
    assert sum(line.startswith("trial ") for line in lines) <= 21  # No flood.
    assert not (run_dir / "best_model.keras").exists()  # Nothing was trained.


def test_a_benchmark_search_commits_per_seconds_not_per_trial(tmp_path, monkeypatch):
    writes = []
    original = run_log.write_json
    monkeypatch.setattr(run_log, "write_json", lambda path, *a, **k: (writes.append(path), original(path, *a, **k)))
    best, _, run_dir = _run_in_process(tmp_path, "commits", strategy="random", trials=4000)
    state_writes = sum(path.endswith("state.json") for path in writes)
    assert best["trials"] == 4000
    assert state_writes < 4000 / 8 / 10  # Far fewer than one per step of 8.
    state = json.loads((run_dir / "state.json").read_text())
    assert state["phase"] == "finished" and state["trial"] == 4000


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"space": "macro", "evaluation": "benchmark"}, "--evaluation=benchmark needs --space=nb201"),
        ({"space": "nb201", "evaluation": "benchmark", "poison": "dropout1.0"}, "which knows none"),
        ({"space": "nb201", "evaluation": "benchmark", "workers": 1}, "use --workers=0"),
        ({"space": "nb201", "evaluation": "benchmark", "benchmark_dataset": "svhn"}, "--benchmark_dataset"),
        ({"space": "nb201", "num_layers": 4}, "an NB201 cell has 6 edges"),
        ({"space": "nb201", "nb201_channels": 0}, "--nb201_channels must be an integer >= 1"),
        ({"space": "nb201", "evaluation": "benchmark", "strategy": "naswot"}, "--strategy=proxy_ranking"),
        ({"space": "nb201", "evaluation": "benchmark", "benchmark_noise": -0.1}, "--benchmark_noise must be"),
        ({"space": "nb201", "evaluation": "benchmark", "benchmark_cell_noise": float("nan")}, "--benchmark_cell_noise must be"),
        ({"space": "nb201", "evaluation": "benchmark", "benchmark_bias": "none:x"}, "op:bonus pairs"),
        ({"space": "nb201", "evaluation": "benchmark", "benchmark_bias": "conv:0.1"}, "op:bonus pairs"),
        ({"space": "nb201", "benchmark_noise": 0.01}, "it needs --evaluation=benchmark"),
        ({"space": "nb201", "evaluation": "benchmark", "strategy": "reinforce_table", "table_lr": 0}, "--table_lr must be > 0"),
        ({"space": "nb201", "evaluation": "benchmark", "benchmark_metric": "valid13"},
         "--benchmark_metric must be one of ['test200', 'valid12', 'valid200'], got 'valid13'"),
        ({"space": "nb201", "benchmark_metric": "valid12"},
         "--benchmark_metric picks the reward of NAS-Bench-201's table: it needs --evaluation=benchmark"),
        ({"space": "nb201", "evaluation": "benchmark", "benchmark_seconds": -5.0},
         "--benchmark_seconds must be a number of seconds > 0, got -5.0"),
        ({"space": "nb201", "evaluation": "benchmark", "benchmark_seconds": 12000.0,
          "benchmark_dataset": "imagenet16-120"}, "--benchmark_seconds needs a known training time"),
        ({"space": "nb201", "benchmark_seconds": 12000.0}, "it needs --evaluation=benchmark"),
        ({"space": "nb201", "evaluation": "benchmark", "trials": None}, "--benchmark_seconds)"),
    ],
)
def test_bad_benchmark_settings_are_one_clear_error(settings, message):
    with pytest.raises(config_lib.ConfigError) as raised:
        config_lib.SearchConfig(**settings).resolved()
    assert message in str(raised.value)


def test_a_benchmark_search_needs_no_workers_by_default():
    c = config_lib.SearchConfig(space="nb201", evaluation="benchmark", trials=10_000).resolved()
    assert c.workers == 0 and c.run_name == "nb201-controller-benchmark-seed0"
    c = config_lib.SearchConfig(space="nb201", evaluation="benchmark", benchmark_metric="valid12").resolved()
    assert c.run_name == "nb201-controller-benchmark-valid12-seed0"  # The reward, named.


def test_nb201_cells_are_scored_by_naswot(tiny_dataset):
    space = nb201_space()
    net = manager.NetworkManager(
        tiny_dataset, space, template="nb201", template_args={"channels": 4, "cells": 1},
        evaluation="naswot", proxy_batch=16,
    )
    connected = net.score(space.from_string(NB201_EXAMPLE))
    assert not connected.failed and np.isfinite(connected.score)
    keras.backend.clear_session()


# ---------------------------------------------------------------------- through train.py

KILLED = ["--space=nb201", "--evaluation=benchmark", "--trials=1200", "--seed=3"]


def _train(*args, timeout=300):
    """The finished command, as a child of the tests' fork server (conftest.run_script)."""
    return run_script(["train.py", *args], timeout=timeout)


def _history(run_dir):
    if not (run_dir / "history.csv").exists():
        return []
    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def _kill_after_a_commit(logdir):
    """Starts a controller search on the table, kills it with SIGKILL once a commit
    after the first step is in state.json and more rows follow it; resumes it."""
    process = start_script(["train.py", *KILLED, f"--logdir={logdir}", "--run_name=killed"])
    state, deadline, committed = logdir / "killed" / "state.json", time.monotonic() + 240, 0
    while time.monotonic() < deadline and process.poll() is None:
        try:
            committed = json.loads(state.read_text())["trial"]
        except (OSError, ValueError, KeyError):
            committed = 0
        if 0 < committed < 1000 and len(_history(logdir / "killed")) > committed + 16:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    committed = json.loads(state.read_text())["trial"]  # What the resume starts from.
    resumed = _train("--resume", f"--logdir={logdir}", "--run_name=killed")
    return process.returncode, committed, resumed


def _trained(logdir):
    return _train(
        *tiny_flags(space="nb201", nb201_channels=2, nb201_cells=1, trials=1, children_per_step=1,
                    train_size=100, val_size=50, batch_size=50, tensorboard=True),
        f"--logdir={logdir}", "--run_name=trained",
    )


def background_jobs(folder):
    return {
        "full": lambda: _train(*KILLED, f"--logdir={folder}", "--run_name=full"),
        "killed": lambda: _kill_after_a_commit(folder),
        "preset": lambda: _train("--flagfile=configs/nb201.flags", f"--logdir={folder}", "--run_name=preset"),
        "trained": lambda: _trained(folder),
        "folder": lambda: folder,
    }


@pytest.fixture(scope="module")
def processes():
    return start_background(sys.modules[__name__])


def test_kill_9_then_resume_in_benchmark_mode_matches_an_uninterrupted_run(processes):
    folder = processes["folder"].result()
    full = processes["full"].result()
    returncode, committed, resumed = processes["killed"].result()
    assert full.returncode == 0, full.stderr[-2000:]
    assert returncode == -signal.SIGKILL and 0 < committed < 1200  # After a commit, mid-run.
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming {folder / 'killed'} at trial {committed + 1}" in resumed.stdout
    compared = ("trial", "step", "architecture", "test200_accuracy", "reward", "baseline", "params")
    full_rows, again = _history(folder / "full"), _history(folder / "killed")
    assert len(full_rows) == len(again) == 1200
    assert [[r[k] for k in compared] for r in again] == [[r[k] for k in compared] for r in full_rows]
    best_full = json.loads((folder / "full" / "best.json").read_text())
    best_again = json.loads((folder / "killed" / "best.json").read_text())
    for key in ("architecture", "nb201_index", "benchmark_test_accuracy", "trial_of_best"):
        assert best_again[key] == best_full[key]


def test_the_preset_runs_1000_queries_and_reports_the_pick(processes):
    proc = processes["preset"].result()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    best = json.loads((processes["folder"].result() / "preset" / "best.json").read_text())
    assert best["trials"] == 1000 and best["benchmark_dataset"] == "cifar10"
    assert f"best cell: {best['nb201_string']}" in proc.stdout
    assert "CIFAR-100" in proc.stdout and "ImageNet16-120" in proc.stdout and "rank" in proc.stdout


def test_small_nb201_cells_train_on_mnist5k_end_to_end(processes):
    proc = processes["trained"].result()
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = processes["folder"].result() / "trained"
    history = _history(run_dir)
    assert len(history) == 1 and all(r["failed"] == "0" for r in history)
    assert all(0.0 <= float(r["val_accuracy"]) <= 1.0 for r in history)
    best = json.loads((run_dir / "best.json").read_text())
    assert best["architecture_str"].count("~") == 6 and (run_dir / "best_model.keras").exists()
    model = keras.models.load_model(run_dir / "best_model.keras")
    assert model.input_shape == (None, 28, 28, 1)
    keras.backend.clear_session()
