"""Which reward errors stop a controller from beating random search (docs/ASSESSING.md)?

1. Calibration: the Kendall tau between rewarded and true CIFAR-10 accuracies of 2,000
   random cells for a Gaussian error of standard deviation SIGMA (one query per cell: fresh
   and persistent errors look the same there), and the SIGMA that gives each target tau
   (1.0, 0.8, 0.5, 0.26, 0.11: the supernet's measured range is 0.11-0.26, BENCHMARKS §3),
   found by bisection on a fixed set of cells and draws; "tau 0" is an error so large
   (100x the tau 0.11 one) that the reward says nothing about the cell.
2. For each SIGMA, as fresh noise (--benchmark_noise) and as a persistent error per cell
   (--benchmark_cell_noise), and for each bonus per `none` edge (--benchmark_bias): assess.py
   runs the controller and random search, clean and with `none` x 5, --trials queries,
   --seeds seeds, reported at each of --budgets; the table gives the true accuracy of each
   pick. --points runs a subset (labels as in the table's first column's keys: exact,
   fresh-tau0.8, persistent-tau0, bias-none0.01, ...).
3. --csv writes every row, --plot the fidelity curve: the controller's lead over random
   search and its last-quarter poison rate against the reward's tau.

Usage: python bench/nb201_fidelity.py [--seeds 30] [--trials 1000] [--budgets 1000] [--jobs 2]
           [--points exact,persistent-tau0.8] [--csv F] [--plot F]
       python bench/nb201_fidelity.py --from_csv F --plot G   (the plot again, from a --csv)
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
SETTINGS = ("clean", "poison-none-k5")


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
    found[0] = 100 * found[TARGETS[-1]]
    return found, tau


def points(sigmas):
    """(key, label, tau or None, extra assess.py flags) of every point, in table order."""
    out = [("exact", "none (exact, tau 1.0)", 1.0, [])]
    for kind, flag in (("fresh", "--benchmark_noise"), ("persistent", "--benchmark_cell_noise")):
        for target, sigma in sigmas.items():
            label = f"{kind} sigma {100 * sigma:.2f} points (tau {target})"
            out.append((f"{kind}-tau{target}", label, target, [f"{flag}={sigma:.6f}"]))
    for bonus in BONUSES:
        label = f"bias +{100 * bonus:g} points per `none` edge"
        out.append((f"bias-none{bonus}", label, None, [f"--benchmark_bias=none:{bonus}"]))
    return out


def assess(out, trials, budgets, seeds, jobs, extra):
    """assess.py's benchmark.csv for one point (runs already in `out` are kept)."""
    subprocess.run(
        [sys.executable, os.path.join(ROOT, "assess.py"), "--space=nb201", "--evaluation=benchmark",
         "--strategies=controller,random", f"--trials={trials}", "--children_per_step=8",
         "--poison=none", "--poison_instances=5", f"--seeds={seeds}",
         f"--budgets={','.join(map(str, budgets))}", "--notensorboard", f"--jobs={jobs}",
         f"--out={out}", *extra],
        check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
    )
    with open(os.path.join(out, "benchmark.csv"), newline="") as f:
        return list(csv.DictReader(f))


def compare(rows, budget, seeds):
    """Per setting: the controller's and random search's pick accuracies (%) and the
    difference of means with its bootstrap interval and Mann-Whitney p; and with `none`
    x 5 the last-quarter poison rates."""
    out = {}
    for setting in SETTINGS:
        acc, q4 = {}, {}
        for strategy in ("controller", "random"):
            rs = [r for r in rows if r["setting"] == setting and r["strategy"] == strategy
                  and int(r["budget"]) == budget and int(r["seed"]) < seeds]
            acc[strategy] = [100 * float(r["pick_accuracy"]) for r in rs]
            q4[strategy] = [float(r["poison_rate_q4"]) for r in rs if r["poison_rate_q4"]]
        a, b = acc["controller"], acc["random"]
        _, p = stats.mann_whitney(a, b)
        lo, hi = stats.bootstrap_difference(a, b)
        out[setting] = dict(
            runs=min(len(a), len(b)), controller=np.mean(a), random=np.mean(b),
            difference=np.mean(a) - np.mean(b), low=lo, high=hi, p=p,
            poison_controller=np.mean(q4["controller"]) if q4["controller"] else None,
            poison_random=np.mean(q4["random"]) if q4["random"] else None,
        )
    return out


def line(label, c):
    parts = [label]
    for setting in SETTINGS:
        x = c[setting]
        parts.append(f"{x['controller']:.2f} / {x['random']:.2f} ({x['difference']:+.2f}, "
                     f"[{x['low']:+.2f}, {x['high']:+.2f}], p={x['p']:.2g})")
    x = c["poison-none-k5"]
    parts.append(f"{x['poison_controller']:.3f} / {x['poison_random']:.3f}")
    return "| " + " | ".join(parts) + " |"


