"""The search loop: propose children, train them, learn from their rewards, log.

`run_search(config)` is the one entry point `train.py` calls. Every strategy shares
the loop, the budget (`trials` children in all, `children_per_step` per step), the
outputs and the logging; strategies differ only in how they propose architectures
and what they learn from the results.

Library code: it never reads command-line flags.
"""

import dataclasses
import gc
import json
import os
import sys
import time

import numpy as np

import controller as controller_lib
import data
import manager as manager_lib
import state_space
from run_log import RunLog, write_json

SPACES = ("toy", "macro")
STRATEGIES = ("controller", "random")


class ConfigError(ValueError):
    """A bad search setting; the message names the value and what is allowed."""


@dataclasses.dataclass
class SearchConfig:
    """Every setting of a search, with its default. See train.py for the help texts."""

    # Data.
    dataset: str = "mnist5k"
    data_dir: str = None
    train_size: int = None
    val_size: int = 500
    # Search space.
    space: str = "toy"
    num_layers: int = None  # None: 4 for toy, 6 for macro.
    filters: int = 24  # Width of the macro network (the toy space chooses its own).
    # Search.
    strategy: str = "controller"
    trials: int = 64
    children_per_step: int = 8
    seed: int = 0
    # Child training.
    epochs: int = 3
    batch_size: int = 128
    child_lr: float = 3e-3
    final_epochs: int = None  # None: same as epochs.
    cache: bool = True
    max_failures: int = 5
    # Reward.
    acc_beta: float = 0.8
    clip_rewards: float = 0.0
    # Controller (see controller.DEFAULTS for sources).
    controller: dict = dataclasses.field(default_factory=dict)
    # Output.
    logdir: str = "logs"
    run_name: str = None  # None: <space>-<strategy>-seed<seed>.
    tensorboard: bool = True

    def resolved(self):
        """A copy with the None defaults filled in, after checking every value."""
        c = dataclasses.replace(self, controller=dict(self.controller))
        _check(c.space in SPACES, f"--space must be one of {list(SPACES)}, got {c.space!r}")
        _check(
            c.strategy in STRATEGIES,
            f"--strategy must be one of {list(STRATEGIES)}, got {c.strategy!r}",
        )
        _check(
            c.dataset in data.DATASETS,
            f"--dataset must be one of {list(data.DATASETS)}, got {c.dataset!r}",
        )
        if c.num_layers is None:
            c.num_layers = 4 if c.space == "toy" else 6
        for name in (
            "num_layers",
            "trials",
            "children_per_step",
            "epochs",
            "batch_size",
            "filters",
            "max_failures",
        ):
            value = getattr(c, name)
            _check(
                isinstance(value, int) and value >= 1,
                f"--{name} must be an integer >= 1, got {value!r}",
            )
        if c.final_epochs is None:
            c.final_epochs = c.epochs
        _check(c.final_epochs >= 1, f"--final_epochs must be >= 1, got {c.final_epochs}")
        _check(c.child_lr > 0, f"--child_lr must be > 0, got {c.child_lr}")
        _check(0 <= c.acc_beta < 1, f"--acc_beta must be in [0, 1), got {c.acc_beta}")
        _check(c.clip_rewards >= 0, f"--clip_rewards must be >= 0 (0 = off), got {c.clip_rewards}")
        _check(c.seed >= 0, f"--seed must be >= 0, got {c.seed}")
        if c.run_name is None:
            c.run_name = f"{c.space}-{c.strategy}-seed{c.seed}"
        _check(
            bool(c.run_name) and os.sep not in c.run_name and c.run_name not in (".", ".."),
            f"--run_name must be a plain folder name, got {c.run_name!r}",
        )
        return c


def _check(condition, message):
    if not condition:
        raise ConfigError(message)


def make_space(config):
    """The StateSpace and template named by the config."""
    if config.space == "toy":
        return state_space.toy_space(config.num_layers), "toy"
    return state_space.macro_space(config.num_layers), "macro"


class RandomStrategy:
    """Uniform sampling from the space: the baseline every controller must beat."""

    def __init__(self, space, seed):
        self.space = space
        self.rng = np.random.default_rng(seed)

    def propose(self, n):
        return self.space.sample(self.rng, n)

    def learn(self, architectures, results):
        return {}


class ControllerStrategy:
    """The RL controller: sample from the policy, REINFORCE on the rewards."""

    def __init__(self, space, seed, hparams):
        self.controller = controller_lib.Controller(space, seed=seed, **hparams)

    def propose(self, n):
        return self.controller.sample(n)

    def learn(self, architectures, results):
        probabilities = self.controller.probabilities(architectures)
        stats = self.controller.update(architectures, [r.reward for r in results])
        scalars = {"controller/loss": stats["loss"], "controller/entropy": stats["entropy"]}
        for decision, probs in zip(self.controller.space.decisions, probabilities):
            for choice, p in zip(decision.choices, probs):
                scalars[f"probs/{decision.key}/{choice}"] = p
        return scalars


