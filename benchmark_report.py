"""The assessment's answer on a benchmark (NAS-Bench-201's table, or a user's: any
extensions.Benchmark): what each run had found after 100, 300, 1,000 and 3,000
queries, and each strategy against random search at the same budget.

A run of the grid searches the table for the largest budget; its state after the
first N queries is what a run of N queries would have found for every strategy whose
choices do not depend on the budget (all but `budget_controller`, which plans for
the whole run: for it, the smaller budgets are the start of a longer run).

Per run and budget (`run_metrics`, from its history.csv): the pick (the best reward
among the first N queries), its accuracy on the table, its regret to the best cell
of the benchmark and of the searched space, its rank in the table (NB201: among 15,625 cells), the
poison rate in each quarter of the N queries, and the queries until a cell of the
benchmark's top 1% was first asked. Over seeds (`summarize`): mean +- std and a 95%
bootstrap interval, and a two-sided Mann-Whitney U test against random search.
"""

import csv
import dataclasses
import math
import os

import numpy as np

import stats
from run_log import accuracy_column

BUDGETS = (100, 300, 1000, 3000)
TOP_FRACTION = 0.01  # "Top 1%": NB201's 157 best cells of 15,625 (ceil(156.25)).
END = "end"  # The budget of a run's last query: where a budget of simulated seconds ends.
METRIC_COLUMNS = (
    "budget",
    "queries",
    "pick_accuracy",
    "regret",
    "regret_in_space",
    "rank",
    "poison_rate_q1",
    "poison_rate_q2",
    "poison_rate_q3",
    "poison_rate_q4",
    "queries_to_top",
    "infeasible_q1",
    "infeasible_q2",
    "infeasible_q3",
    "infeasible_q4",
)


