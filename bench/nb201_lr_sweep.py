"""A learning strategy's learning rate on NAS-Bench-201, chosen on seeds kept apart from the
reported grid (docs/ASSESSING.md).

For each learning rate, `assess.py` runs the strategy (--strategy: the controller or
reinforce_table) on the clean space and with
`none` x 5 (the headline settings) for --trials queries on the tuning seeds (100 + i,
never used by the reported grid, which uses 0-29); the chosen rate is the one with the
highest mean pick accuracy at the full budget over both settings. Prints a markdown table
and the choice. Usage: python bench/nb201_lr_sweep.py [--strategy controller] [--seeds 10] [--trials 1000]
"""

import argparse
import csv
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATES = {
    "controller": (1e-3, 2e-3, 5e-3, 2e-2, 5e-2, 1e-1, 2e-1),
    "reinforce_table": (1e-2, 3e-2, 1e-1, 3e-1, 1.0),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--out", default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--strategy", default="controller", choices=sorted(RATES))
    args = parser.parse_args()
    rates = RATES[args.strategy]
    args.out = args.out or os.path.join(ROOT, "logs", "nb201-lr-sweep" + ("" if args.strategy == "controller" else f"-{args.strategy}"))
    seeds = ",".join(str(100 + i) for i in range(args.seeds))
    results = {}
    for rate in rates:
        out = os.path.join(args.out, f"lr{rate:g}")
        subprocess.run(
            [sys.executable, os.path.join(ROOT, "assess.py"), "--space=nb201", "--evaluation=benchmark",
             f"--strategies={args.strategy}", f"--{'table_lr' if args.strategy == 'reinforce_table' else 'controller_lr'}={rate}", f"--trials={args.trials}",
             "--children_per_step=8", "--poison=none", "--poison_instances=5", f"--seeds={seeds}",
             f"--budgets={args.trials}", "--notensorboard", f"--jobs={args.jobs}", f"--out={out}"],
            check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
        )
        with open(os.path.join(out, "benchmark.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        for setting in ("clean", "poison-none-k5"):
            picks = [float(r["pick_accuracy"]) for r in rows if r["setting"] == setting]
            q4 = [float(r["poison_rate_q4"]) for r in rows if r["setting"] == setting and r["poison_rate_q4"]]
            results[rate, setting] = (sum(picks) / len(picks), sum(q4) / len(q4) if q4 else None, len(picks))
    print(f"{args.strategy} learning rate, {args.trials} queries, 8 per update, tuning seeds {seeds}")
    print("| learning rate | clean: pick acc (%) | none x5: pick acc (%) | none x5: poison rate, last quarter | mean of the two accs |")
    print("|---|---|---|---|---|")
    score = {}
    for rate in rates:
        clean, poisoned = results[rate, "clean"], results[rate, "poison-none-k5"]
        score[rate] = (clean[0] + poisoned[0]) / 2
        print(f"| {rate:g} | {100 * clean[0]:.2f} | {100 * poisoned[0]:.2f} | {poisoned[1]:.3f} | {100 * score[rate]:.2f} |")
    best = max(rates, key=lambda r: score[r])
    print(f"chosen: --{'table_lr' if args.strategy == 'reinforce_table' else 'controller_lr'}={best:g} (highest mean pick accuracy over both settings)")


if __name__ == "__main__":
    main()
