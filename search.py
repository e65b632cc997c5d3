"""The search loop: propose children, train them, learn from their rewards, log.

`run_search(config)` is the one entry point `train.py` calls. Every strategy shares
the loop, the budget (`trials` children in all, `children_per_step` per step), the
outputs and the logging; strategies differ only in how they propose architectures
and what they learn from the results. How a child gets its fitness is the other
axis (`--evaluation`): trained from scratch, scored untrained (NASWOT), or scored
with shared weights; with shared weights the loop trains the supernet for one pass
of the training split every `shared_steps_per_epoch` steps (weight_sharing.py).

The loop is here, with the making of a run's components (its space, builder,
strategy and benchmark come from their registries, or are a user's objects:
extensions.py); the run's commit point and its restore are run_commit.py's, its
progress lines progress.py's, and the final retraining and report
final_evaluation.py's.

Library code: it never reads command-line flags.
"""

import contextlib
import dataclasses
import gc
import json
import math
import os
import time

import numpy as np

import benchmarks
import budget as budget_lib
import costs as costs_lib
import crash_guard
import data
import early_stopping
import extensions
import config as config_lib
import final_evaluation
import hardware
from config import ConfigError, SearchConfig, read_config  # noqa: F401  (search.SearchConfig: the API)
import manager as manager_lib
from poisoning import make_space
import progress
import run_commit
import run_log
import run_state
import specs
from run_state import LOCK_FILE, STATE_FILE  # noqa: F401  (search.STATE_FILE: tests and bench read it)
from strategies import make_strategy
import supernet as supernet_lib
import templates
import weight_sharing
import workers
from run_commit import RunFolderError  # noqa: F401  (search.RunFolderError: the API)
from run_log import RunLog, deferred_signals

COMMIT_SECONDS = 5.0  # Shared weights: at most this much search is lost to a kill -9.
BENCHMARK_COMMIT_SECONDS = 2.0  # Benchmark lookups: at most this much (bench/nb201_speed.py).


# ---------------------------------------------------------------------- the search


def make_shared(config, dataset, space):
    """The SharedEvaluator of `--evaluation=shared`: the supernet and its training.

    Raises:
      ConfigError: minibatches larger than the splits, or a space without a supernet.
    """
    supernet = weight_sharing.SUPERNETS.get(config.template)
    if supernet is None:
        held = ", ".join(f"--template={name}" for name in weight_sharing.SUPERNETS)
        raise ConfigError(
            f"--evaluation=shared: the network {config.template} has no supernet; weight "
            f"sharing holds {held}"
        )
    try:
        return weight_sharing.SharedEvaluator(
            dataset,
            space,
            supernet=supernet,
            network=templates.template_args(config),
            batch_size=config.batch_size,
            eval_batch=config.eval_batch,
            reward_mode=config.reward_mode,
            seed=config.seed,
            **config_lib.shared_settings(config),
        )
    except supernet_lib.SupernetError as e:
        raise ConfigError(f"--evaluation=shared: {e}") from None
    except ValueError as e:
        raise ConfigError(f"--evaluation=shared: {e}; lower --batch_size or --eval_batch") from None


def make_manager(config, dataset, space, template, shared=None, benchmark=None):
    """The NetworkManager that trains (or scores) the children of `config`'s search;
    `template` is the network builder (a built-in template's name, or a function;
    None where nothing is built), `shared` is `make_shared`'s evaluator with
    `--evaluation=shared`, `benchmark` `benchmarks.make_benchmark`'s table with
    `--evaluation=benchmark` (no dataset then). With --max_cost or --cost_target each
    child's costs are measured (`make_meter`) before it is evaluated."""
    objective = config_lib.objective_of(config)
    meter = make_meter(config, objective, dataset, benchmark) if objective else None
    manager = manager_lib.NetworkManager(
        dataset,
        space,
        template=template,
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.child_lr,
        acc_beta=config.acc_beta,
        clip_rewards=config.clip_rewards,
        cache=config.cache,
        seed=config.seed,
        max_failures=config.max_failures,
        template_args=templates.template_args(config),
        evaluation=config.evaluation,
        proxy_batch=config.proxy_batch,
        proxy=config.proxy,
        shared=shared,
        early_stop=config.early_stop != "none",
        benchmark=benchmark,
        objective=objective,
        meter=meter,
    )
    if meter is not None and template is not None:
        meter.build = manager.build_model
    return manager


