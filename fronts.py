"""NAS-Bench-201's exact accuracy-cost fronts, and a constrained search held against them.

For every cost the table knows (the network's parameters and FLOPs, HW-NAS-Bench's
latencies and energies on six devices), the Pareto front of the 200-epoch test accuracy
against the cost over the cells a space can build (`front`). A run is held against it
(`report`): its pick's distance to the front at the pick's cost, the constrained
optimum under the run's budgets (the best accuracy among the cells within every
budget) and the pick's regret to it, and the hypervolume of every queried cell over
the front's (`pareto.hypervolume`; the reference point is the space's highest cost and
its median accuracy, so that only cells better than a typical one count). `plot` draws the front with the run's queries.

Pure NumPy (matplotlib for the plot, imported when one is drawn).
"""

import numpy as np

import pareto


def rows_and_accuracy(benchmark, space=None):
    """(rows, their 200-epoch test accuracy on the benchmark's dataset) of the cells
    `space` can build (every cell without one)."""
    rows = np.arange(benchmark.size) if space is None else benchmark.reachable_rows(space)[0]
    return rows, benchmark.table.accuracy[benchmark.dataset][rows]


def front(benchmark, name, space=None):
    """The `pareto.Front` of test accuracy against cost `name` over the cells of
    `space`; its `index` holds table rows."""
    rows, accuracy = rows_and_accuracy(benchmark, space)
    f = pareto.front(benchmark.cost_by_row(name)[rows], accuracy)
    return pareto.Front(rows[f.index], f.cost, f.accuracy)


def feasible_rows(benchmark, limits):
    """Booleans by row: within every budget of `limits` ((cost, limit), ...); a cost the
    table does not know for a cell (NaN) is not within."""
    ok = np.ones(benchmark.size, dtype=bool)
    for name, limit in limits:
        ok &= benchmark.cost_by_row(name) <= limit  # NaN: False.
    return ok


def constrained_optimum(benchmark, limits, space=None):
    """(row, test accuracy) of the best cell of `space` within every budget of `limits`;
    (None, None) when none is."""
    rows, accuracy = rows_and_accuracy(benchmark, space)
    ok = feasible_rows(benchmark, limits)[rows]
    if not ok.any():
        return None, None
    best = int(np.argmax(np.where(ok, accuracy, -np.inf)))
    return int(rows[best]), float(accuracy[best])


def report(benchmark, objective, queried, pick, space=None):
    """best.json's `front` entries of a run on the table: per cost of the objective, the
    pick's cost and distance to the front, and the queried cells' hypervolume over the
    front's; with budgets, the constrained optimum and the pick's regret to it.

    Args:
      benchmark: nb201.Benchmark (with its hardware costs).
      objective: the run's objectives.Objective.
      queried: the architectures the run queried (repeats count once).
      pick: the run's pick.
      space: the run's space (the cells it can build).
    """
    rows = np.unique([benchmark.row(a) for a in queried])
    accuracy = benchmark.table.accuracy[benchmark.dataset]
    row = benchmark.row(pick)
    reachable, reachable_accuracy = rows_and_accuracy(benchmark, space)
    known = benchmark.costs(pick)  # The costs the table has (not the machine's latency).
    entries = {"costs": {}}
    for name in (n for n in objective.names if n in known):
        costs = benchmark.cost_by_row(name)
        f = front(benchmark, name, space)
        reference = (float(np.nanmax(costs[reachable])), float(np.median(reachable_accuracy)))
        full = pareto.hypervolume(f.cost, f.accuracy, reference)
        found = pareto.hypervolume(costs[rows], accuracy[rows], reference)
        entries["costs"][name] = {
            "pick_cost": float(costs[row]),
            "front_accuracy_at_pick_cost": pareto.best_within(f, costs[row]),
            "distance_to_front": pareto.distance(f, costs[row], accuracy[row]),
            "front_size": len(f),
            "hypervolume_ratio": found / full if full > 0 else None,
        }
    if objective.limits:
        best_row, best = constrained_optimum(benchmark, objective.limits, space)
        entries["constrained_optimum"] = best
        entries["constrained_optimum_cell"] = None if best_row is None else benchmark.table.strings[best_row]
        entries["constrained_regret"] = None if best is None else best - float(accuracy[row])
        entries["feasible_cells"] = int(feasible_rows(benchmark, objective.limits)[reachable].sum())
    return entries


def lines(entries, dataset_title):
    """The final lines of `report`'s entries."""
    out = []
    if "constrained_optimum" in entries and entries["constrained_optimum"] is not None:
        out.append(
            f"within the budgets: the best of the {entries['feasible_cells']:,} feasible cells has "
            f"{100 * entries['constrained_optimum']:.2f}% on {dataset_title}; the pick's regret "
            f"to it {100 * entries['constrained_regret']:.2f} points"
        )
    for name, e in entries["costs"].items():
        distance = e["distance_to_front"]
        out.append(
            f"against the exact {name} front ({e['front_size']} cells): the pick is "
            + ("on the front" if distance == 0 else
               "below every front cell's cost" if distance is None else
               f"{100 * distance:.2f} points below it at its cost")
            + f"; the queried cells hold {100 * e['hypervolume_ratio']:.1f}% of the front's hypervolume"
        )
    return out


def plot(benchmark, name, queried, pick, path, space=None, limit=None):
    """A PNG at `path`: every cell of `space` (grey), the exact front (line), the run's
    queries (blue), its pick (red) and the budget (dashed), accuracy against `name`."""
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    rows, accuracy = rows_and_accuracy(benchmark, space)
    costs = benchmark.cost_by_row(name)
    f = front(benchmark, name, space)
    q = np.unique([benchmark.row(a) for a in queried])
    every = benchmark.table.accuracy[benchmark.dataset]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(costs[rows], 100 * accuracy, s=2, c="0.8", label=f"all {len(rows):,} cells")
    ax.scatter(costs[q], 100 * every[q], s=6, c="tab:blue", label=f"queried ({len(q):,})")
    ax.step(f.cost, 100 * f.accuracy, where="post", c="k", lw=1, label=f"exact front ({len(f)} cells)")
    row = benchmark.row(pick)
    ax.scatter([costs[row]], [100 * every[row]], s=60, c="tab:red", marker="*", label="pick", zorder=5)
    if limit is not None:
        ax.axvline(limit, c="tab:red", ls="--", lw=1, label=f"budget {limit:g}")
    ax.set_xlabel(name)
    ax.set_ylabel("200-epoch test accuracy (%)")
    ax.set_ylim(float(np.percentile(100 * accuracy, 1)) - 2, None)  # The 1% worst off the plot.
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