def read_history(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@dataclasses.dataclass
class Run:
    """One run's history, read against the table (`parse_run`).

    Attributes:
      true: the table's accuracy of each query's cell.
      rewarded: each query's reward fitness (history.csv's val_accuracy; the table's
        accuracy plus any reward errors).
      poisoned: each query's fraction of poisoned edges.
      picks: the pick after each query: the first query with the best reward so far,
        as the search picks (among the feasible queries; -1 before the first).
      feasible: whether each query was within the run's budgets (None: no budget).
    """

    true: np.ndarray
    rewarded: np.ndarray
    poisoned: np.ndarray
    picks: np.ndarray
    feasible: np.ndarray = None

    def pick_accuracy(self, n):
        """The table's accuracy of the pick after the first n queries: 0 with no feasible
        query among them (no architecture meets the budgets)."""
        pick = self.picks[n - 1]
        return 0.0 if pick < 0 else float(self.true[pick])


def parse_run(rows, benchmark, space):
    """The `Run` of history.csv `rows` (in trial order) of a search of `benchmark`
    (extensions.Benchmark) over `space`; a query the table could not answer (a failed
    child) has no true fitness (NaN)."""
    keys = [d.key for d in space.decisions]
    by_text = [{str(c): c for c in d.choices} for d in space.decisions]
    true = []
    for r in rows:
        architecture = tuple(choices[r[k]] for choices, k in zip(by_text, keys))
        try:
            true.append(float(benchmark.fitness(architecture)))
        except Exception:  # pylint: disable=broad-except  (a table of a user's may not hold it)
            true.append(math.nan)
    column = accuracy_column(list(rows[0])) if rows else "val_accuracy"  # The reward's metric.
    rewarded = np.array([float(r[column]) for r in rows])
    feasible = np.array([r["feasible"] == "1" for r in rows]) if rows and "feasible" in rows[0] else None
    picks = np.zeros(len(rows), dtype=np.int64)
    best, pick = -np.inf, -1
    for n, value in enumerate(rewarded):
        if value > best and (feasible is None or feasible[n]):
            best, pick = value, n
        picks[n] = pick
    return Run(
        true=np.array(true),
        rewarded=rewarded,
        poisoned=np.array([int(r["poisoned_layers"] or 0) for r in rows]) / space.num_layers,
        picks=picks,
        feasible=feasible,
    )


def budget_order(budget):
    """A sort key of budgets: the query counts in order, then `END`."""
    return (1, 0) if budget == END else (0, budget)


def run_metrics(run, benchmark, space, budgets=BUDGETS, end=False, optimum=None):
    """One dict per budget in `budgets` that the run reached (METRIC_COLUMNS), and
    with `end` one more for its last query (budget `END`: a run whose queries a budget of
    simulated seconds counted, however many they were).

    Args:
      run: the run's `parse_run`.
      benchmark: the benchmark the run searched (extensions.Benchmark).
      space: the run's (possibly poisoned or reduced) space.
      optimum: with budgets on costs, the constrained optimum (the best accuracy within
        them: fronts.constrained_optimum), which the regrets are measured to; and the
        share of infeasible queries in each quarter is reported.
    """
    best = benchmark.best() if optimum is None else optimum
    best_in_space = benchmark.best_in_space(space) if hasattr(benchmark, "best_in_space") else best
    best_in_space = best_in_space if optimum is None else optimum
    top = math.ceil(TOP_FRACTION * benchmark.size)
    in_top = np.array([not math.isnan(a) and benchmark.rank(a) <= top for a in run.true])
    out = []
    ends = [(n, n) for n in budgets if n <= len(run.true)] + ([(END, len(run.true))] if end else [])
    for budget, n in ends:
        accuracy = run.pick_accuracy(n)
        reached = np.flatnonzero(in_top[:n])
        out.append(
            {
                "budget": budget,
                "queries": n,
                "pick_accuracy": accuracy,
                "regret": best - accuracy,
                "regret_in_space": best_in_space - accuracy,
                "rank": benchmark.rank(accuracy),
                **{
                    f"poison_rate_q{q + 1}": float(part.mean()) if space.poisoned else None
                    for q, part in enumerate(np.array_split(run.poisoned[:n], 4))
                },
                "queries_to_top": int(reached[0]) + 1 if reached.size else None,
                **{
                    f"infeasible_q{q + 1}": None if part is None else float(1 - part.mean())
                    for q, part in enumerate(
                        [None] * 4 if run.feasible is None else np.array_split(run.feasible[:n], 4))
                },
            }
        )
    return out


def summarize(records, baseline="random", seed=0):
    """Rows of the grid's table, one per (setting, strategy, budget).

    Args:
      records: dicts with `setting`, `strategy`, `seed` and the METRIC_COLUMNS.
      baseline: the strategy every other is tested against at the same setting and budget.

    Returns:
      Dicts: setting, strategy, budget, runs; mean/std/low/high of pick_accuracy and
      regret; mean rank; mean poison rate per quarter; runs that reached the top 1%
      and their mean queries; U and p of the test against `baseline` (None for it).
    """
    groups = {}
    for r in records:
        groups.setdefault((r["setting"], r["strategy"], r["budget"]), []).append(r)
    out = []
    for (setting, strategy, budget), rs in groups.items():
        row = {"setting": setting, "strategy": strategy, "budget": budget, "runs": len(rs)}
        for name in ("pick_accuracy", "regret"):
            values = [r[name] for r in rs]
            row[f"{name}_mean"], row[f"{name}_std"] = stats.mean_std(values)
            row[f"{name}_low"], row[f"{name}_high"] = stats.bootstrap_interval(values, seed=seed)
        row["rank_mean"] = float(np.mean([r["rank"] for r in rs]))
        row["queries_mean"] = float(np.mean([r["queries"] for r in rs]))
        for q in range(1, 5):
            for name in (f"poison_rate_q{q}", f"infeasible_q{q}"):
                values = [r[name] for r in rs if r.get(name) is not None]
                row[name] = float(np.mean(values)) if values else None
        reached = [r["queries_to_top"] for r in rs if r["queries_to_top"] is not None]
        row["reached_top"] = len(reached)
        row["queries_to_top_mean"] = float(np.mean(reached)) if reached else None
        row["u"] = row["p"] = None
        base = groups.get((setting, baseline, budget))
        if strategy != baseline and base:
            row["u"], row["p"] = stats.mann_whitney(
                [r["pick_accuracy"] for r in rs], [r["pick_accuracy"] for r in base]
            )
        out.append(row)
    return out


def verdicts(summary, priors, strategy="controller", baseline="random"):
    """Per poisoned setting: whether `strategy`'s last-quarter poison rate is below
    half of `baseline`'s at each budget, and the first budget at which it holds.

    Returns:
      {setting: {"prior": p, "by_budget": {budget: (rate, baseline rate, holds)},
      "first": budget or None}}.
    """
    rate = {(r["setting"], r["strategy"], r["budget"]): r["poison_rate_q4"] for r in summary}
    out = {}
    for setting, prior in priors.items():
        by_budget = {}
        for budget in sorted({r["budget"] for r in summary if r["setting"] == setting}, key=budget_order):
            ours, theirs = rate.get((setting, strategy, budget)), rate.get((setting, baseline, budget))
            if ours is None or theirs is None:
                continue
            by_budget[budget] = (ours, theirs, ours < 0.5 * theirs)
        first = next((b for b, (_, _, holds) in sorted(by_budget.items(), key=lambda i: budget_order(i[0]))
                      if holds), None)
        out[setting] = {"prior": prior, "by_budget": by_budget, "first": first}
    return out


def _pct(x):
    return "" if x is None else f"{100 * x:.2f}"


def write_markdown(path, summary, verdict, children_per_step, benchmark, note="", exact=None):
    """benchmark.md: the table per setting and the verdicts; `exact` ({(setting, budget):
    accuracy}) adds random search's exact expectation at each budget. With budgets on
    costs (rows with infeasible shares) the regrets are to the constrained optimum and
    each row gives the share of infeasible queries per quarter."""
    constrained = any(r.get("infeasible_q1") is not None for r in summary)
    rewards = getattr(benchmark, "reward_title", None)
    lines = [
        f"# Benchmark assessment ({benchmark.metric})" if rewards is None or rewards in benchmark.metric
        else f"# Benchmark assessment (rewards: {rewards}; picks judged by the {benchmark.metric})",
        "",
        "Per setting, strategy and budget (queries; `end`: the run's last query, with the mean "
        "queries its budget bought): the pick's accuracy (x100), mean +- std and a "
        "95% bootstrap interval of the mean over seeds; its regret to the best of the "
        f"{benchmark.size:,} architectures of the table (x100); its mean rank; the poison rate in "
        "each quarter of the budget; the runs whose "
        f"queries reached the top {100 * TOP_FRACTION:g}% of the table and their mean queries to it; "
        "the two-sided Mann-Whitney U test of the pick's accuracy against random search at the "
        "same setting and budget (p).",
        "",
    ]
    if constrained:
        lines += [
            "With budgets on costs: the regret is to the constrained optimum (the best cell within "
            "the budgets), a run without a feasible query so far has a pick of accuracy 0, "
            "`infeasible` is the share of queries over a budget in each quarter of the run, and "
            "the top 1% is the table's, within the budgets or not.",
            "",
        ]
    if note:
        lines += [note, ""]
    for setting in dict.fromkeys(r["setting"] for r in summary):
        rows = sorted((r for r in summary if r["setting"] == setting),
                      key=lambda r: (budget_order(r["budget"]), r["strategy"]))
        lines += [
            f"## {setting}",
            "",
            "| budget | strategy | runs | pick acc | 95% CI | regret | 95% CI | rank | poison q1 / q2 / q3 / q4 "
            "| reached top 1% (mean queries) | p vs random |" + (" infeasible q1 / q2 / q3 / q4 |" if constrained else ""),
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if constrained else ""),
        ]
        for r in rows:
            rates = " / ".join(f"{r[f'poison_rate_q{q}']:.3f}" for q in range(1, 5)) if r["poison_rate_q1"] is not None else ""
            reached = f"{r['reached_top']}/{r['runs']}" + (
                f" ({r['queries_to_top_mean']:.0f})" if r["queries_to_top_mean"] is not None else ""
            )
            p = "" if r["p"] is None else f"{r['p']:.3g}"
            budget = f"end ({r['queries_mean']:.1f})" if r["budget"] == END else r["budget"]
            lines.append(
                f"| {budget} | {r['strategy']} | {r['runs']} "
                f"| {_pct(r['pick_accuracy_mean'])} +- {_pct(r['pick_accuracy_std'])} "
                f"| [{_pct(r['pick_accuracy_low'])}, {_pct(r['pick_accuracy_high'])}] "
                f"| {_pct(r['regret_mean'])} | [{_pct(r['regret_low'])}, {_pct(r['regret_high'])}] "
                f"| {r['rank_mean']:.0f} | {rates} | {reached} "
                f"| {p} |"
                + (" " + " / ".join(f"{r[f'infeasible_q{q}']:.3f}" for q in range(1, 5)) + " |"
                   if constrained else "")
            )
        if exact:
            known = [(b, exact[(setting, b)]) for b in sorted({r["budget"] for r in rows}, key=budget_order)
                     if (setting, b) in exact]
            if known:
                lines += ["", "Random search's exact expectation of the pick's accuracy (order statistics "
                          "over the cells of the space" + (", within the budgets" if constrained else "")
                          + "): " + "; ".join(f"{b} queries {_pct(v)}" for b, v in known)]
        lines.append("")
    if verdict:
        lines += [
            "## Verdict: the controller's last-quarter poison rate below half of random's",
            "",
            "| setting | uniform prior | budget: controller / random (holds?) | first holds at |",
            "| --- | --- | --- | --- |",
        ]
        for setting, v in verdict.items():
            parts = "; ".join(
                f"{b}: {ours:.3f} / {theirs:.3f} ({'yes' if holds else 'no'})"
                for b, (ours, theirs, holds) in sorted(v["by_budget"].items(), key=lambda i: budget_order(i[0]))
            )
            first = (
                "the budget's end" if v["first"] == END
                else f"{v['first']} queries ({v['first'] // children_per_step} updates)" if v["first"] else "never"
            )
            lines.append(f"| {setting} | {v['prior']:.3f} | {parts} | {first} |")
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


