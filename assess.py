"""Assesses a controller against random search, on a clean and on poisoned spaces.

  python assess.py --poison=dropout1.0,stretched3x3 --poison_instances=6 --seeds=0,1,2

runs the grid {clean, each poisoning} x {controller, random} x seeds, every run
with the same child budget (--trials, --epochs, ...; every train.py flag is
accepted), and writes into --out:

  runs/<setting>-<strategy>-seed<seed>/   one train.py run folder per run
  results.csv                              a row per finished run
  summary.md                               mean +- std over seeds per setting and strategy
  poison_rate.png, accuracy.png            per step, one line per strategy

With `--space=nb201 --evaluation=benchmark` (NAS-Bench-201's table, no training) the
runs are searches of a few seconds: they run in this process, one after another
(`--jobs=N`: N processes, each with its share), and `benchmark.md`, `benchmark.csv`,
`regret.png` and `poison_smoothed.png` answer the assessment at every budget in
`--budgets` up to --trials (benchmark_report.py): the pick's accuracy and regret with
95% bootstrap intervals, its rank, the poison rate per quarter, the queries to the top
1% of cells, and a Mann-Whitney test of each strategy against random search.

Several poisonings: separate them with `;` (`--poison="noise10;dropout1.0,tconv3x3"`
is two settings: noise10 alone, and dropout1.0 with tconv3x3); `--remove_ops`
takes the same form. Running the same command again resumes a partly finished
grid: finished runs are read back, an interrupted one continues where it stopped.
"""

import concurrent.futures
import csv
import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # As in train.py.

from absl import app, flags  # noqa: E402

import config as config_lib  # noqa: E402
import extensions  # noqa: E402
import poisoning  # noqa: E402
import progress  # noqa: E402  (numpy only: a run's budget in words)
import run_log  # noqa: E402
import run_state  # noqa: E402
import specs  # noqa: E402
import train  # noqa: E402  (its flags are the flags of every run)

FLAGS = flags.FLAGS
FLAGS.set_default("space", "macro")

flags.DEFINE_string("out", os.path.join("logs", "assess"), "Folder of the assessment.")
flags.DEFINE_list(
    "strategies",
    ["controller", "random"],
    "Strategies to compare: built-in names (train.py --strategy), or your own as PATH.py:NAME or "
    "package.module:NAME (a class or factory called with (space, seed); docs/EXTENDING.md).",
)
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (or ranges FIRST-LAST: 0-499); every setting and "
                  "strategy runs with each.")
flags.DEFINE_boolean("clean", True, "Include the clean (unpoisoned) space in the grid.")
flags.DEFINE_float(
    "reach",
    None,
    "Also report the trials each run needed until a child's validation accuracy (with "
    "--evaluation=shared: its shared-weights score) reached this value (results.csv "
    "trials_to_reach, blank if never; summary.md: runs that reached it and their mean).",
)
flags.DEFINE_integer(
    "jobs",
    1,
    "Runs at once, each its own train.py process. Above 1 the runs share the machine: "
    "accuracies and poison rates are as with 1 (same trial budget), wall times are not.",
)

flags.DEFINE_list(
    "budgets",
    ["100", "300", "1000", "3000"],
    "With --evaluation=benchmark: the query budgets reported, read off each run's first "
    "N queries (those above --trials are left out).",
)
flags.DEFINE_string(
    "shard", None, "Internal (--jobs with --evaluation=benchmark): run only share I of N, as 'I/N'."
)

