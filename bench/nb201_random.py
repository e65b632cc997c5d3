"""Random search on NAS-Bench-201 against arithmetic: the loop's best accuracy after N
queries, averaged over many seeds, beside its exact expectation.

  python bench/nb201_random.py [--budgets 10,100,1000] [--seeds 300]

Each seed is a real search (`search.run_search`, `--strategy=random --space=nb201
--evaluation=benchmark`, TensorBoard off) of N queries; the expectation is computed
from the table's order statistics, E[max of N] = sum_k a_(k) ((k/M)^N - ((k-1)/M)^N)
(`nb201.Benchmark.expected_best_of_random`). The two must agree within the standard
error of the mean over seeds. Writes bench/results/nb201_random.md.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nb201  # noqa: E402
import search  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="10,100,1000")
    parser.add_argument("--seeds", type=int, default=300)
    args = parser.parse_args()
    logdir = tempfile.mkdtemp(prefix="nas-bench-nb201-random-")
    bench = nb201.Benchmark("cifar10")
    table = [
        "| N queries | seeds | mean best (loop) | standard error | exact expectation | "
        "difference / SE | std of the best |",
        "|" + " --- |" * 7,
    ]
    started = time.perf_counter()
    for n in (int(b) for b in args.budgets.split(",")):
        bests = []
        for seed in range(args.seeds):
            config = search.SearchConfig(
                space="nb201", evaluation="benchmark", strategy="random", trials=n, seed=seed,
                children_per_step=min(8, n), tensorboard=False, logdir=logdir,
                run_name=f"n{n}-seed{seed}",
            )
            bests.append(search.run_search(config, out=lambda line: None)["test_accuracy"])
        bests = 100 * np.asarray(bests)
        mean, se = bests.mean(), bests.std(ddof=1) / np.sqrt(len(bests))
        expected = 100 * bench.expected_best_of_random(n)
        table.append(
            f"| {n:,} | {len(bests)} | {mean:.3f} | {se:.3f} | {expected:.3f} | "
            f"{(mean - expected) / se:+.2f} | {bests.std(ddof=1):.3f} |"
        )
        print(table[-1], flush=True)
    text = (
        f"`python bench/nb201_random.py --budgets {args.budgets} --seeds {args.seeds}` "
        f"({time.strftime('%Y-%m-%d')}; CIFAR-10 test accuracy in percent; "
        f"{time.perf_counter() - started:.0f} s in all)\n\n" + "\n".join(table) + "\n"
    )
    print(text)
    (ROOT / "bench" / "results" / "nb201_random.md").write_text(text)


if __name__ == "__main__":
    main()