SMOOTHING = 100  # Queries in the moving window of the poison-rate curve.
FIRST_PLOTTED = 10  # The regret plot starts at this query.


def curves(run, benchmark, space, optimum=None):
    """(regret of the pick so far after each query, poison rate of each query or None):
    the curves of a `parse_run` for `plot`; regrets to `optimum` where given (the
    constrained optimum), a query without a feasible pick yet as accuracy 0."""
    picked = np.where(run.picks < 0, 0.0, run.true[np.maximum(run.picks, 0)])
    regret = (benchmark.best() if optimum is None else optimum) - picked
    return regret, run.poisoned if space.poisoned else None


def plot(run_curves, out, priors):
    """regret.png (median and interquartile band over seeds of the pick's regret against
    queries, log scale) and, for poisoned settings, poison_smoothed.png (mean over seeds
    of the poison rate in a moving window of SMOOTHING queries, the uniform prior dashed)."""
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    settings = list(dict.fromkeys(s for s, _, _ in run_curves))
    for name, wanted in (("regret.png", settings), ("poison_smoothed.png", [s for s in settings if s in priors])):
        if not wanted:
            continue
        fig, axes = plt.subplots(1, len(wanted), figsize=(5 * len(wanted), 3.8), squeeze=False, sharey=True)
        for ax, setting in zip(axes[0], wanted):
            for strategy in dict.fromkeys(st for s, st, _ in run_curves if s == setting):
                index = 0 if name == "regret.png" else 1
                series = [c[index] for (s, st, _), c in run_curves.items() if s == setting and st == strategy]
                n = min(len(c) for c in series)
                stacked = np.array([c[:n] for c in series])
                x = np.arange(1, n + 1)
                if index == 0:
                    stacked, x = 100 * stacked[:, FIRST_PLOTTED - 1 :], x[FIRST_PLOTTED - 1 :]
                    low, mid, high = np.percentile(stacked, [25, 50, 75], axis=0)
                    (line,) = ax.plot(x, mid, label=f"{strategy} ({len(series)} seeds)")
                    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
                else:
                    window = min(SMOOTHING, n)
                    kernel = np.ones(window) / window
                    smooth = np.convolve(stacked.mean(axis=0), kernel, mode="valid")
                    ax.plot(np.arange(window, n + 1), smooth, label=f"{strategy} ({len(series)} seeds)")
            if index == 0:
                ax.set_xscale("log")
                ax.set_xlim(FIRST_PLOTTED, None)  # Before that, one cell's luck.
                ax.set_ylim(0, None)
                ax.set_ylabel("regret of the pick (points; median, IQR)")
            else:
                ax.axhline(priors[setting], color="gray", linestyle="--", linewidth=1, label="uniform prior")
                ax.set_ylabel(f"poison rate ({SMOOTHING}-query window)")
            ax.set_xlabel("queries")
            ax.set_title(setting)
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=110)
        plt.close(fig)