# train.py flags that the grid sets for each run.
_GRID_FLAGS = {
    "strategy": "--strategies",
    "seed": "--seeds",
    "run_name": "--out",
    "logdir": "--out",
    "resume": "(running the same command again resumes)",
}
GRID_FILE = "assess.json"
TRAIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train.py")
RESULT_COLUMNS = (
    "setting",
    "strategy",
    "seed",
    "trials",
    "best_val_accuracy",
    "final_val_accuracy",
    "test_accuracy",
    # The mean fitness of the trials in each quarter: validation accuracy, or with
    # a training-free --evaluation its score (best.json names it after the metric).
    "first_quarter_mean_fitness",
    "last_quarter_mean_fitness",
    "first_quarter_poison_rate",
    "last_quarter_poison_rate",
    "poison_prior",
    "search_seconds",
    "trials_to_reach",
    "architecture",
    "run_dir",
)
# What summary.md reports, mean +- std over seeds.
SUMMARY_COLUMNS = (
    ("best_val_accuracy", "best val acc"),
    ("test_accuracy", "test acc of pick"),
    ("last_quarter_mean_fitness", "mean acc, last quarter"),
    ("last_quarter_poison_rate", "poison rate, last quarter"),
)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One search space of the grid: clean, or one poisoning."""

    name: str
    poison: str = ""
    remove_ops: str = ""


def settings_from_flags(base):
    settings = [Setting("clean")] if FLAGS.clean else []
    k = base.poison_instances
    for group in _groups(base.poison):
        settings.append(Setting(f"poison-{group.replace(',', '+')}-k{k}", poison=group))
    for group in _groups(base.remove_ops):
        settings.append(Setting(f"removed-{group.replace(',', '+')}", remove_ops=group))
    if not settings:
        raise config_lib.ConfigError("the grid is empty: give --poison or --remove_ops, or --clean")
    return settings


def _groups(value):
    groups = [g.strip().strip(",") for g in value.split(";")]
    return [",".join(n.strip() for n in g.split(",") if n.strip()) for g in groups if g]


def grid_from_flags():
    """(base config, [(setting, run config), ...]), checked; ConfigError if bad."""
    for name, instead in _GRID_FLAGS.items():
        if FLAGS[name].present:
            raise config_lib.ConfigError(f"--{name} is set by the grid; use {instead}")
    base = train.config_from_flags()
    poison, base.poison = base.poison, ""
    removed, base.remove_ops = base.remove_ops, ""
    instances, base.poison_instances = base.poison_instances, 1
    base.run_name = "grid"  # Checked like any run name; each run gets its own.
    base = base.resolved()
    base.poison, base.remove_ops, base.poison_instances = poison, removed, instances
    # An old name (config.RENAMED_VALUES: naswot) is its new one's, in the tables too.
    strategies = list(dict.fromkeys(config_lib.renamed_value("strategy", s) for s in FLAGS.strategies))
    for s in strategies:
        try:
            config_lib.REGISTRIES["strategy"].check_name(s)
        except extensions.ExtensionError:
            raise config_lib.ConfigError(
                f"--strategies: unknown strategy {s!r}; allowed: {', '.join(config_lib.STRATEGIES)}, "
                f"or your own as PATH.py:NAME or package.module:NAME"
            ) from None
    if not strategies:
        raise config_lib.ConfigError("--strategies needs at least one strategy")
    for s in strategies:  # A user's: loaded and checked before any run starts.
        train.check_strategy_reference(s)
    labels = [extensions.label(s) for s in strategies]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        raise config_lib.ConfigError(
            f"--strategies names two strategies {twice[0]!r}; the tables and run folders tell "
            f"strategies apart by their names: give the objects different names"
        )
    try:
        seeds = [seed for item in FLAGS.seeds for seed in _seed_range(item)]
    except ValueError:
        raise config_lib.ConfigError(
            f"--seeds must be integers >= 0 or ranges FIRST-LAST, comma-separated, got "
            f"{','.join(FLAGS.seeds)!r}"
        ) from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise config_lib.ConfigError(
            f"--seeds must be distinct integers >= 0, got {','.join(FLAGS.seeds)!r}"
        )
    settings = settings_from_flags(base)
    runs = []
    for setting in settings:
        for strategy in strategies:
            for seed in seeds:
                config = dataclasses.replace(
                    base,
                    poison=setting.poison,
                    remove_ops=setting.remove_ops,
                    poison_instances=base.poison_instances if setting.poison else 1,
                    strategy=strategy,
                    seed=seed,
                    logdir=os.path.join(FLAGS.out, "runs"),
                    run_name=run_name(setting.name, strategy, seed),
                )
                runs.append((setting, config.resolved()))
    return base, runs


def run_name(setting, strategy, seed):
    """The run folder of one run: <setting>-<strategy>-seed<seed>, or where an assessment
    made before a rename holds it, its folder under the strategy's old name
    (config.RENAMED_VALUES), so the same command run again resumes it."""
    name = f"{setting}-{extensions.label(strategy)}-seed{seed}"
    runs = os.path.join(FLAGS.out, "runs")
    if not run_state.holds_a_run(os.path.join(runs, name)):
        for old in config_lib.old_values("strategy", strategy):
            earlier = f"{setting}-{old}-seed{seed}"
            if run_state.holds_a_run(os.path.join(runs, earlier)):
                return earlier
    return name


def _budget(config):
    """The settings every run of one assessment must share."""
    per_run = ("poison", "remove_ops", "poison_instances", "strategy", "seed", "logdir", "run_name")
    return {k: v for k, v in dataclasses.asdict(config).items() if k not in per_run}


def check_folder(out, base):
    """Refuses a folder that holds an assessment with another budget; records ours."""
    path = os.path.join(out, GRID_FILE)
    budget = _budget(base)
    if os.path.exists(path):
        try:
            with open(path) as f:
                saved = json.load(f)["budget"]
        except (ValueError, KeyError, TypeError) as e:
            raise config_lib.ConfigError(f"cannot read {path}: it is damaged ({e})") from None
        # A setting added since the folder was made was at its default there; one
        # renamed since (config.RENAMED_FLAGS) is read under its new name.
        defaults = _budget(config_lib.SearchConfig())
        saved = config_lib.renamed_fields(saved)
        saved = {k: saved.get(k, defaults.get(k)) for k in budget}
        differ = sorted(k for k in budget if budget[k] != saved[k])
        if differ:
            details = ", ".join(f"{k}={budget[k]!r} (folder: {saved[k]!r})" for k in differ)
            raise config_lib.ConfigError(
                f"{out} holds an assessment with another budget: {details}; "
                f"use another --out or the same settings"
            )
        return
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise config_lib.ConfigError(f"cannot write --out={out}: {e.strerror}") from None
    run_log.write_json(path, {"budget": budget})


# ---------------------------------------------------------------------- the grid


class RunFailed(Exception):
    """A run of the grid stopped with an error; `status` is its exit status."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


