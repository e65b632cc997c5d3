"""Does the NAS-Bench-201 supernet rank cells as the benchmark does? Kendall tau,
Spearman rho and the per-op bias, at several points of the supernet's training.

  python bench/nb201_shared_ranking.py                  # 500 cells, epochs 2,5,10
  python bench/nb201_shared_ranking.py --cells 1000 --epochs 5,10,20,40 --seed 1

A supernet of the NB201 cell (nb201_supernet.py; `--channels` channels, `--cells_per_stage`
cells per stage) is trained on the embedded CIFAR-10 subset (cifar10_5k: 3,500 training
and 500 validation images, the split every search uses) with one uniformly sampled
cell per minibatch: random search with weight sharing (Li & Talwalkar 2019), the
training ENAS's supernet gets before its controller has learnt. At each of `--epochs`
the same `--cells` uniform cells (seeded, distinct) are scored with the shared weights
on the whole validation split (batch statistics, the project's default), and held
against the table: Kendall tau and Spearman rho of the shared-weight accuracy against
the cells' 200-epoch CIFAR-10 test accuracy and their 12-epoch validation accuracy
(cifar10-valid, the NB201 paper's search reward).

The per-op bias (as bench/supernet_op_bias.py on the macro space): each score in units
of its own standard deviation over the cells, least squares on the number of edges
using each op (relative to the mean op: the counts sum to 6), and the bias of an op =
its shared-weight effect per edge minus its table effect per edge, with a 95%
bootstrap interval over cells (2,000 resamples).

Writes bench/results/nb201_shared_ranking.md and .csv (one row per cell and epoch).
Needs scipy (bench/requirements.txt).
"""

import argparse
import csv
import os
import pathlib
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import data  # noqa: E402
import nb201  # noqa: E402
import state_space  # noqa: E402
import weight_sharing  # noqa: E402

RESULTS = ROOT / "bench" / "results"
OPS = state_space.NB201_OPS


def correlations(x, y):
    from scipy import stats  # pylint: disable=import-outside-toplevel

    return float(stats.kendalltau(x, y)[0]), float(stats.spearmanr(x, y)[0])


def op_counts(space, cells):
    return np.array([[sum(v == op for v in c) for op in OPS] for c in cells], dtype=float)


def effects(counts, score):
    """Least squares of the standardised score on the op counts (with an intercept,
    the last op's column dropped: effects relative to the mean op, centred after)."""
    z = (score - score.mean()) / score.std()
    x = np.column_stack([np.ones(len(z)), counts[:, :-1]])
    coef, *_ = np.linalg.lstsq(x, z, rcond=None)
    per_op = np.append(coef[1:], 0.0)
    return per_op - per_op.mean()


def bias(counts, shared, table, rng, resamples=2000):
    point = effects(counts, shared) - effects(counts, table)
    draws = []
    n = len(shared)
    for _ in range(resamples):
        i = rng.integers(0, n, n)
        draws.append(effects(counts[i], shared[i]) - effects(counts[i], table[i]))
    low, high = np.percentile(np.array(draws), [2.5, 97.5], axis=0)
    return point, low, high


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=500)
    p.add_argument("--epochs", default="2,5,10")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--cells_per_stage", type=int, default=1)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--out", default=str(RESULTS / "nb201_shared_ranking"))
    args = p.parse_args()
    epochs = sorted({int(e) for e in args.epochs.split(",")})

    space = state_space.nb201_space()
    dataset = data.load_dataset("cifar10_5k", seed=args.seed)
    benchmark = nb201.Benchmark("cifar10")
    test = benchmark.table.metric("test200", "cifar10")
    valid12 = benchmark.table.metric("valid12", "cifar10")
    rng = np.random.default_rng([args.seed, 5])
    cells = []
    seen = set()
    while len(cells) < args.cells:
        c = space.sample(rng)
        if c not in seen:
            seen.add(c)
            cells.append(c)
    rows_of = [benchmark.row(c) for c in cells]
    truth = {"test200": test[rows_of], "valid12": valid12[rows_of]}

    ev = weight_sharing.SharedEvaluator(
        dataset, space, supernet=weight_sharing.SUPERNETS["nb201"],
        network={"channels": args.channels, "cells": args.cells_per_stage},
        batch_size=args.batch_size, eval_batch=250, seed=args.seed, lr=args.lr,
        lr_t0=max(epochs),
    )
    sampler = np.random.default_rng([args.seed, 6])
    lines, csv_rows, counts = [], [], op_counts(space, cells)
    started = time.perf_counter()
    train_seconds = score_seconds = 0.0
    for epoch in range(1, max(epochs) + 1):
        scalars = ev.train_epoch(lambda n: space.sample(sampler, n))
        train_seconds += scalars["supernet/seconds"]
        print(f"epoch {epoch}: loss {scalars['supernet/loss']:.3f} accuracy "
              f"{scalars['supernet/accuracy']:.3f} ({scalars['supernet/seconds']:.0f}s)", flush=True)
        if epoch not in epochs:
            continue
        t = time.perf_counter()
        shared = np.array([ev.accuracy(c) for c in cells])
        score_seconds += time.perf_counter() - t
        row = {"epoch": epoch, "mean shared accuracy": shared.mean()}
        for name, values in truth.items():
            row[name] = correlations(shared, values)
        b = bias(counts, shared, truth["test200"], np.random.default_rng(0))
        lines.append((row, b))
        for c, s, r in zip(cells, shared, rows_of):
            csv_rows.append([epoch, space.to_string(c), f"{s:.4f}", f"{test[r]:.4f}"])
        print(f"  scored {len(cells)} cells in {time.perf_counter() - t:.0f}s: "
              + ", ".join(f"{k} tau {v[0]:.3f} rho {v[1]:.3f}" for k, v in row.items()
                          if isinstance(v, tuple)), flush=True)

    with open(args.out + ".csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "cell", "shared_accuracy", "test200_accuracy"])
        w.writerows(csv_rows)
    command = "python bench/nb201_shared_ranking.py " + " ".join(sys.argv[1:])
    out = [
        f"# The NB201 supernet's ranking of {len(cells)} uniform cells against the table",
        "",
        f"Command: `{command.strip()}`; {platform.processor() or platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}; {time.perf_counter() - started:.0f} s "
        f"(training {train_seconds:.0f} s, scoring {score_seconds:.0f} s). Supernet: "
        f"{args.channels} channels, {args.cells_per_stage} cell(s) per stage, "
        f"{ev.net.count_params():,} parameters, one uniform cell per minibatch of "
        f"{args.batch_size}, seed {args.seed}; scores on the {len(dataset.y_val):,} validation "
        f"images.",
        "",
        "| epoch | mean shared accuracy | tau vs test200 | rho vs test200 | tau vs valid12 | rho vs valid12 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row, _ in lines:
        v12 = row["valid12"]
        out.append(
            f"| {row['epoch']} | {row['mean shared accuracy']:.3f} | {row['test200'][0]:.3f} | "
            f"{row['test200'][1]:.3f} | {v12[0]:.3f} | {v12[1]:.3f} |"
        )
    out += ["", "Per-op bias (shared effect per edge minus the table's, in standard deviations "
                "of each score; 95% bootstrap interval):", ""]
    out.append("| epoch | " + " | ".join(OPS) + " |")
    out.append("| --- |" + " --- |" * len(OPS))
    for row, (point, low, high) in lines:
        out.append(f"| {row['epoch']} | " + " | ".join(
            f"{point[i]:+.2f} [{low[i]:+.2f}, {high[i]:+.2f}]" for i in range(len(OPS))) + " |")
    pathlib.Path(args.out + ".md").write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