def make_meter(config, objective, dataset, benchmark=None):
    """The `costs.CostMeter` of `objective`'s costs: a table's where it has them (the run's
    benchmark, or NAS-Bench-201's for HW-NAS-Bench's device costs of a trained cell), the
    rest measured on the built network (its builder is the manager's)."""
    table = benchmark
    if table is None and any(n in hardware.COSTS for n in objective.names):
        # The table of the space's cells that holds their device costs (config.py checked).
        name = next(n for n, b in specs.BENCHMARKS.items() if b.space == config.space and b.costs)
        table = benchmarks.make_benchmark(dataclasses.replace(config, benchmark=name))
    if benchmark is not None and not hasattr(benchmark, "costs"):
        raise ConfigError(
            f"--max_cost/--cost_target: the benchmark {config.benchmark} gives no costs (its "
            f"optional costs(architecture) method, docs/EXTENDING.md)"
        )
    return costs_lib.CostMeter(
        objective.names,
        input_shape=None if dataset is None else dataset.input_shape,
        table=table,
    )


def run_search(config, out=print, resume=False, should_stop=None, *, space=None, builder=None,
               strategy=None, benchmark=None):
    """Runs a whole search and the final evaluation of its best architecture.

    After every trial the run folder holds all that is needed to continue
    (`resume=True`) from where the search stopped, losing at most the children in
    flight; a resumed search samples the same architectures an uninterrupted one
    would (on CPU).

    The space, the network builder and the strategy are the ones `config` names
    (built-in names, or references PATH.py:NAME), or objects of your own given here
    (extensions.py: the protocols), which take the same path: budgets, history,
    TensorBoard, poisoning, workers, resume and the final retraining work alike.

    Args:
      config: a `SearchConfig`.
      out: where progress lines go.
      resume: continue the run in the run folder instead of starting one.
      should_stop: optional function; when it returns True after a trial, the search
        saves and raises KeyboardInterrupt. A signal handler that raises
        KeyboardInterrupt is not enough on its own: an exception raised inside a
        weakref callback or a __del__ method is printed and dropped by Python, and
        the search would go on.
      space: a `state_space.StateSpace` (or a function of no arguments returning one)
        to search instead of `config.space`.
      builder: a network builder `build(space, architecture, input_shape,
        num_classes) -> keras.Model` instead of `config.template`.
      strategy: a strategy class or factory called with (space, seed) instead of
        `config.strategy`.
      benchmark: a table of precomputed results (extensions.Benchmark, e.g.
        benchmarks.Table) instead of `config.benchmark`, with `--evaluation=benchmark`.
      (config.json names each object given by its `module:qualname`; a resume is
      given the same objects, and a space that changed is refused.)

    Returns:
      The dict written to best.json.

    Raises:
      ConfigError, data.DataError, controller.ControllerError: bad settings or
        a run folder that cannot be resumed (nothing in it is changed then).
      manager_lib.SearchError: too many failed children in a row.
      strategies.StrategyError: the strategy raised (its traceback is in the run
        folder); strategies.StrategyProposalError: it proposed outside the space.
    """
    config = _named(
        config, space=space, template=builder, strategy=strategy, benchmark=benchmark
    ).resolved()
    space, _ = make_space(config, given=space)
    too_many = specs.check_space_size(config, space)
    if too_many:
        raise ConfigError(too_many)
    run_dir = os.path.join(config.logdir, config.run_name)
    state = run_state.check_start(config, resume)
    components = _components(config, space)
    if state is not None:
        for line in run_state.check_components(run_dir, components):
            out(f"warning: {line}")
    if resume and state is None:
        # Killed between writing config.json and its first commit: nothing of the run
        # exists yet, so it starts again from the beginning with the settings it has.
        out(f"run {run_dir} stopped before its first commit; starting it from the beginning")
    elif state is not None and state.phase == "finished":
        out(run_state.finished_line(run_dir))
        with open(os.path.join(run_dir, "best.json")) as f:
            return json.load(f)
    table = dataset = None
    evaluation = specs.EVALUATIONS[config.evaluation]
    if evaluation.table:  # config.resolved() refused ops the table does not know.
        table = benchmarks.make_benchmark(config, given=benchmark)
    if evaluation.images:
        dataset = data.load_dataset(
            config.dataset,
            train_size=config.train_size,
            val_size=config.val_size,
            seed=config.seed,
            data_dir=config.data_dir,
            download=config.download,
        )
    template = _make_builder(config, space, dataset, builder)
    shared = make_shared(config, dataset, space) if evaluation.supernet else None
    if shared is not None and specs.benchmark(config.benchmark).space == config.space:
        # A table that knows every architecture of the space: each pick is held against it.
        shared.truth = benchmarks.make_benchmark(config)
    manager = make_manager(config, dataset, space, template, shared, table)
    if specs.uses_scores(config):
        try:
            manager.scorer  # pylint: disable=pointless-statement
        except ValueError as e:
            raise ConfigError(f"--proxy_batch: {e}; lower --proxy_batch") from None
    budget = budget_lib.Budget(config.trials, config.time_budget, config.benchmark_seconds)
    started_ray = False
    try:
        if config.workers:  # Before the run folder exists: a Ray that fails leaves none.
            started_ray = workers.start_ray(config.ray_address, _local_cpus(config))
            manager.pool = make_pool(config, dataset, manager, out)
        # After Ray: a strategy that prepares (the embedding's pre-training) does not
        # make a user wait for a cluster that cannot be reached.
        strategy = make_strategy(
            config, space, manager, run_dir, out, progress=budget.fraction, given=strategy
        )
        try:
            os.makedirs(run_dir, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot write the run folder {run_dir}: {e.strerror}") from None
        lock = run_state.lock(run_dir)
        try:
            return _run_locked(
                config, run_dir, state, dataset, space, strategy, manager, budget, out, should_stop,
                components,
            )
        except OSError as e:  # A full disk, a folder made read-only, a file system gone.
            where = f" ({e.filename})" if e.filename else ""
            if os.path.exists(os.path.join(run_dir, "config.json")):
                then = ("the run is saved up to its last commit: once the folder can be "
                        "written again, resume it with --resume")
            else:  # Stopped in its first commit: nothing to resume.
                then = ("nothing of the run was saved: once the folder can be written "
                        "again, start it again")
            raise RunFolderError(
                f"cannot write the run folder {run_dir}{where}: {e.strerror or e}; {then}"
            ) from None
        finally:
            lock.close()
    except workers.WorkerError as e:
        raise ConfigError(f"--workers={config.workers}: {e}") from None
    finally:
        if manager.pool is not None:
            manager.pool.close()
            out(manager.pool.summary())
            manager.pool = None
        if started_ray:
            workers.stop_ray()


def _make_builder(config, space, dataset, given=None):
    """The network builder of `config.template` (None where nothing is built), or `given`;
    a user's builds the space's first architecture once, before any child trains.

    Raises:
      ConfigError: a reference that cannot be loaded, or a builder that fails that build.
    """
    if config.template is None:
        return None
    try:
        builder, where = templates.make_builder(config.template, given=given)
        if dataset is not None and (given is not None or not templates.BUILDERS.is_builtin(config.template)):
            templates.check_build(
                builder, space, dataset.input_shape, dataset.num_classes,
                templates.template_args(config), where,
            )
        return builder
    except extensions.ExtensionError as e:
        raise ConfigError(str(e)) from None


def _named(config, **given):
    """`config` with each object given in Python named in its field (config.json):
    its `module:qualname`, unless the field already holds a reference."""
    names = {
        field: extensions.reference_of(obj)
        for field, obj in given.items()
        if obj is not None and not extensions.is_reference(getattr(config, field))
    }
    return dataclasses.replace(config, **names) if names else config


def _components(config, space):
    """What the run is made of, for a resume to hold against (run_state.check_components):
    each component's name or reference, the files references name (their hash), and
    the space's decisions and choices."""
    record = {"space_signature": space.signature()}
    for field in ("space", "template", "strategy", "benchmark"):
        value = getattr(config, field)
        record[field] = {"name": value, "file": extensions.file_fingerprint(value)}
    return json.loads(json.dumps(record))  # As it reads back from the file.


def _local_cpus(config):
    """CPUs of a local Ray: the machine's, or what the workers ask for if more."""
    return max(os.cpu_count() or 1, math.ceil(config.workers * config.cpus_per_child))


def make_pool(config, dataset, manager, out=print):
    """The `workers.WorkerPool` of `--workers=N` on the Ray this process started or
    joined (`workers.start_ray`).

    Raises:
      workers.WorkerError: the cluster cannot hold one worker.
    """
    gpus = config.gpus_per_child
    if gpus is None:
        gpus = 1.0 if workers.cluster_gpus() else 0.0
    pool = workers.WorkerPool(
        manager.worker_settings(),
        dataset,
        config.workers,
        cpus_per_child=config.cpus_per_child,
        gpus_per_child=gpus,
        worker_children=config.worker_children,
        worker_growth_mb=config.worker_growth_mb,
    )
    out(
        f"children in {config.workers} worker process{'es' if config.workers > 1 else ''} "
        f"({pool.describe()}); each replaced after {config.worker_children} children or "
        f"{config.worker_growth_mb} MB of growth"
    )
    return pool


def _run_locked(
    config, run_dir, state, dataset, space, strategy, manager, budget, out, should_stop,
    components,
):
    if state is not None:
        state = run_state.read_state(run_dir)  # Read again under the lock.
    if manager.pool is None and specs.EVALUATIONS[manager.evaluation].guarded:  # In this process.
        manager.crash_marker = os.path.join(run_dir, crash_guard.MARKER)
        with contextlib.suppress(FileNotFoundError):
            os.remove(manager.crash_marker)  # Left by a process killed with kill -9.
        manager.crashed = crash_guard.read_crashes(run_dir)
        manager.final_crashes = crash_guard.final_crashes(run_dir)
    stop_rule = None
    if config.early_stop == "median":
        stop_rule = early_stopping.MedianRule(config.epochs, config.early_stop_after)
    run = run_commit.Run(run_dir, strategy, manager, budget, stop_rule)
    if state is not None:
        run.restore(state)
    else:
        # config.json and the first commit together: a signal cannot fall between them
        # (a SIGKILL can: a resume then starts the run again, `run_state.never_committed`).
        with deferred_signals():  # A write that fails: run_search's RunFolderError.
            run_log.write_json(
                os.path.join(run_dir, "config.json"),
                {**dataclasses.asdict(config), "dataset_split": _describe_data(manager)},
            )
            run_log.write_json(os.path.join(run_dir, run_state.COMPONENTS_FILE), components)
            run.save_checkpoint()
    # Move the long-lived objects of TensorFlow, Keras and the controller out of the
    # garbage collector's way: the collection that follows every child then costs
    # milliseconds instead of about 0.2 s (bench/search_overhead.py).
    gc.collect()
    gc.freeze()

    out(_describe_data(manager))
    out(space.describe())
    if state is not None:
        out(f"resuming {run_dir} at trial {run.trial + 1}, step {run.step}")
    else:
        out(
            f"strategy {config.strategy}: {progress.budget_words(config)}, "
            f"{config.children_per_step} per step; run folder {run_dir}"
        )
    if manager.objective is not None:
        out(manager.objective.describe())
    if stop_rule is not None:
        out(
            f"early stopping: a child below the median of the complete children after an "
            f"epoch stops (once {config.early_stop_after} are complete)"
        )
    if run.shared is not None:
        out(
            f"weight sharing: a supernet of {run.shared.net.count_params():,} parameters; a "
            f"pass of {run.shared.steps_per_pass} minibatches of {config.batch_size} trains it "
            f"every {config.shared_steps_per_epoch} steps; each child scored on "
            f"{config.eval_batch} validation images ({config.reward_mode} mode)"
        )
    log = RunLog(
        run_dir,
        space,
        tensorboard=config.tensorboard,
        keep_rows=run.trial,
        epoch_column=run.shared is not None,
        stop_column=stop_rule is not None,
        events=run.events,
        score=config.score_name,
        # A table names the metric its rewards are (NAS-Bench-201: `valid12_accuracy`, ...).
        accuracy=getattr(manager.benchmark, "column", "val_accuracy"),
        costs=manager.objective.names if manager.objective else (),
    )
    run.log = log
    with deferred_signals():
        run.save()  # Names this process's event file, so a resume can cut it back.
    started = time.perf_counter()
    started_trial = run.trial
    try:
        if run.phase == "search":
            _search(config, run, log, space, out, started, started_trial, should_stop)
    finally:
        log.close()
        run.log = None  # The final phase writes no events: its commits keep the sizes.
    search_seconds = run.elapsed()  # All processes of the run (resumed ones too).
    if run.best is None:
        if any(run.infeasible):
            raise manager_lib.SearchError(
                f"no child met the objective ({sum(run.infeasible):,} of {run.trial:,} over a "
                f"budget, the rest failed); loosen --max_cost or search longer"
            )
        raise manager_lib.SearchError("every child failed; no architecture to evaluate")
    return final_evaluation.evaluate(config, run, dataset, space, manager, out, search_seconds)


def _describe_data(manager):
    """What the children's fitness comes from: the dataset's splits, or the table."""
    if manager.benchmark is not None:
        return manager.benchmark.describe()
    return manager.dataset.describe()


def _search(config, run, log, space, out, started, started_trial, should_stop=None):
    """The loop: propose a step's children, evaluate them, learn, save.

    With shared weights, a pass of the training split trains the supernet before
    every `shared_steps_per_epoch`-th step. A trained child costs seconds: the run is committed (state.json) after every
    trial and a line is printed per child. Shared-weight and benchmark children cost
    milliseconds or microseconds, and saving the controller and the state after each
    one would cost more than the scoring (profiled: 63 ms per step with shared
    weights): those runs are committed (strategy checkpoint, state.json) at the end,
    after every supernet pass, and in between after the first step that ends
    `COMMIT_SECONDS` (shared) or `BENCHMARK_COMMIT_SECONDS` (benchmark) after the last
    commit; history.csv is synced at the commits. Every random choice lives in the
    committed state, so a run resumed from any commit continues exactly as an
    uninterrupted one; at most the steps since the last commit are done again. With
    shared weights one line is printed per step; with the benchmark, one every
    `_report_every` trials.
    """
    loop = _Loop(config, run, log, space, out, (started, started_trial), should_stop)
    while True:
        if run.pending is None and not loop.start_step():
            break
        architectures, results, scalars, step_started = loop.evaluate_step()
        loop.end_step(architectures, results, scalars, step_started)
    with deferred_signals():
        if run.best is not None:
            run.elapsed_before = run.elapsed()
            run.phase = "final"
        log.sync()
        run.save_checkpoint()  # With shared weights the last steps may be uncommitted.


class _Loop:
    """One search's loop, a job per method: a step's start (the budget, a supernet pass,
    the proposal), its children's evaluation (each trial recorded and committed as it
    ends), and its end (learning, scalars, the commit, the step's line)."""

    def __init__(self, config, run, log, space, out, clock, should_stop):
        self.config, self.run, self.log, self.space, self.out = config, run, log, space, out
        self.clock = clock  # (perf_counter at this session's start, trials before it)
        self.should_stop = should_stop
        self.shared, self.benchmark = run.shared, run.manager.benchmark
        self.batched = self.shared is not None or self.benchmark is not None  # Per step commits.
        shared = self.shared is not None
        self.commit_seconds = COMMIT_SECONDS if shared else BENCHMARK_COMMIT_SECONDS
        self.report_every = progress.report_every(config)
        self.last_commit = time.perf_counter()

    def start_step(self):
        """The next step's children proposed and held as pending (committed at once
        when trials are committed one by one); False when the search is over."""
        run, config = self.run, self.config
        if run.stopped_by == "benchmark_seconds":  # The last step's next query did not fit.
            return False
        run.budget.observe(run.trial, run.elapsed())
        run.stopped_by = run.budget.exhausted(run.step)
        if run.stopped_by:
            return False
        shared = self.shared
        if shared is not None and shared.epochs <= run.step // config.shared_steps_per_epoch:
            _train_supernet(run, self.log, self.out)
            self.last_commit = time.perf_counter()
        n = int(min(config.children_per_step, run.budget.children_left()))
        failures = run.manager.consecutive_failures
        architectures = run.strategy.propose(n)
        if not architectures:  # The proxy ranking is used up.
            run.stopped_by = "strategy"
            return False
        affordable = self._affordable(architectures)
        if affordable == 0:
            run.stopped_by = "benchmark_seconds"
            return False
        run.pending = {
            "architectures": [list(a) for a in architectures[:affordable]],
            "done": [],
            "consecutive_failures": failures,
            # The step's next query would pass the simulated budget: the search ends with it.
            "last": affordable < len(architectures),
        }
        if not self.batched:
            with deferred_signals():
                run.save()
        return True

    def _affordable(self, architectures):
        """How many of the proposed architectures the simulated budget pays for, queried
        in order (all without one)."""
        if self.run.budget.simulated is None:
            return len(architectures)
        costs = []
        for a in architectures:
            try:
                costs.append(manager_lib.simulated_seconds(self.benchmark, a))
            except Exception:  # pylint: disable=broad-except  (the query fails as a child)
                costs.append(0.0)
        return self.run.budget.affordable(costs)

    def evaluate_step(self):
        """The pending step's children evaluated (those done before a resume are not
        again) and learnt from: (architectures, results, the strategy's scalars, when
        the step started)."""
        run, manager = self.run, self.run.manager
        architectures = [tuple(a) for a in run.pending["architectures"]]
        done = [run_commit.result_from_json(r) for r in run.pending["done"]]
        manager.consecutive_failures = run.pending["consecutive_failures"]
        if self.shared is not None:
            self.shared.step = run.step
        if run.stop_rule is not None:  # Every child of the step meets the same record.
            manager.stop_thresholds = run.stop_rule.thresholds()
        step_started = time.perf_counter()
        results = manager.get_rewards(architectures, on_result=self.progress, done=done)
        if run.pending.get("last"):
            # Cut short by the simulated budget: the search ends with this step, so the
            # strategy learns nothing more (it proposed more than were queried, which a
            # strategy need not accept in `learn`).
            return architectures, results, {}, step_started
        scalars = run.strategy.learn(architectures, results)
        return architectures, results, scalars, step_started

    def _stopping(self):
        return self.should_stop is not None and self.should_stop()

    def progress(self, result):
        """A child's result as it ends: recorded (and committed, one by one), its line."""
        if result.failed and self._stopping():
            # The stop may be what failed it (a KeyboardInterrupt that TensorFlow or a
            # library turned into an error): not committed, trained again on resume.
            raise KeyboardInterrupt
        if self.batched:  # Nothing is committed per trial: no signal needs holding back.
            self.record(result)
        else:
            with deferred_signals():
                self.record(result)
            self.out(progress.trial_line(self.config, self.run, self.space, result, *self.clock))
        if self._stopping():
            raise KeyboardInterrupt

    def record(self, result):
        """One trial in the run's counts, history.csv (failures/ too) and, one by one,
        the pending step's done list and state.json."""
        run, space = self.run, self.space
        run.trial += 1
        scores = getattr(run.strategy, "scores", None)  # ProxyRankingStrategy's ranking.
        if result.score is None and scores:
            result.score = scores.get(tuple(result.architecture))
        run.count(result, space.poisoned_layers(result.architecture))
        if result.failed:
            self.log.write_failure(run.trial, result)
        self.log.write_trial(
            run.trial,
            run.step,
            result,
            elapsed=run.elapsed(),
            epoch=None if self.shared is None else self.shared.epochs,
            sync=not self.batched,
            poisoned=run.poisoned[-1],
        )
        if not self.batched:
            run.pending["done"].append(run_commit.result_to_json(result))
            run.save()

    def end_step(self, architectures, results, scalars, step_started):
        """The step's scalars written and the step committed (one by one, or every
        `commit_seconds` when batched); then its line."""
        config, run, space = self.config, self.run, self.space
        scalars.update(_step_scalars(config, run, space, architectures, results))
        with deferred_signals():
            self.log.write_scalars(run.step, scalars, flush=not self.batched)
            if run.stop_rule is not None:
                for result in results:  # In the step's order: the same record with N workers.
                    run.stop_rule.add(result)
            run.step += 1
            if run.pending.get("last"):
                run.stopped_by = "benchmark_seconds"
            run.pending = None
            now = time.perf_counter()
            if not self.batched or now - self.last_commit >= self.commit_seconds:
                self.log.sync()
                run.save_checkpoint()
                self.last_commit = now
        if self.shared is not None:
            line = progress.step_line(config, run, results, scalars, step_started, *self.clock)
            self.out(line)
        elif self.benchmark is not None and (
            run.trial // self.report_every > (run.trial - len(results)) // self.report_every
        ):
            self.out(progress.benchmark_line(config, run, space, self.benchmark, *self.clock))


def _step_scalars(config, run, space, architectures, results):
    """TensorBoard's scalars of a step beside the strategy's own: the fitness (mean and
    best so far), rewards, failed / cached / stopped children, the poison rate."""
    metric = config.evaluation if specs.EVALUATIONS[config.evaluation].score else "accuracy"
    scalars = {
        f"{metric}/mean": float(np.mean([r.fitness for r in results])),
        f"{metric}/best": run.best.fitness if run.best else 0.0,
        "reward/mean": float(np.mean([r.reward for r in results])),
        "reward/baseline": results[0].baseline,
        "children/failed": sum(r.failed for r in results),
        "children/cached": sum(r.cached for r in results),
    }
    if run.stop_rule is not None:
        scalars["children/stopped_early"] = sum(bool(r.stopped_epoch) for r in results)
    if space.poisoned:
        rates = [space.poisoned_layers(a) / space.num_layers for a in architectures]
        scalars["poison/rate"] = float(np.mean(rates))
        scalars["poison/prior"] = space.poison_prior()
    return scalars


def _train_supernet(run, log, out):
    """One pass of the training split for the supernet, each minibatch with an
    architecture from the strategy; then the supernet checkpoint is committed."""
    shared = run.shared
    out(f"supernet epoch {shared.epochs + 1}: training ({shared.steps_per_pass} minibatches) ...")
    strategy = run.strategy
    try:
        # DARTS and GDAS train it themselves (their architecture parameters with it).
        step = strategy.supernet_step if strategy.trains_supernet() else None
        scalars = shared.train_epoch(strategy.propose, step=step)
    except FloatingPointError as e:
        raise manager_lib.SearchError(
            f"{e}; lower --shared_lr or --shared_grad_clip (the run resumes from its last "
            f"supernet epoch)"
        ) from None
    pick = strategy.derived()
    if pick is None and run.best is not None:
        pick = run.best.architecture
    checked = shared.log_epoch(run.run_dir, run.step, scalars, pick)
    scalars.update({f"pick/{k}": v for k, v in checked.items()})
    with deferred_signals():
        log.write_scalars(run.step, scalars)
        log.sync()
        run.save_checkpoint(supernet=True)
    line = (
        f"supernet epoch {shared.epochs}: loss {scalars['supernet/loss']:.4f} accuracy "
        f"{scalars['supernet/accuracy']:.4f} learning rate {scalars['supernet/learning_rate']:.5f} "
        f"| {scalars['supernet/seconds']:.1f}s"
    )
    if checked:
        line += (
            f"; pick {shared.space.format(pick)}: {shared.truth_title()} "
            f"{checked['table_accuracy']:.4f} in the table, rank {checked['table_rank']:,} of "
            f"{shared.truth.size:,}"
        )
    out(line)