class Interrupted(Exception):
    """SIGINT or SIGTERM: the run in progress saved its state and stopped."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_received = []
_child = []  # The train.py processes of the runs in progress.


def _forward(signum, frame):
    """Ctrl-C or SIGTERM: passed to the run in progress, which saves and stops."""
    del frame
    _received.append(signum)
    for proc in list(_child):
        if proc.poll() is None:
            proc.send_signal(signum)


def run_grid(runs, out, priors, echo=print, jobs=1, in_process=False, reports=True):
    """Runs (or resumes, or reads back) every run, `jobs` at once; rewrites the
    reports, in the grid's order, after each (with `in_process`: once, at the end).

    Each run is its own `train.py` process: TensorFlow keeps some memory of every
    child it trains (about 38 MB per macro child measured), which a process per run
    hands back; and a run that crashes does not take the grid down. Table-lookup
    runs (`in_process`, --evaluation=benchmark) train nothing and last seconds, which
    a process start would triple: they run here, one after another.

    Args:
      runs: [(setting, run config), ...].
      out: the assessment folder.
      priors: {setting name: uniform poison rate} of the poisoned settings.
      reports: False for a shard of the grid (its parent writes them).

    Returns:
      The rows of results.csv.

    Raises:
      Interrupted: on SIGINT / SIGTERM, after the runs in progress saved their state.
      RunFailed: a run stopped with an error (the runs in progress finish first; no
        new one starts).
    """
    rows = [None] * len(runs)
    errors = []
    lock = threading.Lock()
    run_one = _run_in_process if in_process else _run_train

    def one(i):
        if _received or errors:
            return
        setting, config = runs[i]
        run_dir = os.path.join(config.logdir, config.run_name)
        label = f"[{i + 1}/{len(runs)} {config.run_name}]"
        state = run_state.phase(run_dir)
        try:
            if state == "finished":
                best = _read_best(run_dir)
                if not in_process:
                    tested = best.get("test_accuracy")
                    echo(f"{label} finished earlier: " + ("no test accuracy" if tested is None
                                                         else f"test accuracy {tested:.4f}"))
            else:
                if not in_process:
                    echo(f"{label} {'resuming' if state else 'starting'}")
                run_one(config, bool(state), lambda line, p=label: echo(f"{p} {line}"))
                best = _read_best(run_dir)
        except (Interrupted, RunFailed) as e:
            errors.append(e)
            return
        with lock:
            rows[i] = _row(setting, config, os.path.relpath(run_dir, out), best)
            if reports and not in_process:
                write_reports(out, [r for r in rows if r is not None], runs, priors)

    try:
        if in_process:
            for i in range(len(runs)):
                one(i)
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
                list(pool.map(one, range(len(runs))))
    finally:
        if reports and in_process and any(r is not None for r in rows):
            write_reports(out, [r for r in rows if r is not None], runs, priors)
    if _received:
        raise Interrupted(_received[-1])
    if errors:
        raise next((e for e in errors if isinstance(e, Interrupted)), errors[0])
    return rows


def _run_in_process(config, resume, echo):
    """Runs one table-lookup search in this process; echoes its closing line."""
    import keras  # pylint: disable=import-outside-toplevel

    import controller  # pylint: disable=import-outside-toplevel
    import data  # pylint: disable=import-outside-toplevel
    import manager  # pylint: disable=import-outside-toplevel
    import search  # pylint: disable=import-outside-toplevel
    import strategies  # pylint: disable=import-outside-toplevel

    lines = []
    try:
        best = search.run_search(
            config, out=lines.append, resume=resume, should_stop=lambda: bool(_received)
        )
    except KeyboardInterrupt:
        raise Interrupted(_received[-1] if _received else signal.SIGINT) from None
    except (search.ConfigError, data.DataError, controller.ControllerError,
            strategies.StrategyProposalError) as e:
        raise RunFailed(f"run {config.run_name} stopped: {e}", 2) from None
    except (manager.SearchError, strategies.StrategyError) as e:
        if _received:  # The signal's KeyboardInterrupt, turned into another error.
            raise Interrupted(_received[-1]) from None
        raise RunFailed(f"run {config.run_name} stopped: search stopped: {e}", 1) from None
    finally:
        keras.backend.clear_session()  # The run's controller: not kept for the next run.
    if "nb201_string" in best:
        pick = (f"{best['nb201_string']} {100 * best['test_accuracy']:.2f}% "
                f"(rank {best['benchmark_rank'][config.benchmark_dataset]:,})")
    else:
        pick = f"{best['architecture_str']} {best['benchmark_fitness']:.4f} (rank {best['benchmark_rank']:,})"
    echo(f"{'resumed, ' if resume else ''}{best['trials']} queries: pick {pick}")


def run_shards(jobs, echo=print):
    """--jobs=N with table lookups: N processes of this command, each running its share
    of the grid (`--shard=I/N`) in process; their output is echoed as it comes.

    Raises:
      Interrupted, RunFailed: as `run_grid`.
    """
    argv = [a for a in sys.argv[1:] if not a.startswith(("--jobs", "--shard"))]
    procs = []
    for i in range(jobs):
        proc = subprocess.Popen(
            [sys.executable, "-u", os.path.abspath(sys.argv[0]), *argv, "--jobs=1", f"--shard={i}/{jobs}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Signals reach them through `_forward`, once.
        )
        _child.append(proc)
        procs.append(proc)
    errors = {}

    def pump(i, proc):
        with proc.stdout:
            for line in proc.stdout:
                line = line.rstrip("\n")
                if line.startswith("assess.py: error: "):
                    errors[i] = line[len("assess.py: error: ") :]
                elif not line.startswith(("assessment in", "done:", "interrupted by", "  python")):
                    echo(line)

    threads = [threading.Thread(target=pump, args=(i, p)) for i, p in enumerate(procs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = [p.wait() for p in procs]
    for p in procs:
        _child.remove(p)
    if _received:
        raise Interrupted(_received[-1])
    for i, status in enumerate(statuses):
        if status != 0:
            raise RunFailed(errors.get(i) or f"share {i}/{jobs} of the grid: exit status {status}", 2 if status == 2 else 1)


def _run_train(config, resume, echo):
    """Runs one search as `python train.py <flags>`, echoing its output."""
    command = [sys.executable, "-u", TRAIN, *train.config_to_flags(config)]
    if resume:
        command.append("--resume")
    # A session of its own: a Ctrl-C at the terminal reaches this process only, which
    # passes it on once (`_forward`).
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    _child.append(proc)
    error = None
    try:
        with proc.stdout:
            for line in proc.stdout:
                line = line.rstrip("\n")
                if line.startswith("interrupted by") or error is not None:
                    error = error or line  # train.py's own resume hint is not ours.
                    continue
                if line.startswith("train.py: error: "):
                    error = line[len("train.py: error: ") :]
                    continue
                echo(line)
        status = proc.wait()
    finally:
        _child.remove(proc)
    if status in (128 + signal.SIGINT, 128 + signal.SIGTERM) and _received:
        raise Interrupted(status - 128)
    if status != 0:
        raise RunFailed(
            f"run {config.run_name} stopped: {error or f'exit status {status}'}",
            2 if status == 2 else 1,
        )


def _read_best(run_dir):
    with open(os.path.join(run_dir, "best.json")) as f:
        return json.load(f)


def _blank(value):
    return "" if value is None else value


def _metric(config):
    """What a run's fitness is: the name best.json gives its quarter means."""
    scored = specs.EVALUATIONS[config.evaluation].score
    return f"{config.score_name}_score" if scored else "accuracy"


