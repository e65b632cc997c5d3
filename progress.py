"""The progress lines of a search: one per trained child, one per step of shared-weight
scoring, one every few hundred table lookups, each with the time left (ETA).

Pure formatting: it reads the run's counts and writes nothing.
"""

import time

import numpy as np

import budget as budget_lib
import objectives

_duration = budget_lib.format_duration


def eta(config, run, started, started_trial):
    """Time left: by the trial budget at this process's pace, or the time budget's
    remainder, whichever ends first."""
    left = []
    if config.trials:
        trials_here = max(run.trial - started_trial, 1)
        left.append((time.perf_counter() - started) / trials_here * (config.trials - run.trial))
    if config.time_budget:
        left.append(max(0.0, config.time_budget - run.elapsed()))
    return _duration(min(left))


def budget_words(config):
    """`64 children`, `up to 64 children in 45m00s`, `children for 45m00s`, and the
    simulated budget: `children for 12,000 simulated training seconds`."""
    limits = []
    if config.time_budget is not None:
        limits.append(f"in {_duration(config.time_budget)} (time budget)")
    if getattr(config, "benchmark_seconds", None) is not None:
        limits.append(f"for {config.benchmark_seconds:,.0f} simulated training seconds")
    if not limits:
        return f"{config.trials} children"
    if config.trials is None:
        return "children " + " and ".join(limits).replace("in ", "for ", 1)
    return f"up to {config.trials} children " + " and ".join(limits)


def of(config):
    return f"/{config.trials}" if config.trials else ""


def trial_line(config, run, space, result, started, started_trial):
    """The progress line of one trained (or scored untrained) child."""
    status = "cached" if result.cached else f"{result.seconds:.1f}s"
    if result.failed:
        status = f"FAILED ({result.reason}; failures/trial-{run.trial:05d}.txt has its traceback)"
    elif result.infeasible:
        status = f"INFEASIBLE ({result.infeasible}; not evaluated)"
    elif result.stopped_epoch:
        status += (
            f" | stopped after epoch {result.stopped_epoch}/{config.epochs} "
            f"(fitness {result.fitness:.4f})"
        )
    if result.costs and not result.infeasible:
        status += " | " + ", ".join(objectives.describe_cost(n, v) for n, v in result.costs.items())
        if result.factor != 1.0:
            status += f" (fitness {result.fitness:.4f})"
    if space.poisoned:
        status += f" | poisoned {run.poisoned[-1]}/{space.num_layers}"
    if result.infeasible:
        value = "not evaluated"
    elif result.accuracy is None:
        value = f"{config.score_name} {result.score:.2f}"
    else:
        value = f"acc {result.accuracy:.4f}"
        value += "" if result.score is None else f" ({config.score_name} {result.score:.2f})"
    return (
        f"trial {run.trial}{of(config)} step {run.step} | "
        f"{space.format(result.architecture)} | {value} "
        f"reward {result.reward:+.4f} | {status} | ETA {eta(config, run, started, started_trial)}"
    )


def report_every(config):
    """Trials between two progress lines of a benchmark search: about 20 lines a run
    (a multiple of 100 from 1,000 trials on), every 1,000 without a trial limit."""
    if not config.trials:
        return 1000
    every = max(1, config.trials // 20)
    return every if every < 50 else max(50, every // 50 * 50)


def benchmark_line(config, run, space, benchmark, started, started_trial):
    """The progress line of a benchmark search: the best cell so far and the pace."""
    here = max(run.trial - started_trial, 1)
    rate = here / max(time.perf_counter() - started, 1e-9)
    recent = run.accuracies[-report_every(config) :]
    if run.best is None:
        best = "no feasible child yet"
    else:
        accuracy = run.best.accuracy  # Not the soft objective's fitness.
        best = (f"best {accuracy:.4f} (rank {benchmark.rank(accuracy)}) "
                f"{space.format(run.best.architecture)}")
    line = (
        f"trial {run.trial}{of(config)} step {run.step} | {best} | mean of the last {len(recent)} "
        f"{float(np.mean(recent)):.4f}"
    )
    if config.max_cost or config.cost_target:
        line += f" | infeasible {float(np.mean(run.infeasible[-len(recent):])):.3f}"
    if space.poisoned:
        recent_poison = np.asarray(run.poisoned[-len(recent) :], dtype=float) / space.num_layers
        line += f" | poison rate {float(np.mean(recent_poison)):.3f}"
    return line + f" | {rate:,.0f} trials/s | ETA {eta(config, run, started, started_trial)}"


def step_line(config, run, results, scalars, step_started, started, started_trial):
    """The progress line of one step of shared-weight scoring."""
    steps = f"/{-(-config.trials // config.children_per_step)}" if config.trials else ""
    line = (
        f"step {run.step}{steps} epoch {run.shared.epochs} | trials {run.trial}{of(config)} | "
        f"acc mean {scalars['accuracy/mean']:.4f} best {scalars['accuracy/best']:.4f} | "
        f"reward {scalars['reward/mean']:+.4f} baseline {scalars['reward/baseline']:.4f}"
    )
    if "poison/rate" in scalars:
        line += f" | poison rate {scalars['poison/rate']:.3f}"
    infeasible = sum(bool(r.infeasible) for r in results)
    if infeasible:
        line += f" | {infeasible} infeasible"
    failed = sum(r.failed for r in results)
    if failed:
        line += f" | {failed} FAILED ({next(r.reason for r in results if r.failed)})"
    line += f" | {time.perf_counter() - step_started:.1f}s"
    return line + f" | ETA {eta(config, run, started, started_trial)}"
