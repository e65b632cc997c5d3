"""Every strategy here against Keras Tuner, at equal trials or at equal wall time.

  python bench/compare.py                         # toy space, 32 children, seeds 0,1,2
  python bench/compare.py --space=macro --filters=12 --trials=24 --seeds=0,1
  python bench/compare.py --methods=random,kt_random --seeds=0,1,2,3,4
  python bench/compare.py --time_budget=90        # equal wall time: 90 s of search per run

Every method searches the same space on the same data (mnist5k: --train_size
training images, 500 validation images split off with the run's seed, the 1,000
test images) with the same child training (--epochs, --batch_size, Adam 3e-3) and
the same number of trained children (--trials), or, with --time_budget, the same
wall time of search (each run stops proposing when its next step, or trial, is
expected to end after the budget; no trial limit):

  controller, random, evolution, naswot,  train.py --strategy=... (this project;
  tpe, budget_controller                  naswot: --strategy=proxy_ranking, which
                                          ranks by the NASWOT score by default)
  random_es                               random search with --early_stop=median
  kt_random, kt_bayesian, kt_hyperband    Keras Tuner 1.4 RandomSearch,
                                          BayesianOptimization and Hyperband on a
                                          HyperModel of the same space: one
                                          hp.Choice per decision, the model built by
                                          the same template (manager.build)

Each run is its own process, one after another (so timings do not share the CPU).
The pick of every method is retrained from scratch for --epochs and tested once on
the test split, the same procedure for all (Keras Tuner's own advice: retrain the
best hyperparameters). Wall time is the search only: from the start of the search
to the last child (the untrained NASWOT scoring included), not the process start-up
or the final retraining.

Hyperband trains children for 1 to --epochs epochs, continuing promising ones; its
trial count is set near --trials through hyperband_iterations and reported as run.
Keras Tuner scores a trial by its best epoch's val_accuracy; this project by the
last epoch's.

Runs go to logs/compare-<space>/ (a finished run is read back when the benchmark is
run again, so an interrupted benchmark goes on where it stopped); the table, a CSV
and the PNG of best-so-far accuracy against wall time go to bench/results/.

Needs keras-tuner (bench/requirements.txt).
"""

import argparse
import csv
import json
import math
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