def _row(setting, config, run_dir, best):
    metric = _metric(config)
    return {
        "setting": setting.name,
        "strategy": extensions.label(config.strategy),
        "seed": config.seed,
        "trials": best["trials"],
        # The pick's validation accuracy, or a table's reward; None: scored untrained.
        "best_val_accuracy": _blank(best.get("search_val_accuracy", best.get("search_reward"))),
        "final_val_accuracy": best["final_val_accuracy"],
        "test_accuracy": best["test_accuracy"],
        "first_quarter_mean_fitness": best[f"first_quarter_mean_{metric}"],
        "last_quarter_mean_fitness": best[f"last_quarter_mean_{metric}"],
        "first_quarter_poison_rate": best.get("first_quarter_poison_rate", ""),
        "last_quarter_poison_rate": best.get("last_quarter_poison_rate", ""),
        "poison_prior": best.get("poison_prior", ""),
        "search_seconds": best["search_seconds"],
        "trials_to_reach": trials_to_reach(os.path.join(config.logdir, config.run_name), FLAGS.reach),
        "architecture": best["architecture_str"],
        "run_dir": run_dir,
    }


def _seed_range(item):
    """`7` -> [7]; `0-499` -> [0, ..., 499] (ValueError: neither)."""
    first, dash, last = item.strip().partition("-")
    if not dash:
        return [int(item)]
    first, last = int(first), int(last)
    if last < first:
        raise ValueError(item)
    return list(range(first, last + 1))


