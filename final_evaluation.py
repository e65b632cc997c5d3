"""The end of a search: the best architecture retrained from scratch and tested once
(derived first with shared weights), or, for a table of results, its rank and regret;
best.json written and the run marked finished.
"""

import os
import time

import keras
import numpy as np

import budget as budget_lib
import config as config_lib
import fronts
import manager as manager_lib
import objectives
import run_log
import specs
import zero_cost
from run_log import deferred_signals

_duration = budget_lib.format_duration


def evaluate(config, run, dataset, space, manager, out, search_seconds):
    """Retrains the best architecture, tests it once, saves it; marks the run finished.

    With shared weights the best architecture is derived first (`_derive`)."""
    best = run.best
    quarter = max(1, len(run.accuracies) // 4)
    first = float(np.mean(run.accuracies[:quarter]))
    last = float(np.mean(run.accuracies[-quarter:]))
    scored = specs.EVALUATIONS[config.evaluation].score  # Scored untrained, not trained.
    metric, name = (
        (f"{config.score_name}_score", config_lib.score_title(config.score_name))
        if scored
        else ("accuracy", "validation accuracy")
    )
    if run.shared is not None:
        name = "minibatch accuracy with shared weights"
    if manager.benchmark is not None:
        name = f"{getattr(manager.benchmark, 'reward_title', manager.benchmark.metric)} in the table"
    ended = {
        "time_budget": f" (the time budget of {_duration(config.time_budget or 0)} is spent)",
        "benchmark_seconds": f" (the simulated budget of {config.benchmark_seconds or 0:,.0f} s is "
                             f"spent: {run.budget.charged:,.0f} s in {run.trial} queries)",
        "strategy": " (the strategy had no more architectures to propose)",
    }.get(run.stopped_by, "")
    out(
        f"search done in {_duration(search_seconds)}{ended}; best {name} "
        f"{best.fitness:.4f}: {space.format(best.architecture)}"
    )
    out(f"mean {name}: first quarter of the trials {first:.4f}, last quarter {last:.4f}")
    poison = {}
    if space.poisoned:
        rates = np.asarray(run.poisoned, dtype=float) / space.num_layers
        poison = {
            "poisoned_layers": space.poisoned_layers(best.architecture),
            "first_quarter_poison_rate": float(np.mean(rates[:quarter])),
            "last_quarter_poison_rate": float(np.mean(rates[-quarter:])),
            "poison_prior": space.poison_prior(),
        }
        out(
            f"poison rate (poisoned layers per layer): first quarter "
            f"{poison['first_quarter_poison_rate']:.3f}, last quarter "
            f"{poison['last_quarter_poison_rate']:.3f}; uniform prior {poison['poison_prior']:.3f}"
        )
    if manager.objective is not None:
        shares = [float(np.mean(part)) for part in np.array_split(run.infeasible, 4) if part.size]
        poison["infeasible_share_by_quarter"] = shares  # Beside the poison rates, per quarter.
        out("share of the trials over a budget, by quarter of the run: "
            + ", ".join(f"{x:.3f}" for x in shares))
    if manager.benchmark is not None:
        return _report_benchmark(config, run, space, manager, out, search_seconds, {
            "trials": run.trial,
            f"first_quarter_mean_{metric}": first,
            f"last_quarter_mean_{metric}": last,
            **poison,
        })
    shared = {}
    if run.shared is not None:
        best, shared = _derive(config, run, space, manager, out)
        if space.poisoned:
            poison["poisoned_layers"] = space.poisoned_layers(best.architecture)
    started = time.perf_counter()
    model = crashed = None
    if config.final_epochs:
        out(f"retraining the best architecture for {config.final_epochs} epochs ...")
        model, crashed = manager.train_final(best.architecture, config.final_epochs)
    model_path = os.path.join(run.run_dir, "best_model.keras")
    val_accuracy = test_accuracy = None
    if model is not None:
        val_accuracy = float(manager_lib.accuracy_of(model, dataset.x_val, dataset.y_val))
        test_accuracy = float(manager_lib.accuracy_of(model, dataset.x_test, dataset.y_test))
        model.save(model_path + ".tmp.keras")
        os.replace(model_path + ".tmp.keras", model_path)
    costs = {}
    if model is not None:
        costs = {"params": float(model.count_params()), "flops": float(zero_cost.flops(model))}
    if manager.objective is not None:  # What it was held to (latency: of the untrained network).
        costs.update(manager.meter.measure(best.architecture))
    summary = {
        "architecture": list(best.architecture),
        "architecture_str": space.format(best.architecture),
        "layers": space.layers(best.architecture),
        "costs": costs,
        # None when the search trained no child; with shared weights, the pick's
        # accuracy on the whole validation split with the shared weights.
        "search_val_accuracy": best.accuracy,
        f"{config.score_name}_score": best.score,
        # None with --final_epochs=0 (no retraining), or when the final retraining killed
        # the search process twice (crash_guard.py).
        "final_val_accuracy": val_accuracy,
        "test_accuracy": test_accuracy,
        "params": None if model is None else int(model.count_params()),
        "final_epochs": config.final_epochs,
        "final_failed": crashed,
        "keras_backend": keras.backend.backend(),  # What trained the final model.
        "trials": run.trial,
        f"first_quarter_mean_{metric}": first,
        f"last_quarter_mean_{metric}": last,
        **poison,
        **shared,
        "search_seconds": round(search_seconds, 3),
        "time_budget_seconds": config.time_budget,
        "stopped_by": run.stopped_by,
        "final_seconds": round(time.perf_counter() - started, 3),
    }
    with deferred_signals():
        run_log.write_json(os.path.join(run.run_dir, "best.json"), summary)
        run.phase = "finished"
        run.save()
    out(f"best architecture: {summary['architecture_str']}")
    if model is None:
        if not config.final_epochs:
            out("no final retraining (--final_epochs=0); best.json has the search's result")
        else:
            out(f"no final model: {crashed}, twice (once with oneDNN off); best.json has the "
                f"search's result")
        return summary
    out(
        f"test accuracy {test_accuracy:.4f} (validation {val_accuracy:.4f}); model saved to "
        f"{model_path}"
    )
    out(_costs_line(costs, config))
    return summary


def _costs_line(costs, config):
    """The pick's costs in a line, and the budgets it was held to."""
    line = "its costs: " + ", ".join(objectives.describe_cost(n, v) for n, v in costs.items())
    if config.max_cost:
        line += f" (budgets {config.max_cost})"
    return line


def _report_benchmark(config, run, space, manager, out, search_seconds, entries):
    """The report of a benchmark search: the pick's fitness in the table, its rank among
    the table's architectures and its regret to the best, and what the benchmark adds
    (`report`: NAS-Bench-201's accuracies on its three datasets; `costs`: its network's
    costs; with an objective, the exact fronts: fronts.py); nothing is retrained; marks
    the run finished."""
    best, benchmark = run.best, manager.benchmark
    costs = benchmark.costs(best.architecture) if hasattr(benchmark, "costs") else {}
    front = {}
    if manager.objective is not None and hasattr(benchmark, "cost_by_row"):
        front = fronts.report(benchmark, manager.objective, run.queried, best.architecture, space)
        limits = dict(manager.objective.limits)
        for name in front["costs"]:
            fronts.plot(benchmark, name, run.queried, best.architecture,
                        os.path.join(run.run_dir, f"front_{name}.png"), space, limits.get(name))
    fitness = benchmark.fitness(best.architecture)
    report = benchmark.report(best.architecture, space) if hasattr(benchmark, "report") else {}
    # The query that first reached the pick's reward (the pick itself, or a tie).
    first_trial = next(i + 1 for i, a in enumerate(run.accuracies) if a >= best.fitness)
    summary = {
        "architecture": list(best.architecture),
        "architecture_str": space.format(best.architecture),
        "layers": space.layers(best.architecture),
        "search_reward": best.accuracy,  # The pick's reward: see reward_metric.
        "final_val_accuracy": None,  # Nothing is retrained.
        "test_accuracy": None,  # The table's own (NAS-Bench-201's `report` gives it).
        "params": best.params,
        "benchmark": config.benchmark,
        "benchmark_metric": benchmark.metric,
        "benchmark_fitness": fitness,
        "benchmark_rank": benchmark.rank(fitness),
        "benchmark_regret": benchmark.best() - fitness,
        "benchmark_size": benchmark.size,
        **report,
        "costs": costs,
        **({"front": front} if front else {}),
        "trial_of_best": first_trial,
        "simulated_seconds": run.budget.charged,
        **entries,
        "search_seconds": round(search_seconds, 3),
        "time_budget_seconds": config.time_budget,
        "stopped_by": run.stopped_by,
    }
    with deferred_signals():
        run_log.write_json(os.path.join(run.run_dir, "best.json"), summary)
        run.phase = "finished"
        run.save()
    if hasattr(benchmark, "report_lines"):
        for line in benchmark.report_lines(summary, first_trial):
            out(line)
    else:
        out(
            f"best: {summary['architecture_str']}, found at query {first_trial}: "
            f"{benchmark.metric} {fitness:.4f}, rank {summary['benchmark_rank']:,} of "
            f"{benchmark.size:,}, regret {summary['benchmark_regret']:.4f} to the best"
        )
    if costs:
        out(_costs_line(costs, config))
    if front:
        for line in fronts.lines(front, getattr(benchmark, "fitness_title", benchmark.metric)):
            out(line)
    return summary


def _derive(config, run, space, manager, out):
    """ENAS's derivation: `derive_candidates` architectures proposed by the strategy
    (the controller's final policy; uniform for random search; mutations of
    tournament parents for evolution), ranked by `SharedEvaluator.derive` (derive.csv).

    Returns:
      (ChildResult of the pick, dict of best.json entries).
    """
    shared = run.shared
    proposed = list(dict.fromkeys(tuple(a) for a in run.strategy.propose(config.derive_candidates)))
    factors = {}
    if manager.objective is not None:  # Only candidates within the budgets, by the trade-off.
        verdicts = {a: manager.judge(a) for a in proposed}
        factors = {a: v.factor for a, (v, result) in verdicts.items() if result is None}
        proposed = [a for a in proposed if a in factors] or [run.best.architecture]
        factors.setdefault(run.best.architecture, run.best.factor)
    out(
        f"deriving: {len(proposed)} distinct architectures of {config.derive_candidates} proposed, "
        f"scored on the {len(shared.dataset.y_val)} validation images with the shared weights ..."
    )
    started = time.perf_counter()
    ranking = shared.derive(proposed, os.path.join(run.run_dir, "derive.csv"))
    if factors:
        ranking = sorted(ranking, key=lambda pair: -pair[1] * factors[pair[0]])
    pick, accuracy = ranking[0]
    median = float(np.median([a for _, a in ranking]))
    out(
        f"derived in {_duration(time.perf_counter() - started)}: shared-weight validation accuracy "
        f"{accuracy:.4f} (median of the candidates {median:.4f}): {space.format(pick)}"
    )
    result = manager_lib.ChildResult(pick, accuracy, params=shared.params(pick))
    checked = shared.check_pick(pick)
    if checked:  # NAS-Bench-201: the pick as the table knows it.
        truth = shared.truth
        title = shared.truth_title()
        checked.update(table_metric=title, table_size=truth.size,
                       table_regret=truth.best() - checked["table_accuracy"])
        out(
            f"the pick in the table: {title} "
            f"{checked['table_accuracy']:.4f}, rank {checked['table_rank']:,} of {truth.size:,}, "
            f"regret {checked['table_regret']:.4f} to the best"
        )
    entries = {
        "shared_val_accuracy": accuracy,
        "best_minibatch_accuracy": run.best.accuracy,
        "best_minibatch_architecture": space.format(run.best.architecture),
        "derive_candidates": len(proposed),
        "derive_median_accuracy": median,
        "supernet_epochs": shared.epochs,
        **checked,
        "derive_seconds": round(time.perf_counter() - started, 3),
    }
    return result, entries