OURS = ("controller", "random", "evolution", "naswot", "tpe", "budget_controller", "random_es")
# Method -> --strategy, where they differ ("naswot": NASWOT's search, the proxy ranking by
# its default score; the method keeps its name, which its run folders and results carry).
STRATEGY = {"random_es": "random", "naswot": "proxy_ranking"}
EXTRA_FLAGS = {"random_es": ["--early_stop=median"]}
KERAS_TUNER = ("kt_random", "kt_bayesian", "kt_hyperband")
METHODS = OURS + KERAS_TUNER
LABELS = {
    "controller": "controller (REINFORCE)",
    "random": "random search",
    "evolution": "regularized evolution",
    "naswot": "NASWOT (score, train top)",
    "tpe": "TPE (Optuna)",
    "budget_controller": "budget-aware controller",
    "random_es": "random search, median early stopping",
    "kt_random": "Keras Tuner RandomSearch",
    "kt_bayesian": "Keras Tuner BayesianOptimization",
    "kt_hyperband": "Keras Tuner Hyperband",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="toy", choices=["toy", "macro"])
    p.add_argument("--filters", type=int, default=12, help="Width of macro children.")
    p.add_argument("--trials", type=int, default=32, help="Trained children per run.")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--train_size", type=int, default=2000)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument(
        "--time_budget",
        type=float,
        default=None,
        help="Seconds of search per run (equal wall time); default: equal trials.",
    )
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--children_per_step", type=int, default=4, help="Controller updates.")
    p.add_argument("--population_size", type=int, default=8, help="Evolution population.")
    p.add_argument("--sample_size", type=int, default=3, help="Evolution sample.")
    p.add_argument("--proxy_candidates", "--naswot_candidates", type=int, default=None,
                   help="Candidates the naswot method ranks (default 10 x trials).")
    p.add_argument("--logdir", default=None, help="Run folders (default logs/compare-<space>).")
    p.add_argument("--results", default=str(ROOT / "bench" / "results"))
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # One Keras Tuner run.
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in args.methods:
        if m not in METHODS:
            p.error(f"--methods: unknown method {m!r}; allowed: {', '.join(METHODS)}")
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        p.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    for name in ("trials", "epochs", "batch_size", "train_size", "filters"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.time_budget is not None and args.time_budget <= 0:
        p.error(f"--time_budget must be > 0 seconds, got {args.time_budget}")
    suffix = f"-time{args.time_budget:g}" if args.time_budget else ""
    args.logdir = pathlib.Path(args.logdir or ROOT / "logs" / f"compare-{args.space}{suffix}")
    return args


def common_flags(args, seed):
    budget = [f"--time_budget={args.time_budget}"] if args.time_budget else [f"--trials={args.trials}"]
    return budget + [
        "--dataset=mnist5k",
        f"--train_size={args.train_size}",
        "--val_size=500",
        f"--space={args.space}",
        f"--filters={args.filters}",
        f"--epochs={args.epochs}",
        f"--final_epochs={args.epochs}",
        f"--batch_size={args.batch_size}",
        f"--seed={seed}",
    ]


# ---------------------------------------------------------------------- this project


def run_ours(args, method, seed):
    """One train.py run; returns (summary, timeline of (seconds, val_accuracy))."""
    name = f"{method}-seed{seed}"
    run_dir = args.logdir / name
    if not (run_dir / "best.json").exists():
        flags = common_flags(args, seed) + EXTRA_FLAGS.get(method, []) + [
            f"--strategy={STRATEGY.get(method, method)}",
            "--workers=0",  # In process, as Keras Tuner runs (a worker costs ~5 s to start).
            f"--children_per_step={args.children_per_step}",
            f"--population_size={args.population_size}",
            f"--sample_size={args.sample_size}",
            f"--logdir={args.logdir}",
            f"--run_name={name}",
        ]
        if args.proxy_candidates:
            flags.append(f"--proxy_candidates={args.proxy_candidates}")
        if (run_dir / "state.json").exists():
            flags = ["--resume", f"--logdir={args.logdir}", f"--run_name={name}"]
        proc = subprocess.run([sys.executable, str(ROOT / "train.py"), *flags], cwd=ROOT)
        if proc.returncode != 0:
            sys.exit(f"compare.py: error: {name} failed (exit {proc.returncode}); see above")
    best = json.loads((run_dir / "best.json").read_text())
    with open(run_dir / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    timeline = [(float(r["elapsed_seconds"]), float(r["val_accuracy"])) for r in rows]
    return {
        "method": method,
        "seed": seed,
        "best_val_accuracy": best["search_val_accuracy"],
        "test_accuracy": best["test_accuracy"],
        "wall_seconds": best["search_seconds"],
        "trials": len(rows),
        "trained": sum(1 for r in rows if r["cached"] == "0" and r["failed"] == "0"),
        "epochs_trained": sum(
            int(r.get("stopped_epoch") or 0) or args.epochs for r in rows if r["cached"] == "0"
        ),
        "stopped_early": sum(1 for r in rows if (r.get("stopped_epoch") or "0") != "0"),
        "architecture": best["architecture_str"],
    }, timeline


# ---------------------------------------------------------------------- Keras Tuner


def run_keras_tuner(args, method, seed):
    """One Keras Tuner run, in its own process (`--worker`)."""
    name = f"{method}-seed{seed}"
    run_dir = args.logdir / name
    result = run_dir / "result.json"
    if not result.exists():
        flags = [a for a in sys.argv[1:] if not a.startswith(("--worker", "--seed="))]
        cmd = [sys.executable, __file__, *flags, f"--worker={method}", f"--seed={seed}"]
        proc = subprocess.run(cmd, cwd=ROOT)
        if proc.returncode != 0:
            sys.exit(f"compare.py: error: {name} failed (exit {proc.returncode}); see above")
    summary = json.loads(result.read_text())
    return summary, [tuple(t) for t in summary.pop("timeline")]


def hyperband_trials_per_iteration(max_epochs, factor=3):
    """Trials one Keras Tuner Hyperband iteration runs: its brackets and rounds, as
    HyperbandOracle counts them (every round of a bracket starts new trials)."""
    brackets, epochs = 0, max_epochs
    while epochs >= 1:
        epochs /= factor
        brackets += 1
    end_size = math.ceil(1 + math.log(max_epochs, factor))
    return sum(
        math.ceil(end_size / (s + 1) * factor ** (s - r))
        for s in range(brackets)
        for r in range(s + 1)
    )


def keras_tuner_worker(args):
    """Runs one Keras Tuner search and writes result.json into its run folder."""
    import keras  # pylint: disable=import-outside-toplevel
    import keras_tuner as kt  # pylint: disable=import-outside-toplevel

    import config as config_lib  # pylint: disable=import-outside-toplevel
    import data  # pylint: disable=import-outside-toplevel
    import manager as manager_lib  # pylint: disable=import-outside-toplevel
    import poisoning  # pylint: disable=import-outside-toplevel
    import search  # pylint: disable=import-outside-toplevel

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        tf.config.experimental.enable_op_determinism()
    method, seed = args.worker, args.seed
    cfg = config_lib.SearchConfig(
        space=args.space,
        filters=args.filters,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=seed,
    ).resolved()
    space, template = poisoning.make_space(cfg)
    dataset = data.load_dataset("mnist5k", train_size=args.train_size, val_size=500, seed=seed)
    m = search.make_manager(cfg, dataset, space, template)  # The children train.py trains.

    def architecture(hp):
        return tuple(hp.Choice(d.key, list(d.choices)) for d in space.decisions)

    class HyperModel(kt.HyperModel):
        def build(self, hp):
            return m.build(architecture(hp))

    timeline = []

    def timed(cls):
        class Timed(cls):
            def on_trial_end(self, trial):
                super().on_trial_end(trial)
                score = self.oracle.get_trial(trial.trial_id).score
                elapsed = time.perf_counter() - started
                timeline.append((elapsed, float(score or 0.0)))
                # Equal wall time: no trial starts that is expected (at the mean trial
                # time so far) to end after the budget, as train.py's rule for steps.
                if args.time_budget and elapsed * (1 + 1 / len(timeline)) > args.time_budget:
                    self.oracle.max_trials = len(self.oracle.trials)

        return Timed

    run_dir = args.logdir / f"{method}-seed{seed}"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # An unfinished run starts again.
    common = dict(
        objective="val_accuracy",
        seed=seed,
        directory=str(run_dir),
        project_name="kt",
        overwrite=True,
    )
    max_trials = 100_000 if args.time_budget else args.trials  # Stopped by time (Timed).
    if method == "kt_random":
        tuner = timed(kt.RandomSearch)(HyperModel(), max_trials=max_trials, **common)
    elif method == "kt_bayesian":
        tuner = timed(kt.BayesianOptimization)(
            HyperModel(),
            max_trials=max_trials,
            num_initial_points=max(2, args.trials // 4),
            **common,
        )
    else:
        iterations = max(1, round(args.trials / hyperband_trials_per_iteration(args.epochs)))
        if args.time_budget:
            iterations = 1000  # Stopped by time (Timed).
        tuner = timed(kt.Hyperband)(
            HyperModel(),
            max_epochs=args.epochs,
            factor=3,
            hyperband_iterations=iterations,
            **common,
        )
    keras.utils.set_random_seed(seed)
    started = time.perf_counter()
    tuner.search(
        dataset.x_train,
        dataset.y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=(dataset.x_val, dataset.y_val),
        verbose=0,
    )
    wall = time.perf_counter() - started
    trials = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    epochs_trained = sum(
        t.hyperparameters.values.get("tuner/epochs", args.epochs)
        - t.hyperparameters.values.get("tuner/initial_epoch", 0)
        for t in trials
    )
    best_hp = tuner.get_best_hyperparameters(1)[0]
    best_arch = tuple(best_hp.get(d.key) for d in space.decisions)
    best_trial = tuner.oracle.get_best_trials(1)[0]
    model, _ = m.train(best_arch, epochs=args.epochs)  # The same final step as train.py.
    test = manager_lib.accuracy_of(model, dataset.x_test, dataset.y_test)
    summary = {
        "method": method,
        "seed": seed,
        "best_val_accuracy": float(best_trial.score),
        "test_accuracy": float(test),
        "wall_seconds": round(wall, 3),
        "trials": len(trials),
        "trained": len(trials),
        "epochs_trained": int(epochs_trained),
        "stopped_early": 0,
        "architecture": space.format(best_arch),
        "timeline": timeline,
    }
    (run_dir / "result.json").write_text(json.dumps(summary, indent=2) + "\n")


# ---------------------------------------------------------------------- report


def mean_std(values, fmt):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(float(np.mean(values)), fmt)} ± {format(float(np.std(values, ddof=1)), fmt)}"


def report(args, results, timelines):
    out = pathlib.Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"compare_{args.space}" + (f"_time{args.time_budget:g}" if args.time_budget else "")
    with open(out / f"{tag}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(results[0]))
        w.writeheader()
        w.writerows(results)
    by_method = {m: [r for r in results if r["method"] == m] for m in args.methods}
    reference = by_method.get("kt_random")
    ref_wall = np.mean([r["wall_seconds"] for r in reference]) if reference else None
    budget = (
        f"{args.time_budget:g} s of search per run (equal wall time; no trial limit)"
        if args.time_budget
        else f"{args.trials} children per run"
    )
    lines = [
        f"# Search strategies against Keras Tuner ({args.space} space"
        + (f", {args.time_budget:g} s each)" if args.time_budget else ")"),
        "",
        f"`python bench/compare.py {' '.join(a for a in sys.argv[1:])}`".replace(" `", "`"),
        "",
        f"mnist5k: {args.train_size} training, 500 validation, 1,000 test images; "
        f"{budget}, {args.epochs} epochs each, batch {args.batch_size}"
        + (f", width {args.filters}" if args.space == "macro" else "")
        + f"; seeds {', '.join(map(str, args.seeds))} (mean ± std over seeds); "
        f"{platform.machine()}, {os.cpu_count()} cores, one run at a time.",
        "",
        "| method | best val acc | test acc of pick | search wall time (s) | s per trained "
        "child | wall vs KT RandomSearch | trials (epochs) | stopped early |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m, rows in by_method.items():
        if not rows:
            continue
        walls = [r["wall_seconds"] for r in rows]
        per_child = [r["wall_seconds"] / max(1, r["trained"]) for r in rows]
        relative = f"{np.mean(walls) / ref_wall:.2f}x" if ref_wall else "-"
        lines.append(
            f"| {LABELS[m]} | {mean_std([r['best_val_accuracy'] for r in rows], '.3f')} | "
            f"{mean_std([r['test_accuracy'] for r in rows], '.3f')} | {mean_std(walls, '.0f')} | "
            f"{mean_std(per_child, '.2f')} | {relative} | "
            f"{np.mean([r['trials'] for r in rows]):.0f} "
            f"({np.mean([r['epochs_trained'] for r in rows]):.0f}) | "
            f"{np.mean([r.get('stopped_early', 0) for r in rows]):.0f} |"
        )
    lines += leaders(args, timelines)
    (out / f"{tag}.md").write_text("\n".join(lines) + "\n")
    plot(out / f"{tag}.png", args, timelines)
    print("\n".join(lines))


def best_by(timeline, t):
    """Best validation accuracy a run had reached by `t` seconds (0 before its first)."""
    reached = [a for s, a in timeline if s <= t]
    return max(reached) if reached else 0.0


def leaders(args, timelines):
    """Who leads when: median over seeds of the best validation accuracy reached by a
    quarter, a half and all of the wall time (the budget, or the longest run)."""
    end = args.time_budget or max(
        (t for m in timelines.values() for tl in m.values() for t, _ in tl), default=1.0
    )
    marks = [end / 4, end / 2, end]
    lines = [
        "",
        "Best validation accuracy reached by each point of the wall time (median over seeds, "
        "min-max in brackets); the leader of each column in bold:",
        "",
        "| method | " + " | ".join(f"by {t:.0f} s" for t in marks) + " |",
        "|---|" + "---|" * len(marks),
    ]
    table = {}
    for m in args.methods:
        runs = list(timelines.get(m, {}).values())
        if runs:
            table[m] = [[best_by(tl, t) for tl in runs] for t in marks]
    medians = {m: [float(np.median(v)) for v in cols] for m, cols in table.items()}
    for m, cols in table.items():
        cells = []
        for j, values in enumerate(cols):
            cell = f"{np.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"
            if medians[m][j] == max(med[j] for med in medians.values()):
                cell = f"**{cell}**"
            cells.append(cell)
        lines.append(f"| {LABELS[m]} | " + " | ".join(cells) + " |")
    return lines


def plot(path, args, timelines):
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.get_cmap("tab10")
    end = max((t for m in timelines.values() for tl in m.values() for t, _ in tl), default=1.0)
    grid = np.linspace(0, end, 400)
    for i, m in enumerate(args.methods):
        curves = []
        for timeline in timelines.get(m, {}).values():
            if not timeline:
                continue
            t = np.array([s for s, _ in timeline])
            best = np.maximum.accumulate([a for _, a in timeline])
            ax.step(t, best, where="post", color=colors(i), alpha=0.25, lw=0.8)
            at = np.searchsorted(t, grid, side="right") - 1
            # Before its first child a run has 0; after its last it keeps its best.
            curves.append(np.where(at >= 0, best[np.maximum(at, 0)], 0.0))
        if curves:
            median = np.median(np.array(curves), axis=0)
            # The median line ends at the median end of the runs.
            stop = np.median([tl[-1][0] for tl in timelines[m].values() if tl])
            ax.plot(
                grid[grid <= stop], median[grid <= stop], color=colors(i), lw=2, label=LABELS[m]
            )
    ax.set_xlabel("search wall time (s)")
    ax.set_ylabel("best validation accuracy so far (thick: median over seeds)")
    budget = f"{args.time_budget:g} s each" if args.time_budget else f"{args.trials} children"
    ax.set_title(f"{args.space} space, {budget}, seeds {args.seeds}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    args = parse_args()
    if args.worker:
        keras_tuner_worker(args)
        return
    results, timelines = [], {}
    for seed in args.seeds:
        for method in args.methods:
            print(f"== {method} seed {seed}", flush=True)
            run = run_ours if method in OURS else run_keras_tuner
            summary, timeline = run(args, method, seed)
            results.append(summary)
            timelines.setdefault(method, {})[seed] = timeline
            print(
                f"== {method} seed {seed}: best val {summary['best_val_accuracy']:.4f}, test "
                f"{summary['test_accuracy']:.4f}, {summary['wall_seconds']:.0f} s",
                flush=True,
            )
    report(args, results, timelines)


if __name__ == "__main__":
    main()