def trials_to_reach(run_dir, reach):
    """The trial (from 1) of the run's first child whose validation accuracy is at
    least `reach` (history.csv); "" if none did or `reach` is None."""
    if reach is None:
        return ""
    path = os.path.join(run_dir, "history.csv")
    if not os.path.exists(path):
        return ""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        column = run_log.accuracy_column(reader.fieldnames or ["architecture", "val_accuracy"])
        for row in reader:
            if row.get(column) and float(row[column]) >= reach:
                return int(row["trial"])
    return ""


# ---------------------------------------------------------------------- reports


def write_reports(out, rows, runs, priors):
    """results.csv, summary.md and the plots, from the finished runs (and the
    histories of unfinished ones, for the curves)."""
    import reports  # pylint: disable=import-outside-toplevel

    reports.write_results(os.path.join(out, "results.csv"), rows, RESULT_COLUMNS)
    columns = SUMMARY_COLUMNS
    scored = bool(runs) and specs.EVALUATIONS[runs[0][1].evaluation].score
    if scored:
        title = config_lib.score_title(runs[0][1].score_name)
        columns = tuple(
            (key, f"mean {title}, last quarter" if key == "last_quarter_mean_fitness" else label)
            for key, label in columns
        )
    if FLAGS.reach is not None:
        columns += (("trials_to_reach", f"trials to reach {FLAGS.reach:g} (runs that did)"),)
    reports.write_summary(os.path.join(out, "summary.md"), rows, len(runs), columns)
    if runs and specs.EVALUATIONS[runs[0][1].evaluation].table:
        write_benchmark_reports(out, rows, runs, priors)
        return
    histories = {}
    for setting, config in runs:
        path = os.path.join(config.logdir, config.run_name, "history.csv")
        if os.path.exists(path):
            key = (setting.name, extensions.label(config.strategy), config.seed)
            histories[key] = (reports.read_history(path), config.num_layers)
    fitness = config_lib.score_title(runs[0][1].score_name) if scored else "validation accuracy"
    reports.plot_per_step(histories, out, priors, fitness)


