"""The project's strategies as Keras Tuner oracles against Keras Tuner's own, on
NAS-Bench-201 written as a hypermodel.

  python bench/keras_tuner_nb201.py [--seeds 30] [--trials 300] [--budgets 50,100,300]

The hypermodel has six `hp.Choice` edges of the benchmark's five ops; a trial's score is
the cell's CIFAR-10 200-epoch test accuracy in the vendored table (no training: the oracle
itself is what is measured, so hundreds of trials per run are cheap; the table is an
oracle reward, docs/NB201.md). Every oracle runs through a real `kt.Tuner` with the same
seeds: `ControllerOracle` (children_per_step 5), `StrategyOracle` with evolution
(population 10, tournament 3), TPE and the table REINFORCE, against Keras Tuner's
`RandomSearchOracle` and `BayesianOptimizationOracle` (seconds per trial: fewer seeds and
trials, `--slow_seeds`, `--slow_trials`). Hyperband does not apply: it
allocates epochs, and a table lookup has none. For each budget N: the best accuracy among
the first N trials (mean, sd, 95% bootstrap interval over seeds; Mann-Whitney p against
Keras Tuner's random search), and each oracle's trials per second through the tuner,
beside this project's own loop (`search.run_search`, random search) on the same table.
Writes bench/results/keras_tuner_nb201.md.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras_tuner as kt  # noqa: E402
import numpy as np  # noqa: E402

import keras_tuner_oracles as kto  # noqa: E402
import nb201  # noqa: E402
import search  # noqa: E402
import stats  # noqa: E402
from state_space import NB201_OPS  # noqa: E402

BENCHMARK = nb201.Benchmark("cifar10")
OBJECTIVE = kt.Objective("accuracy", "max")


def nb201_hypermodel(hp):
    for edge in range(6):
        hp.Choice(f"edge{edge}", list(NB201_OPS))


class TableTuner(kt.Tuner):
    """A trial's score is the table's accuracy of its cell (no model is built)."""

    def run_trial(self, trial, *args, **kwargs):
        values = trial.hyperparameters.values
        return {"accuracy": BENCHMARK.accuracy(tuple(values[f"edge{e}"] for e in range(6)))}


def kt_seed(seed):
    """Keras Tuner's seed for our seed `seed`. Its oracles draw value i of a run from
    random.Random(seed + i), so the runs of seeds s and s + 1 share all but one draw,
    shifted by one: consecutive seeds are not independent runs. Seeds this far apart
    share no draw within a run of fewer than 100,003 values (and 0 would mean "random")."""
    return 1 + seed * 100_003


def oracles(objective):
    """name -> function (max_trials, seed) -> a fresh oracle for `objective`."""
    return {
        "ControllerOracle": lambda n, seed: kto.ControllerOracle(
            objective=objective, max_trials=n, seed=seed, children_per_step=5),
        'StrategyOracle("evolution")': lambda n, seed: kto.StrategyOracle(
            "evolution", objective=objective, max_trials=n, seed=seed, children_per_step=5,
            population_size=10, sample_size=3),
        'StrategyOracle("tpe")': lambda n, seed: kto.StrategyOracle(
            "tpe", objective=objective, max_trials=n, seed=seed, children_per_step=1),
        'StrategyOracle("reinforce_table")': lambda n, seed: kto.StrategyOracle(
            "reinforce_table", objective=objective, max_trials=n, seed=seed, children_per_step=1),
        "kt RandomSearchOracle": lambda n, seed: kt.oracles.RandomSearchOracle(
            objective=objective, max_trials=n, seed=kt_seed(seed)),
        "kt BayesianOptimizationOracle": lambda n, seed: kt.oracles.BayesianOptimizationOracle(
            objective=objective, max_trials=n, seed=kt_seed(seed)),
    }


ORACLES = oracles(OBJECTIVE)
BASELINE = "kt RandomSearchOracle"
# Seconds per trial (a Gaussian process refitted, its acquisition optimized from 50 starts,
# every trial): fewer seeds and trials (--slow_seeds, --slow_trials).
SLOW = ("kt BayesianOptimizationOracle",)


def run(name, trials, seed, directory):
    oracle = ORACLES[name](trials, seed)
    tuner = TableTuner(oracle=oracle, hypermodel=nb201_hypermodel, directory=directory,
                       project_name=f"{name}-{seed}".replace('"', "").replace(" ", "_"),
                       overwrite=True)
    started = time.perf_counter()
    tuner.search(verbose=0)
    seconds = time.perf_counter() - started
    scores = [oracle.trials[t].score for t in oracle.start_order]
    return np.maximum.accumulate(100 * np.asarray(scores, dtype=float)), seconds


def compare(names, run_one, args):
    """Each oracle's best-so-far curves over seeds ({name: array seeds x trials}) and
    trials per second, from `run_one(name, trials, seed) -> (curve, seconds)`."""
    best, rate = {}, {}
    for name in names:
        curves, seconds = [], 0.0
        slow = name in SLOW
        seeds, trials = (args.slow_seeds, args.slow_trials) if slow else (args.seeds, args.trials)
        for seed in range(seeds):
            curve, s = run_one(name, trials, seed)
            curves.append(curve)
            seconds += s
        best[name] = np.array(curves)
        rate[name] = seeds * trials / seconds
        print(f"{name}: {rate[name]:.2f} trials/s; best at {trials}: "
              f"{best[name][:, -1].mean():.2f}", flush=True)
    return best, rate


def table(names, best, rate, budgets, seeds):
    """The markdown rows: each oracle's best at each budget against BASELINE's."""
    lines = [
        "| oracle | " + " | ".join(f"N = {n}: mean (sd) [interval], p" for n in budgets)
        + " | trials/s |",
        "| --- |" + " --- |" * (len(budgets) + 1),
    ]
    for name in names:
        cells = []
        for n in budgets:
            if n > best[name].shape[1]:
                cells.append("")
                continue
            values = best[name][:, n - 1]
            mean, sd = stats.mean_std(values)
            low, high = stats.bootstrap_interval(values)
            p = "" if name == BASELINE or BASELINE not in best else (
                f", p {stats.mann_whitney(values, best[BASELINE][:, n - 1])[1]:.2g}")
            if len(values) != seeds:
                p += f" ({len(values)} seeds)"
            cells.append(f"{mean:.2f} ({sd:.2f}) [{low:.2f}, {high:.2f}]{p}")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {rate[name]:.2f} |")
    return lines


def arguments(doc, seeds, trials, budgets, out):
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=seeds)
    parser.add_argument("--trials", type=int, default=trials)
    parser.add_argument("--budgets", default=budgets)
    parser.add_argument("--oracles", default=",".join(ORACLES))
    parser.add_argument("--slow_seeds", type=int, default=3,
                        help="Seeds of the Bayesian optimisation oracle (seconds per trial).")
    parser.add_argument("--slow_trials", type=int, default=50)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / out))
    return parser.parse_args()


def main():
    args = arguments(__doc__, 30, 300, "50,100,300", "keras_tuner_nb201.md")
    budgets = [int(b) for b in args.budgets.split(",")]
    names = args.oracles.split(",")
    directory = tempfile.mkdtemp(prefix="nas-bench-kt-")
    started = time.perf_counter()
    best, rate = compare(names, lambda name, n, seed: run(name, n, seed, directory), args)
    loop_started = time.perf_counter()
    loop_trials = min(args.trials, 300) * 3
    for seed in range(3):
        config = search.SearchConfig(space="nb201", evaluation="benchmark", strategy="random",
                                     trials=loop_trials // 3, seed=seed, tensorboard=False,
                                     logdir=directory, run_name=f"loop-{seed}")
        search.run_search(config, out=lambda line: None)
    loop_rate = loop_trials / (time.perf_counter() - loop_started)
    lines = [
        "# The strategies as Keras Tuner oracles on NAS-Bench-201 (a hypermodel of six choices)",
        "",
        f"`python bench/keras_tuner_nb201.py --seeds {args.seeds} --trials {args.trials} "
        f"--budgets {args.budgets}`; {time.perf_counter() - started:.0f} s in all. Best CIFAR-10 "
        f"test accuracy (%) among the first N trials; 95% bootstrap interval over {args.seeds} "
        f"seeds; p: two-sided Mann-Whitney against {BASELINE} at the same N. Best cell: "
        f"{100 * BENCHMARK.best():.2f}.",
        "",
        *table(names, best, rate, budgets, args.seeds),
    ]
    lines += ["", f"This project's own loop (`search.run_search`, random search, no TensorBoard) "
              f"on the same table: {loop_rate:.1f} trials/s ({loop_trials} trials)."]
    text = "\n".join(lines) + "\n"
    pathlib.Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
