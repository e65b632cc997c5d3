"""The hidden-state probe over every controller run of an assessment, as one table.

  python bench/probe_grid.py --grid=logs/assess-variants-toy --out=bench/results/probe_toy.md

Runs `probe.probe` on each finished run folder of `<grid>/runs/` whose strategy has a controller
(controller, budget_controller, memory_controller), then writes per strategy the mean ±
sample std over seeds of each Spearman correlation, with the largest Mantel p-value
among the seeds (a correlation is significant in every seed when that is < 0.05).
Each run's probe.json stays in its folder.
"""

import argparse
import glob
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import config as config_lib  # noqa: E402
import probe  # noqa: E402

ROWS = [
    ("sampled", "hamming", "sampled: Hamming"),
    ("sampled", "paths", "sampled: path sets"),
    ("untrained", "hamming", "untrained (same seed): Hamming"),
    ("untrained", "paths", "untrained (same seed): path sets"),
    ("children", "hamming", "children: Hamming"),
    ("children", "paths", "children: path sets"),
    ("children", "fitness", "children: fitness difference"),
]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--grid", required=True, help="An assess.py --out folder.")
    p.add_argument("--out", required=True, help="The markdown table to write.")
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--permutations", type=int, default=999)
    args = p.parse_args(argv)
    runs = sorted(glob.glob(os.path.join(args.grid, "runs", "*")))
    reports = {}
    for run in runs:
        try:
            strategy = config_lib.read_config(run).strategy
        except config_lib.ConfigError:
            continue
        if strategy not in probe.CONTROLLER_STRATEGIES:
            continue
        if not os.path.exists(os.path.join(run, "best.json")):
            print(f"{run}: not finished, left out", flush=True)
            continue
        report = probe.probe(run, args.samples, args.permutations)
        print(probe.format_report(report), flush=True)
        reports.setdefault(strategy, []).append(report)
    if not reports:
        sys.exit(f"probe_grid.py: no finished controller runs in {args.grid}/runs")
    strategies = list(reports)
    lines = [
        f"# The hidden-state probe over {args.grid}",
        "",
        f"`python bench/probe_grid.py --grid={args.grid} --out={args.out}`",
        "",
        f"{args.samples} architectures sampled from each run's final controller; Spearman "
        "correlation of pairwise hidden-state (Euclidean) distance with each distance, mean ± "
        f"sample std over seeds; in brackets the largest Mantel p-value over the seeds "
        f"({args.permutations} permutations). Children: the run's last {args.samples} distinct "
        "children with a known fitness.",
        "",
        "| distance | " + " | ".join(f"{s} (seeds {len(reports[s])})" for s in strategies) + " |",
        "|---|" + "---|" * len(strategies),
    ]
    for group, name, label in ROWS:
        cells = []
        for s in strategies:
            rows = [r[group][name] for r in reports[s] if name in r.get(group, {})]
            rhos = [r["spearman"] for r in rows if np.isfinite(r["spearman"])]
            if not rhos:
                cells.append("")
                continue
            spread = f" ± {np.std(rhos, ddof=1):.3f}" if len(rhos) > 1 else ""
            cells.append(f"{np.mean(rhos):+.3f}{spread} (p ≤ {max(r['p'] for r in rows):.3f})")
        if any(cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    updates = {s: sorted({r["updates"] for r in reports[s]}) for s in strategies}
    lines += ["", "Controller updates per run: " + "; ".join(f"{s} {u}" for s, u in updates.items())]
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(reports, f, indent=1)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
