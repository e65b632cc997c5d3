"""Which reward errors stop a controller from beating random search (docs/ASSESSING.md)?

1. Calibration: the Kendall tau between rewarded and true CIFAR-10 accuracies of 2,000
   random cells for a Gaussian error of standard deviation SIGMA (one query per cell: fresh
   and persistent errors look the same there), and the SIGMA that gives each target tau
   (1.0, 0.8, 0.5, 0.26, 0.11: the supernet's measured range is 0.11-0.26, BENCHMARKS §3),
   found by bisection on a fixed set of cells and draws.
2. For each SIGMA, as fresh noise (--benchmark_noise) and as a persistent error per cell
   (--benchmark_cell_noise), and for each bonus per `none` edge (--benchmark_bias): assess.py
   runs the controller and random search, clean and with `none` x 5, --trials queries,
   --seeds seeds; the table gives the true accuracy of each pick.

Usage: python bench/nb201_fidelity.py [--seeds 30] [--trials 1000] [--jobs 2]
"""

import argparse
import csv
import os
import subprocess
import sys

import numpy as np
from scipy.stats import kendalltau

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import nb201  # noqa: E402
import stats  # noqa: E402

TARGETS = (0.8, 0.5, 0.26, 0.11)
BONUSES = (0.002, 0.005, 0.01, 0.02)


def calibrate(cells=2000, seed=0):
    accuracy = nb201.load_table().accuracy["cifar10"]
    rng = np.random.default_rng(seed)
    true = accuracy[rng.choice(nb201.CELLS, size=cells, replace=False)]
    z = rng.standard_normal(cells)
    tau = lambda sigma: kendalltau(true, true + sigma * z)[0]
    found = {}
    for target in TARGETS:
        low, high = 0.0, 10.0
        for _ in range(50):
            mid = (low + high) / 2
            low, high = (mid, high) if tau(mid) > target else (low, mid)
        found[target] = (low + high) / 2
    return found, tau


def assess(out, trials, seeds, jobs, extra):
    if not os.path.exists(os.path.join(out, "benchmark.csv")) or extra:
        subprocess.run(
            [sys.executable, os.path.join(ROOT, "assess.py"), "--space=nb201", "--evaluation=benchmark",
             "--strategies=controller,random", f"--trials={trials}", "--children_per_step=8",
             "--poison=none", "--poison_instances=5", f"--seeds={seeds}", f"--budgets={trials}",
             "--notensorboard", f"--jobs={jobs}", f"--out={out}", *extra],
            check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
        )
    with open(os.path.join(out, "benchmark.csv"), newline="") as f:
        return list(csv.DictReader(f))


def cells(rows):
    out = {}
    for setting in ("clean", "poison-none-k5"):
        for strategy in ("controller", "random"):
            rs = [r for r in rows if r["setting"] == setting and r["strategy"] == strategy]
            acc = [100 * float(r["pick_accuracy"]) for r in rs]
            q4 = [float(r["poison_rate_q4"]) for r in rs if r["poison_rate_q4"]]
            out[setting, strategy] = (acc, np.mean(q4) if q4 else None)
    return out


def line(label, c):
    parts = [label]
    for setting in ("clean", "poison-none-k5"):
        a, b = c[setting, "controller"][0], c[setting, "random"][0]
        _, p = stats.mann_whitney(a, b)
        lo, hi = stats.bootstrap_difference(a, b)
        parts.append(f"{np.mean(a):.2f} / {np.mean(b):.2f} ({np.mean(a) - np.mean(b):+.2f}, [{lo:+.2f}, {hi:+.2f}], p={p:.2g})")
    parts.append(f"{c['poison-none-k5', 'controller'][1]:.3f} / {c['poison-none-k5', 'random'][1]:.3f}")
    return "| " + " | ".join(parts) + " |"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default=os.path.join(ROOT, "logs", "nb201-fidelity"))
    args = parser.parse_args()
    seeds = ",".join(str(i) for i in range(args.seeds))
    sigmas, tau = calibrate()
    print("## Calibration: Kendall tau of rewarded against true accuracy, 2,000 random cells\n")
    print("| target tau | sigma (points) | tau measured |\n|---|---|---|")
    print(f"| 1.0 | 0 | {tau(0.0):.3f} |")
    for target, sigma in sigmas.items():
        print(f"| {target} | {100 * sigma:.3f} | {tau(sigma):.3f} |")
    print(f"\n## Controller against random search: {args.trials} queries, {args.seeds} seeds (0-{args.seeds - 1})\n")
    print("Pick's true CIFAR-10 accuracy (%), controller / random (difference, 95% bootstrap interval "
          "of the difference of means, two-sided Mann-Whitney p); last-quarter poison rate with `none` x 5 "
          "(uniform prior 0.556), controller / random.\n")
    print("| reward error | clean | none x 5 | poison rate, last quarter |\n|---|---|---|---|")
    exact = assess(os.path.join(args.out, "exact"), args.trials, seeds, args.jobs, [])
    print(line("none (exact, tau 1.0)", cells(exact)), flush=True)
    for kind, flag in (("fresh", "--benchmark_noise"), ("persistent", "--benchmark_cell_noise")):
        for target, sigma in sigmas.items():
            rows = assess(os.path.join(args.out, f"{kind}-tau{target}"), args.trials, seeds, args.jobs,
                          [f"{flag}={sigma:.6f}"])
            print(line(f"{kind} sigma {100 * sigma:.2f} points (tau {target})", cells(rows)), flush=True)
    for bonus in BONUSES:
        rows = assess(os.path.join(args.out, f"bias-none{bonus}"), args.trials, seeds, args.jobs,
                      [f"--benchmark_bias=none:{bonus}"])
        print(line(f"bias +{100 * bonus:g} points per `none` edge", cells(rows)), flush=True)


if __name__ == "__main__":
    main()