def write_benchmark_reports(out, rows, runs, priors):
    """benchmark.csv (a row per finished run and budget), benchmark.md and the plots."""
    import benchmark_report  # pylint: disable=import-outside-toplevel
    import benchmarks  # pylint: disable=import-outside-toplevel

    finished = {(r["setting"], r["strategy"], r["seed"]) for r in rows}
    budgets = _budgets()
    records, curves, exact = [], {}, {}
    benchmark = None
    for setting, config in runs:
        key = (setting.name, extensions.label(config.strategy), config.seed)
        if key not in finished:
            continue
        benchmark = benchmark or benchmarks.make_benchmark(config)
        space, _ = poisoning.make_space(config)
        history = benchmark_report.read_history(os.path.join(config.logdir, config.run_name, "history.csv"))
        run = benchmark_report.parse_run(history, benchmark, space)
        end = config.benchmark_seconds is not None  # Each run bought its own number of queries.
        optimum, feasible = _constrained(benchmark, config, space)
        for m in benchmark_report.run_metrics(run, benchmark, space, budgets, end=end, optimum=optimum):
            records.append({"setting": setting.name, "strategy": key[1], "seed": config.seed, **m})
        curves[key] = benchmark_report.curves(run, benchmark, space, optimum)
        if hasattr(benchmark, "expected_best_of_random") and not end and not benchmark.errors:
            for n in budgets:
                if (setting.name, n) not in exact and n <= (config.trials or 0):
                    exact[(setting.name, n)] = benchmark.expected_best_of_random(
                        n, space, reward=benchmark.reward_metric, feasible=feasible)
    if not records:
        return
    columns = ("setting", "strategy", "seed", *benchmark_report.METRIC_COLUMNS)
    import reports  # pylint: disable=import-outside-toplevel

    reports.write_results(os.path.join(out, "benchmark.csv"), records, columns)
    summary = benchmark_report.summarize(records)
    verdict = benchmark_report.verdicts(summary, priors) if "controller" in FLAGS.strategies else {}
    config = runs[0][1]
    benchmark_report.write_markdown(
        os.path.join(out, "benchmark.md"),
        summary,
        verdict,
        config.children_per_step,
        benchmark,
        note=f"{len(finished)} of {len(runs)} runs finished; command: python {shlex.join(sys.argv)}",
        exact=exact,
    )
    benchmark_report.plot(curves, out, priors)


