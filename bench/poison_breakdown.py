"""Which poisoned op does a strategy pick? Last-quarter rates per op, from assess.py folders.

  python bench/poison_breakdown.py logs/assess-shared logs/assess-shared-training

For every poisoned run of each assess.py output folder, the fraction of layers of the
last quarter of the sampled architectures whose op is each poisoned op (copies `op#i`
counted as the op), then mean ± sample std over the seeds of each strategy. Prints a
markdown table. Pure Python and NumPy: reads history.csv and config.json only.
"""

import csv
import json
import pathlib
import sys

import numpy as np


def rates(run_dir, ops):
    with open(run_dir / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    last = rows[-max(1, len(rows) // 4) :]
    columns = [c for c in rows[0] if c.endswith("_op")]
    chosen = [r[c].split("#", 1)[0] for r in last for c in columns]
    return [chosen.count(op) / len(chosen) for op in ops]


def main(folders):
    lines = []
    for folder in map(pathlib.Path, folders):
        groups = {}
        for run_dir in sorted((folder / "runs").iterdir()):
            config = json.loads((run_dir / "config.json").read_text())
            if not config["poison"]:
                continue
            ops = config["poison"].split(",")
            key = (config["poison"], config["poison_instances"], config["strategy"])
            groups.setdefault(key, []).append(rates(run_dir, ops))
        for (poison, k, strategy), values in groups.items():
            values = np.array(values)
            cells = [
                f"{op} {m:.3f} ± {s:.3f}"
                for op, m, s in zip(
                    poison.split(","),
                    values.mean(axis=0),
                    values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1]),
                )
            ]
            lines.append(f"| {folder.name} | k={k} | {strategy} | {len(values)} | {'; '.join(cells)} |")
    print("| folder | copies | strategy | seeds | last-quarter rate per poisoned op |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
