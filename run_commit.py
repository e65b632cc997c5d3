"""A run's commit point: everything a search needs to continue after a crash, its
atomic saving (state.json, the strategy's and the supernet's checkpoints) and its
restoring on --resume.

The file's schema and its reading, without Keras, are run_state.py's; this module
holds the live run the loop (search.py) updates and commits.
"""

import dataclasses
import os
import shutil
import time

import manager as manager_lib
import run_log
import run_state
from config import ConfigError
from run_state import STATE_FILE


def result_to_json(result):
    value = dataclasses.asdict(result)
    value["architecture"] = list(result.architecture)
    return value


def result_from_json(value):
    return manager_lib.ChildResult(**{**value, "architecture": tuple(value["architecture"])})


class RunFolderError(Exception):
    """The run folder cannot be written (disk full, read-only): the run stopped at its
    last commit and can be resumed once the folder is writable again."""


class Run:
    """Everything a search needs to continue after a crash, and its atomic saving.

    state.json is the commit point: it is replaced (atomically) after every trial and
    after every step, and holds how many rows of the append-only logs (trials.jsonl,
    history.csv) and bytes of the event files are committed; its size does not grow
    with the run (bench/state_commit.py). The controller's weights are written into a
    new folder per step first, and state.json names the folder to use, so a crash
    between the two writes leaves the previous, consistent pair.
    """

    def __init__(self, run_dir, strategy, manager, budget, stop_rule=None):
        self.run_dir = run_dir
        self.strategy = strategy
        self.manager = manager
        self.budget = budget  # budget.Budget: trials and seconds.
        self.stop_rule = stop_rule  # early_stopping.MedianRule, or None.
        # What ended the search: "trials", "time_budget", "benchmark_seconds", "strategy".
        self.stopped_by = None
        self.shared = manager.shared  # The SharedEvaluator, or None.
        self.supernet_checkpoint = None
        self.step = 0
        self.trial = 0
        self.best = None
        self.accuracies = []
        self.poisoned = []  # Poisoned layers of each trial's architecture.
        self.infeasible = []  # Whether each trial's architecture was over a budget.
        self.queried = []  # Each trial's architecture.
        self.pending = None  # The step in progress: its architectures and done children.
        self.phase = "search"  # search -> final -> finished
        self.checkpoint = None
        self.log = None  # The RunLog, once the run's files are open.
        self.events = {}  # TensorBoard event files and their committed sizes.
        self.elapsed_before = 0.0  # Search seconds of earlier processes (resumed runs).
        self.clock = time.perf_counter()

    def elapsed(self):
        """Seconds of search so far, over every process that worked on this run."""
        if self.phase != "search":
            return self.elapsed_before
        return self.elapsed_before + time.perf_counter() - self.clock

    def count(self, result, poisoned):
        """Adds a trial's result to the run's record: its fitness, its poisoned layers,
        and the best so far (a complete child fitter than it; one stopped early or over a
        budget never is)."""
        self.accuracies.append(result.fitness)  # The score with a training-free evaluation.
        self.poisoned.append(poisoned)
        self.infeasible.append(bool(result.infeasible))
        self.queried.append(result.architecture)
        if self.manager.benchmark is not None:  # A table's simulated training time.
            self.budget.charge(result.train_seconds)
        complete = not (result.failed or result.infeasible or result.stopped_epoch)
        if complete and (self.best is None or result.fitness > self.best.fitness):
            self.best = result

    def save(self):
        """Commits the run: state.json, whose size does not grow with the trials (what
        each trial was is in the logs, trials.jsonl and history.csv, which the caller has
        synced; the state holds how many of their rows are committed)."""
        if self.log is not None:
            self.events.update(self.log.events_state())
        state = run_state.RunState(
            phase=self.phase,
            step=self.step,
            trial=self.trial,
            elapsed=self.elapsed(),
            stopped_by=self.stopped_by,
            strategy={"checkpoint": self.checkpoint, "state": self.strategy.get_state()},
            manager={
                "baseline": self.manager.baseline.get_state(),
                "consecutive_failures": self.manager.consecutive_failures,
            },
            pending=self.pending,
            events=self.events,
        )
        if self.shared is not None:
            state.shared = {"checkpoint": self.supernet_checkpoint, "state": self.shared.get_state()}
        run_log.write_json(os.path.join(self.run_dir, STATE_FILE), state.to_json(), indent=None)

    def save_checkpoint(self, supernet=False):
        """Saves the strategy's weights for the current step (and, with `supernet`,
        the supernet and its optimizer) and commits to them in state.json; the
        folders they replace go only after the commit."""
        name = f"checkpoints/step-{self.step:05d}"
        # The weights change only in a step's update and a supernet pass, which move the
        # step or the epoch on: a folder already committed holds these weights and is
        # never written again (a kill in the middle would damage the committed copy).
        if name != self.checkpoint:
            self.strategy.save(os.path.join(self.run_dir, name))
        replaced = [(self.checkpoint, name)]
        self.checkpoint = name
        if supernet:
            net = f"checkpoints/supernet-{self.shared.epochs:04d}"
            if net != self.supernet_checkpoint:
                self.shared.save(os.path.join(self.run_dir, net))
            replaced.append((self.supernet_checkpoint, net))
            self.supernet_checkpoint = net
        self.save()
        for previous, current in replaced:
            if previous and previous != current:
                shutil.rmtree(os.path.join(self.run_dir, previous), ignore_errors=True)

    def restore(self, state):
        """Continues from a commit (a run_state.RunState read from the run folder)."""
        self.phase = state.phase
        self.step, self.trial = state.step, state.trial
        self.elapsed_before = state.elapsed
        self.stopped_by = state.stopped_by
        self.events = dict(state.events)
        # The trials again, as search._Loop's `record` saw them (read with the state:
        # run_state.read_state, which refused a damaged trials.jsonl).
        for record in state.records:
            result = result_from_json(record["result"])
            self.count(result, record["poisoned"])
            if self.manager.use_cache and not result.cached and not result.failed:
                self.manager.cache[result.architecture] = result
            if self.stop_rule is not None and record["step"] < self.step:
                self.stop_rule.add(result)  # The steps done; the pending one adds its own.
        self.clock = time.perf_counter()
        self.checkpoint = state.strategy["checkpoint"]
        if self.checkpoint:
            self.strategy.load(os.path.join(self.run_dir, self.checkpoint))
        self.strategy.set_state(state.strategy["state"])
        if self.shared is not None:
            shared = state.shared
            if shared is None:
                raise ConfigError(f"cannot resume: {self.run_dir} holds no supernet state")
            self.supernet_checkpoint = shared["checkpoint"]
            if self.supernet_checkpoint:
                try:
                    self.shared.load(os.path.join(self.run_dir, self.supernet_checkpoint))
                except ValueError as e:
                    raise ConfigError(f"cannot resume: {e}") from None
            self.shared.set_state(shared["state"])
        self.manager.baseline.set_state(state.manager["baseline"])
        self.manager.consecutive_failures = state.manager["consecutive_failures"]
        self.pending = state.pending