def _constrained(benchmark, config, space):
    """(the constrained optimum, booleans by row within every budget) of a run with
    --max_cost on NAS-Bench-201's table; (None, None) without budgets."""
    import fronts  # pylint: disable=import-outside-toplevel

    limits = config_lib.objective_of(config).limits
    if not limits or not hasattr(benchmark, "cost_by_row"):
        return None, None
    _, optimum = fronts.constrained_optimum(benchmark, limits, space)
    return optimum, fronts.feasible_rows(benchmark, limits)


# ---------------------------------------------------------------------- main


def _budgets():
    """--budgets as sorted integers >= 1; ConfigError if not."""
    try:
        budgets = sorted({int(b) for b in FLAGS.budgets})
    except ValueError:
        budgets = []
    if not budgets or budgets[0] < 1:
        raise config_lib.ConfigError(
            f"--budgets must be integers >= 1, comma-separated, got {','.join(FLAGS.budgets)!r}"
        )
    return budgets


def _shard(in_process):
    """--shard as (I, N), or None; exits with one line if it is malformed."""
    if FLAGS.shard is None:
        return None
    i, _, n = FLAGS.shard.partition("/")
    if not (in_process and i.isdigit() and n.isdigit() and int(i) < int(n)):
        train.fail(f"--shard is internal (I/N with 0 <= I < N, with --evaluation=benchmark), got {FLAGS.shard!r}")
    return int(i), int(n)


def main(argv):
    if len(argv) > 1:
        train.fail(f"unexpected arguments {argv[1:]}; every setting is a --flag (see --help)")
    if FLAGS.jobs < 1:
        train.fail(f"--jobs must be an integer >= 1, got {FLAGS.jobs}")
    scored = specs.EVALUATIONS[FLAGS.evaluation].score  # An enum flag: absl checked it.
    if FLAGS.reach is not None and not scored and not 0 < FLAGS.reach <= 1:
        train.fail(
            f"--reach is an accuracy, in (0, 1], got {FLAGS.reach:g} (with a training-free "
            f"--evaluation it is a score and may be any number)"
        )
    try:
        base, runs = grid_from_flags()
        check_folder(FLAGS.out, base)
        _budgets()  # Checked now, used by the reports.
        priors = {}
        for setting, config in runs:  # Unknown op names: before the first run, not midway.
            space, _ = poisoning.make_space(config)
            if space.poisoned:
                priors[setting.name] = space.poison_prior()
    except config_lib.ConfigError as e:
        train.fail(str(e))
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _forward)
    in_process = specs.EVALUATIONS[base.evaluation].table  # Look-ups: no process each.
    shard = _shard(in_process)
    if shard is not None:
        runs = runs[shard[0] :: shard[1]]
    print(f"assessment in {FLAGS.out}: {len(runs)} runs of {progress.budget_words(base)} each")
    try:
        if in_process and FLAGS.jobs > 1:
            run_shards(FLAGS.jobs)
        run_grid(runs, FLAGS.out, priors, jobs=FLAGS.jobs, in_process=in_process, reports=shard is None)
    except RunFailed as e:
        train.fail(str(e), status=e.status)
    except Interrupted as e:
        print(
            f"\ninterrupted by {signal.Signals(e.signum).name}; finished runs and trials are "
            f"saved. Resume with:\n  python {shlex.join(sys.argv)}",
            file=sys.stderr,
        )
        sys.exit(128 + e.signum)
    print(f"done: {os.path.join(FLAGS.out, 'summary.md')}")


if __name__ == "__main__":
    app.run(main, flags_parser=train.parse_flags)
