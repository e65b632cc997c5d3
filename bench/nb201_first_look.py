"""A first look at search on NAS-Bench-201: one seed per strategy, the best CIFAR-10
accuracy found after 100, 300 and 1,000 queries (the real assessment, with many seeds,
is assess.py's).

  python bench/nb201_first_look.py [--strategies controller,random,evolution,tpe] [--seed 0]

One search of the largest budget per strategy (defaults otherwise); the best after n
queries is read from its history.csv. Beside them: the exact expectation of random
search's best after n queries (`nb201.Benchmark.expected_best_of_random`). One seed
says nothing about which strategy is better. Writes bench/results/nb201_first_look.md.
"""

import argparse
import csv
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import manager  # noqa: E402
import nb201  # noqa: E402
import run_log  # noqa: E402
import search  # noqa: E402

BUDGETS = (100, 300, 1000)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default="controller,random,evolution,tpe")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    manager.make_deterministic()
    logdir = tempfile.mkdtemp(prefix="nas-bench-nb201-look-")
    bench = nb201.Benchmark("cifar10")
    table = [
        "| strategy | " + " | ".join(f"best after {n:,}" for n in BUDGETS) + " | search seconds |",
        "|" + " --- |" * (len(BUDGETS) + 2),
    ]
    for strategy in args.strategies.split(","):
        config = search.SearchConfig(
            space="nb201", evaluation="benchmark", strategy=strategy, trials=max(BUDGETS),
            seed=args.seed, logdir=logdir, run_name=strategy,
        )
        best = search.run_search(config, out=lambda line: None)
        with open(os.path.join(logdir, strategy, "history.csv"), newline="") as f:
            reader = csv.DictReader(f)
            column = run_log.accuracy_column(reader.fieldnames)  # The table's metric.
            accuracy = [float(r[column]) for r in reader]
        cells = [f"{100 * max(accuracy[:n]):.2f}" for n in BUDGETS]
        table.append(f"| {strategy} | " + " | ".join(cells) + f" | {best['search_seconds']:.1f} |")
        print(table[-1], flush=True)
    expected = [f"{100 * bench.expected_best_of_random(n):.2f}" for n in BUDGETS]
    table.append("| random, exact expectation | " + " | ".join(expected) + " | |")
    text = (
        f"`python bench/nb201_first_look.py --strategies {args.strategies} --seed {args.seed}` "
        f"({time.strftime('%Y-%m-%d')}; CIFAR-10 200-epoch test accuracy of the best cell queried, "
        f"percent; best cell 94.37; one seed: no ranking of the strategies)\n\n"
        + "\n".join(table) + "\n"
    )
    print(text)
    (ROOT / "bench" / "results" / "nb201_first_look.md").write_text(text)


if __name__ == "__main__":
    main()
