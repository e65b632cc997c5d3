"""The assessment on NAS-Bench-201: the statistics on inputs with known answers, the
per-budget metrics of a run against the table, and assess.py's in-process grid (its
runs identical to train.py's, its shards, its reports, its bad input)."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_script, start_background

import benchmark_report
import nb201
import poisoning
import state_space
import stats

ROOT = Path(__file__).resolve().parents[1]
GRID = [
    "--space=nb201", "--evaluation=benchmark", "--strategies=controller,random", "--trials=120",
    "--children_per_step=8", "--seeds=0,1", "--poison=none", "--poison_instances=5",
    "--budgets=40,120,5000", "--notensorboard",
]
TIME_COLUMNS = {"train_seconds", "seconds", "elapsed_seconds"}


def background_jobs(folder):
    """The grid in two processes (--jobs=2: shards), and one of its runs by train.py."""

    def grid():
        return folder / "grid", subprocess.run(
            [sys.executable, "assess.py", *GRID, "--jobs=2", f"--out={folder / 'grid'}"],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
        )

    def alone():  # A child of the tests' fork server (conftest.run_script): train.py's run.
        return folder / "alone", run_script(
            ["train.py", "--space=nb201", "--evaluation=benchmark", "--trials=120",
             "--children_per_step=8", "--seed=1", "--poison=none", "--poison_instances=5",
             "--notensorboard", f"--logdir={folder}", "--run_name=alone"],
        )

    return {"grid": grid, "alone": alone}


@pytest.fixture(scope="module")
def jobs():
    futures = start_background(sys.modules[__name__])
    return {name: f.result() for name, f in futures.items()}


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------- statistics


def test_the_bootstrap_interval_of_a_constant_is_that_constant():
    assert stats.bootstrap_interval([0.93] * 30) == pytest.approx((0.93, 0.93))


def test_the_bootstrap_interval_of_a_large_sample_is_the_normal_one():
    rng = np.random.default_rng(1)
    x = rng.normal(5.0, 2.0, size=2000)
    low, high = stats.bootstrap_interval(x, resamples=4000)
    half = 1.959964 * x.std(ddof=1) / math.sqrt(x.size)  # The normal interval's half width.
    assert low < x.mean() < high
    assert (high - low) / 2 == pytest.approx(half, rel=0.1)
    assert stats.bootstrap_interval(x, resamples=4000) == (low, high)  # Seeded.


def test_the_interval_of_a_difference_covers_both_samples_spread():
    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 1.0, 4000), rng.normal(0.0, 2.0, 4000)
    low, high = stats.bootstrap_difference(a, b, resamples=4000)
    half = 1.959964 * math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert low < a.mean() - b.mean() < high
    assert (high - low) / 2 == pytest.approx(half, rel=0.1)
    assert stats.bootstrap_difference([2.0] * 5, [1.0] * 9) == pytest.approx((1.0, 1.0))


def test_mann_whitney_gives_the_exact_p_of_fully_separated_samples():
    # Three against three, every value of one above the other: U = 9, and the exact
    # two-sided p is 2 / C(6, 3) = 0.1.
    u, p = stats.mann_whitney([4, 5, 6], [1, 2, 3])
    assert u == 9 and p == pytest.approx(0.1)
    assert stats.mann_whitney([1, 2, 3], [4, 5, 6]) == pytest.approx((0, 0.1))
    assert stats.mann_whitney([0.5] * 5, [0.5] * 7)[1] == 1.0
    assert stats.mann_whitney(np.arange(30), np.arange(30) + 100)[1] < 1e-9


# ---------------------------------------------------------------------- per-run metrics


def _rows(benchmark, cells, poisoned=None):
    table = benchmark.table
    edges = [f"edge_{a}_{b}" for a, b in state_space.NB201_EDGES]
    rows = []
    for i, row in enumerate(cells):
        ops = [state_space.NB201_OPS[o] for o in table.ops[row]]
        rows.append({
            **dict(zip(edges, ops)),
            "architecture": table.strings[row],
            "test200_accuracy": f"{table.accuracy[benchmark.dataset][row]:.6f}",
            "poisoned_layers": str(poisoned[i] if poisoned is not None else sum(o == "none" for o in ops)),
        })
    return rows


def test_the_metrics_of_a_run_are_those_of_the_table_at_every_budget():
    benchmark = nb201.Benchmark("cifar10")
    acc = benchmark.table.accuracy["cifar10"]
    order = np.argsort(-acc, kind="stable")
    rng = np.random.default_rng(0)
    # 40 cells from below the top 1%, with the 3rd best cell at query 25.
    cells = list(rng.choice(order[1000:], size=40, replace=False))
    cells[24] = int(order[2])
    space = state_space.nb201_space()
    m = benchmark_report.run_metrics(benchmark_report.parse_run(_rows(benchmark, cells), benchmark, space), benchmark, space, budgets=(10, 40, 100))
    assert [x["budget"] for x in m] == [10, 40]  # 100 is past the run's 40 queries.
    first10 = max(acc[cells[:10]])
    assert m[0]["pick_accuracy"] == pytest.approx(first10, abs=1e-6)
    assert m[0]["regret"] == pytest.approx(acc.max() - first10, abs=1e-6)
    assert m[0]["rank"] == 1 + int(np.sum(acc > first10 + 1e-9))
    assert m[0]["queries_to_top"] is None and m[1]["queries_to_top"] == 25
    assert m[1]["rank"] == 3 and m[1]["regret_in_space"] == pytest.approx(m[1]["regret"])
    assert m[0]["poison_rate_q1"] is None  # Nothing is poisoned in a clean space.
    # A run whose queries a simulated budget counted: its last query is the budget `end`.
    ended = benchmark_report.run_metrics(benchmark_report.parse_run(_rows(benchmark, cells), benchmark, space),
                                         benchmark, space, budgets=(10, 100), end=True)
    assert [(x["budget"], x["queries"]) for x in ended] == [(10, 10), (benchmark_report.END, 40)]
    assert ended[1]["pick_accuracy"] == m[1]["pick_accuracy"]  # The same 40 queries.


def test_budget_ends_sort_after_the_query_counts_in_the_summary_verdict_and_table(tmp_path):
    end = benchmark_report.END
    records = [
        {"setting": "p", "strategy": s, "seed": seed, "budget": b, "queries": q, "pick_accuracy": a,
         "regret": 0.9437 - a, "regret_in_space": 0.0, "rank": 10, "poison_rate_q1": r,
         "poison_rate_q2": r, "poison_rate_q3": r, "poison_rate_q4": r, "queries_to_top": None}
        for seed in (0, 1)
        for s, b, q, a, r in [("controller", end, 120 + seed, 0.93, 0.2), ("random", 50, 50, 0.92, 0.55),
                              ("controller", 50, 50, 0.925, 0.4), ("random", end, 140 + seed, 0.931, 0.56)]
    ]
    summary = benchmark_report.summarize(records)
    by_key = {(r["strategy"], r["budget"]): r for r in summary}
    assert by_key[("controller", end)]["queries_mean"] == 120.5
    v = benchmark_report.verdicts(summary, {"p": 5 / 9})["p"]
    assert list(v["by_budget"]) == [50, end] and v["first"] == end
    path = tmp_path / "benchmark.md"
    benchmark_report.write_markdown(path, summary, {"p": v}, 8, nb201.Benchmark("cifar10", metric="valid12"))
    text = path.read_text()
    rows = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ") and "| controller |" in line]
    assert rows == ["50", "end (120.5)"]
    assert "rewards: CIFAR-10 12-epoch validation accuracy" in text and "the budget's end" in text


def test_poison_rates_per_quarter_and_regret_in_a_reduced_space():
    benchmark = nb201.Benchmark("cifar10")
    space = poisoning.poison(state_space.nb201_space(), "none", instances=5)
    cells = list(range(8))
    poisoned = [6, 6, 3, 3, 0, 0, 1, 2]  # Quarters of 2: 1.0, 0.5, 0.0, 0.25.
    m = benchmark_report.run_metrics(benchmark_report.parse_run(_rows(benchmark, cells, poisoned), benchmark, space), benchmark, space, budgets=(8,))[0]
    assert [m[f"poison_rate_q{q}"] for q in (1, 2, 3, 4)] == pytest.approx([1.0, 0.5, 0.0, 0.25])
    removed = poisoning.remove_ops(state_space.nb201_space(), "nor_conv_3x3")
    rows, _ = benchmark.reachable_rows(removed)
    inside = [int(r) for r in rows[:8]]
    m = benchmark_report.run_metrics(benchmark_report.parse_run(_rows(benchmark, inside), benchmark, removed), benchmark, removed, budgets=(8,))[0]
    best_inside = benchmark.table.accuracy["cifar10"][rows].max()
    assert m["regret_in_space"] == pytest.approx(best_inside - m["pick_accuracy"], abs=1e-9)
    assert m["regret"] > m["regret_in_space"]  # The best cell has a 3x3 conv.


def test_the_verdict_holds_where_the_rate_is_below_half_and_says_when_first():
    summary = [
        {"setting": "p", "strategy": s, "budget": b, "poison_rate_q4": r}
        for s, b, r in [("controller", 100, 0.4), ("random", 100, 0.55), ("controller", 300, 0.2),
                        ("random", 300, 0.56), ("controller", 1000, 0.1), ("random", 1000, 0.55)]
    ]
    v = benchmark_report.verdicts(summary, {"p": 5 / 9})["p"]
    assert v["first"] == 300
    assert [v["by_budget"][b][2] for b in (100, 300, 1000)] == [False, True, True]


# ---------------------------------------------------------------------- assess.py


def test_the_grid_runs_in_two_shards_and_its_runs_are_train_pys(jobs):
    out, proc = jobs["grid"]
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-1500:]
    alone_dir, alone = jobs["alone"]
    assert alone.returncode == 0, alone.stderr[-1500:]
    # The in-process run (after other runs in its process) is the lone train.py run.
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIME_COLUMNS} for r in rows]
    assert strip(_csv(out / "runs" / "poison-none-k5-controller-seed1" / "history.csv")) == strip(
        _csv(alone_dir / "history.csv")
    )
    records = _csv(out / "benchmark.csv")
    assert len(records) == 8 * 2  # 8 runs, budgets 40 and 120 (5000 is past --trials).
    assert {r["budget"] for r in records} == {"40", "120"}
    text = (out / "benchmark.md").read_text()
    assert "## poison-none-k5" in text and "first holds at" in text and "8 of 8 runs" in text
    assert (out / "regret.png").stat().st_size > 0 and (out / "poison_smoothed.png").exists()
    assert len(_csv(out / "results.csv")) == 8


def test_running_the_grid_again_reads_it_back(jobs, tmp_path):
    out, _ = jobs["grid"]
    before = (out / "benchmark.csv").read_text()
    # A folder made before a setting existed holds no value for it: its default.
    grid = json.loads((out / "assess.json").read_text())
    del grid["budget"]["benchmark_noise"]
    (out / "assess.json").write_text(json.dumps(grid))
    again = subprocess.run([sys.executable, "assess.py", *GRID, f"--out={out}"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-1500:]
    assert (out / "benchmark.csv").read_text() == before


@pytest.mark.parametrize(
    "flag, wanted",
    [("--budgets=0,100", "--budgets must be integers >= 1"),
     ("--budgets=ten", "--budgets must be integers >= 1"),
     ("--shard=3/2", "--shard is internal"),
     ("--reach=2", "--reach is an accuracy, in (0, 1]")],
)
def test_bad_budgets_and_shards_get_one_line_and_status_2(flag, wanted, tmp_path):
    proc = subprocess.run([sys.executable, "assess.py", *GRID, flag, f"--out={tmp_path / 'x'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and wanted in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------- reward errors


def test_a_persistent_error_is_the_same_whenever_its_cell_is_asked():
    errors = nb201.RewardErrors(cell_noise=0.02, seed=4)
    table = nb201.load_table()
    offsets = [errors.offset(row, table.ops[row], query) for query, row in enumerate([7, 9, 7, 7])]
    assert offsets[0] == offsets[2] == offsets[3] != offsets[1]
    assert nb201.RewardErrors(cell_noise=0.02, seed=4).offset(7, table.ops[7], 99) == offsets[0]
    many = np.array([errors.offset(r, table.ops[r], 0) for r in range(0, nb201.CELLS, 5)])
    assert abs(many.mean()) < 0.002 and many.std() == pytest.approx(0.02, rel=0.05)


def test_fresh_noise_is_new_on_every_query_and_the_same_for_the_same_query():
    errors = nb201.RewardErrors(noise=0.01, seed=2)
    ops = nb201.load_table().ops[5]
    draws = np.array([errors.offset(5, ops, q) for q in range(4000)])
    assert len(set(draws)) == 4000 and abs(draws.mean()) < 0.001
    assert draws.std() == pytest.approx(0.01, rel=0.05)
    assert errors.offset(5, ops, 17) == draws[17] != nb201.RewardErrors(noise=0.01, seed=3).offset(5, ops, 17)


def test_an_op_bias_adds_its_bonus_once_per_edge_that_uses_the_op():
    benchmark = nb201.Benchmark("cifar10", errors=nb201.RewardErrors(bias=tuple(nb201.parse_bias("none:0.01,skip_connect:-0.002").items())))
    exact = nb201.Benchmark("cifar10")
    cell = ("none", "none", "skip_connect", "none", "nor_conv_3x3", "avg_pool_3x3")
    assert benchmark.query(cell)[0] == pytest.approx(exact.query(cell)[0] + 3 * 0.01 - 0.002)


def test_a_noisy_search_repeats_and_resumes_exactly(tmp_path):
    import config as config_lib  # pylint: disable=import-outside-toplevel
    import search  # pylint: disable=import-outside-toplevel

    settings = dict(space="nb201", evaluation="benchmark", strategy="controller", trials=160,
                    benchmark_noise=0.02, benchmark_cell_noise=0.01, benchmark_bias="none:0.005",
                    tensorboard=False, logdir=str(tmp_path))
    search.run_search(config_lib.SearchConfig(run_name="whole", **settings), out=lambda line: None)
    search.run_search(config_lib.SearchConfig(run_name="again", **settings), out=lambda line: None)
    calls = []
    with pytest.raises(KeyboardInterrupt):
        search.run_search(config_lib.SearchConfig(run_name="cut", **settings), out=lambda line: None,
                          should_stop=lambda: calls.append(1) or len(calls) > 9)
    search.run_search(config_lib.SearchConfig(run_name="cut", **settings), out=lambda line: None, resume=True)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIME_COLUMNS} for r in rows]
    whole = strip(_csv(tmp_path / "whole" / "history.csv"))
    assert whole == strip(_csv(tmp_path / "again" / "history.csv"))
    assert whole == strip(_csv(tmp_path / "cut" / "history.csv"))
    # The rewards are not the table's: the pick's true accuracy is what best.json reports.
    exact = nb201.Benchmark("cifar10")
    edges = [f"edge_{a}_{b}" for a, b in state_space.NB201_EDGES]
    assert any(abs(float(r["test200_accuracy"]) - exact.query([r[e] for e in edges])[0]) > 1e-3 for r in whole)