def plot(records, path):
    """The fidelity curve: per budget and setting, the controller's lead over random
    search (95% bootstrap interval) and its last-quarter poison rate, against tau."""
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    budgets = sorted({r["budget"] for r in records})
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    styles = {"fresh": "o-", "persistent": "s--"}
    for kind in ("fresh", "persistent"):
        for budget in budgets:
            for setting, ax in zip(SETTINGS, axes[:2]):
                rs = sorted((r for r in records if r["budget"] == budget and r["setting"] == setting
                             and r["kind"] in (kind, "exact")), key=lambda r: -r["tau"])
                if not rs:
                    continue
                tau = [r["tau"] for r in rs]
                d = np.array([r["difference"] for r in rs])
                err = [d - [r["low"] for r in rs], [r["high"] for r in rs] - d]
                ax.errorbar(tau, d, yerr=err, fmt=styles[kind], capsize=3,
                            label=f"{kind} error, {budget} queries")
            rs = sorted((r for r in records if r["budget"] == budget and r["setting"] == SETTINGS[1]
                         and r["kind"] in (kind, "exact")), key=lambda r: -r["tau"])
            if rs:
                axes[2].plot([r["tau"] for r in rs], [r["poison_controller"] for r in rs], styles[kind],
                             label=f"controller, {kind} error, {budget} queries")
    for setting, ax in zip(SETTINGS, axes[:2]):
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(f"{setting}: controller minus random (points)")
        # Pure noise (tau 0) spreads over tens of points: the scale is set by the rest.
        rest = [r for r in records if r["setting"] == setting and r["tau"] > 0]
        low, high = min(r["low"] for r in rest), max(r["high"] for r in rest)
        ax.set_ylim(low - 0.3 * (high - low), high + 0.3 * (high - low))
    axes[2].axhline(0.556, color="grey", lw=0.8, ls=":", label="uniform prior / random")
    axes[2].set_title("none x 5: controller's last-quarter poison rate")
    for ax in axes:
        ax.set_xlabel("Kendall tau of rewarded against true accuracy")
        ax.invert_xaxis()
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--budgets", default=None, help="comma-separated; default: --trials")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--points", default=None, help="comma-separated point keys; default: all")
    parser.add_argument("--out", default=None, help="default: logs/nb201-fidelity[-TRIALS]")
    parser.add_argument("--csv", default=None)
    parser.add_argument("--plot", default=None)
    parser.add_argument("--from_csv", default=None, help="only draw --plot from a --csv written before")
    args = parser.parse_args()
    if args.from_csv:
        with open(args.from_csv, newline="") as f:
            records = [{k: (v if k in ("point", "kind", "setting") else int(v) if k in ("budget", "runs")
                            else float(v) if v else None)
                        for k, v in r.items()} for r in csv.DictReader(f)]
        plot([r for r in records if r["tau"] is not None], args.plot)
        return
    budgets = [int(b) for b in (args.budgets or str(args.trials)).split(",")]
    out = args.out or os.path.join(
        ROOT, "logs", "nb201-fidelity" + ("" if args.trials == 1000 else f"-{args.trials}"))
    seeds = ",".join(str(i) for i in range(args.seeds))
    sigmas, tau = calibrate()
    chosen = points(sigmas)
    if args.points:
        keys = args.points.split(",")
        unknown = sorted(set(keys) - {k for k, _, _, _ in chosen})
        if unknown:
            parser.error(f"unknown --points {unknown}; allowed: {[k for k, _, _, _ in chosen]}")
        chosen = [c for c in chosen if c[0] in keys]
    print("## Calibration: Kendall tau of rewarded against true accuracy, 2,000 random cells\n")
    print("| target tau | sigma (points) | tau measured |\n|---|---|---|")
    print(f"| 1.0 | 0 | {tau(0.0):.3f} |")
    for target, sigma in sigmas.items():
        print(f"| {target} | {100 * sigma:.3f} | {tau(sigma):.3f} |")
    results = {key: assess(os.path.join(out, key), args.trials, budgets, seeds, args.jobs, extra)
               for key, _, _, extra in chosen}
    records = []
    for budget in budgets:
        print(f"\n## Controller against random search: {budget} queries, {args.seeds} seeds "
              f"(0-{args.seeds - 1}), runs of {args.trials} queries\n")
        print("Pick's true CIFAR-10 accuracy (%), controller / random (difference, 95% bootstrap "
              "interval of the difference of means, two-sided Mann-Whitney p); last-quarter poison "
              "rate with `none` x 5 (uniform prior 0.556), controller / random.\n")
        print("| reward error | clean | none x 5 | poison rate, last quarter |\n|---|---|---|---|")
        for key, label, target, _ in chosen:
            c = compare(results[key], budget, args.seeds)
            print(line(label, c), flush=True)
            kind = key.split("-")[0]
            for setting, x in c.items():
                records.append(dict(point=key, kind=kind, tau=target, budget=budget, setting=setting, **x))
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    if args.plot:
        plot([r for r in records if r["tau"] is not None], args.plot)


if __name__ == "__main__":
    main()