def run_search(config, out=print):
    """Runs a whole search and the final evaluation of its best architecture.

    Args:
      config: a `SearchConfig`.
      out: where progress lines go.

    Returns:
      The dict written to best.json.

    Raises:
      ConfigError, data.DataError, controller_lib.ControllerError: bad settings.
      manager_lib.SearchError: too many failed children in a row.
    """
    config = config.resolved()
    run_dir = os.path.join(config.logdir, config.run_name)
    if os.path.isdir(run_dir) and os.listdir(run_dir):
        raise ConfigError(
            f"run folder {run_dir} already holds a run; pass another --run_name or remove it"
        )
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create run folder {run_dir}: {e.strerror}") from None
    dataset = data.load_dataset(
        config.dataset,
        train_size=config.train_size,
        val_size=config.val_size,
        seed=config.seed,
        data_dir=config.data_dir,
    )
    space, template = make_space(config)
    template_args = {"filters": config.filters} if template == "macro" else {}
    if config.strategy == "controller":
        strategy = ControllerStrategy(space, config.seed, config.controller)
    else:
        strategy = RandomStrategy(space, config.seed)
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
        template_args=template_args,
    )
    # Move the long-lived objects of TensorFlow, Keras and the controller out of the
    # garbage collector's way: the collection that follows every child then costs
    # milliseconds instead of about 0.2 s (bench/search_overhead.py).
    gc.collect()
    gc.freeze()
    log = RunLog(run_dir, space, tensorboard=config.tensorboard)
    write_json(
        log.path("config.json"), {**dataclasses.asdict(config), "dataset_split": dataset.describe()}
    )
    out(dataset.describe())
    out(space.describe())
    out(
        f"strategy {config.strategy}: {config.trials} children, {config.children_per_step} per step; run folder {run_dir}"
    )

    best = None
    history = []  # Validation accuracy of every trial, in order.
    trial = 0
    started = time.perf_counter()
    step = 0
    try:
        while trial < config.trials:
            n = min(config.children_per_step, config.trials - trial)
            architectures = strategy.propose(n)

            def progress(result):
                nonlocal trial, best
                trial += 1
                history.append(result.accuracy)
                log.write_trial(trial, step, result)
                if not result.failed and (best is None or result.accuracy > best.accuracy):
                    best = result
                elapsed = time.perf_counter() - started
                eta = elapsed / trial * (config.trials - trial)
                status = "cached" if result.cached else f"{result.seconds:.1f}s"
                if result.failed:
                    status = f"FAILED ({result.reason})"
                out(
                    f"trial {trial}/{config.trials} step {step} | {space.format(result.architecture)} | "
                    f"acc {result.accuracy:.4f} reward {result.reward:+.4f} | {status} | "
                    f"ETA {_duration(eta)}"
                )

            results = manager.get_rewards(architectures, on_result=progress)
            scalars = strategy.learn(architectures, results)
            accuracies = [r.accuracy for r in results]
            scalars.update(
                {
                    "accuracy/mean": float(np.mean(accuracies)),
                    "accuracy/best": best.accuracy if best else 0.0,
                    "reward/mean": float(np.mean([r.reward for r in results])),
                    "reward/baseline": results[0].baseline,
                    "children/failed": sum(r.failed for r in results),
                    "children/cached": sum(r.cached for r in results),
                }
            )
            log.write_scalars(step, scalars)
            step += 1
    finally:
        log.close()
    search_seconds = time.perf_counter() - started
    if best is None:
        raise manager_lib.SearchError("every child failed; no architecture to evaluate")

    out(
        f"search done in {_duration(search_seconds)}; best validation accuracy "
        f"{best.accuracy:.4f}: {space.format(best.architecture)}"
    )
    quarter = max(1, len(history) // 4)
    first, last = float(np.mean(history[:quarter])), float(np.mean(history[-quarter:]))
    out(
        f"mean validation accuracy: first quarter of the trials {first:.4f}, last quarter {last:.4f}"
    )
    out(f"retraining the best architecture for {config.final_epochs} epochs ...")
    model, _ = manager.train(best.architecture, epochs=config.final_epochs)
    val_accuracy = manager_lib.accuracy_of(model, dataset.x_val, dataset.y_val)
    test_accuracy = manager_lib.accuracy_of(model, dataset.x_test, dataset.y_test)
    model.save(log.path("best_model.keras"))
    summary = {
        "architecture": list(best.architecture),
        "architecture_str": space.format(best.architecture),
        "layers": space.layers(best.architecture),
        "search_val_accuracy": best.accuracy,
        "final_val_accuracy": float(val_accuracy),
        "test_accuracy": float(test_accuracy),
        "params": int(model.count_params()),
        "final_epochs": config.final_epochs,
        "trials": trial,
        "first_quarter_mean_accuracy": first,
        "last_quarter_mean_accuracy": last,
        "search_seconds": round(search_seconds, 3),
        "final_seconds": round(time.perf_counter() - started - search_seconds, 3),
    }
    write_json(log.path("best.json"), summary)
    out(f"best architecture: {summary['architecture_str']}")
    out(
        f"test accuracy {test_accuracy:.4f} (validation {val_accuracy:.4f}); model saved to "
        f"{log.path('best_model.keras')}"
    )
    return summary


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
