"""NAS-Bench-201's exact accuracy-cost fronts on HW-NAS-Bench's devices, the budgets at each
device's latency percentiles, and random search's exact expectation under them.

  python bench/hardware_fronts.py > bench/results/hardware_fronts.md

writes bench/results/hardware_fronts.png too (CIFAR-10 200-epoch test accuracy against
each cost, the front as a line). Nothing is searched: every number is arithmetic on the
tables (fronts.py, nb201.Benchmark.expected_best_of_random).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import benchmarks  # noqa: E402
import config as config_lib  # noqa: E402
import fronts  # noqa: E402
import hardware  # noqa: E402
import objectives  # noqa: E402

PERCENTILES = (10, 25, 50)
QUERIES = (100, 300, 1000)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", default=os.path.join("bench", "results", "hardware_fronts.png"))
    args = parser.parse_args()
    bench = benchmarks.make_benchmark(config_lib.SearchConfig(space="nb201", evaluation="benchmark"))
    accuracy = bench.table.accuracy["cifar10"]
    print("# NAS-Bench-201's exact fronts on HW-NAS-Bench's devices (CIFAR-10)\n")
    print(f"Command: `python bench/hardware_fronts.py`. Accuracy: the {bench.fitness_title} of "
          f"the 15,625 cells; best cell {100 * accuracy.max():.2f}%.\n")
    print("## The fronts\n")
    print("| cost | unit | cells measured | front cells | cheapest cell (accuracy) | cost of the best cell "
          "| p10 / p25 / p50 of the cost |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    names = ["params", "flops", *hardware.COSTS]
    for name in names:
        costs = bench.cost_by_row(name)
        f = fronts.front(bench, name)
        unit = objectives.COSTS[name][0] or "count"
        p = np.nanpercentile(costs, PERCENTILES)
        print(f"| {name} | {unit} | {int(np.isfinite(costs).sum()):,} | {len(f)} "
              f"| {f.cost[0]:.4g} ({100 * f.accuracy[0]:.2f}%) | {f.cost[-1]:.4g} "
              f"| {' / '.join(f'{v:.4g}' for v in p)} |")
    print("\n## Budgets at each device's latency percentiles\n")
    print("The constrained optimum (the best cell within the budget), the cells within it, and random "
          "search's exact expected pick (order statistics over all 15,625 cells; a run without a "
          "feasible query counts 0) at each number of queries.\n")
    print("| budget | feasible cells | constrained optimum | " + " | ".join(f"random, {n} queries" for n in QUERIES) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in QUERIES) + " |")
    for name in [n for n in hardware.COSTS if n.endswith("latency")] + ["params"]:
        costs = bench.cost_by_row(name)
        for q, limit in zip(PERCENTILES, np.nanpercentile(costs, PERCENTILES)):
            limits = [(name, float(limit))]
            ok = fronts.feasible_rows(bench, limits)
            _, optimum = fronts.constrained_optimum(bench, limits)
            expected = [bench.expected_best_of_random(n, feasible=ok) for n in QUERIES]
            print(f"| {name} <= {limit:.6g} (p{q}) | {int(ok.sum()):,} | {100 * optimum:.2f} | "
                  + " | ".join(f"{100 * e:.2f}" for e in expected) + " |")
    plot(bench, names, args.plot)
    print(f"\nPlot: `{args.plot}`.")


def plot(bench, names, path):
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    accuracy = 100 * bench.table.accuracy["cifar10"]
    columns = 4
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        costs = bench.cost_by_row(name)
        f = fronts.front(bench, name)
        ax.scatter(costs, accuracy, s=1, c="0.75")
        ax.step(f.cost, 100 * f.accuracy, where="post", c="k", lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_ylim(80, 95)
        if name in ("params", "flops"):
            ax.set_xscale("log")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.supylabel("CIFAR-10 200-epoch test accuracy (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
