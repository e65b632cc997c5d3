"""Does the ENAS supernet favour some ops? Its per-op bias on the macro space.

For the 100 macro architectures of `bench/results/proxy_macro.csv` (each trained from
scratch: the stand-alone validation accuracy) and their shared-weight scores
(`bench/results/shared_ranking*.csv`, batch statistics, whole validation split), per op:

- the mean score of architectures that use the op in at least one layer minus that of
  those that do not ("with - without"), stand-alone and shared, each in units of its
  own standard deviation over the 100 architectures (the two scores have other scales);
- the op's effect per layer: least squares of the standardised score on the number of
  layers using each op (the counts sum to 6, so the effects are relative to the mean op);
- the bias: shared effect minus stand-alone effect. A supernet that ranked like
  stand-alone training would show biases near 0 for every op (within the sampling error,
  shown as a bootstrap interval over architectures).

Usage: python bench/supernet_op_bias.py [--seed 0] [--epochs 100]
"""

import argparse
import csv
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from state_space import MACRO_OPS  # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results")


def ops_of(architecture):
    """The op of each layer of a macro architecture string ('op=conv3x3 in=0 | ...')."""
    return [part.split()[0].split("=", 1)[1] for part in architecture.split("|")]


def shared_scores(seed, epochs):
    """{architecture: shared-weight accuracy on the whole split} of one supernet."""
    scores = {}
    for name in ("shared_ranking.csv", "shared_ranking_long.csv"):
        with open(os.path.join(RESULTS, name), newline="") as f:
            for row in csv.reader(f):
                if row[0] == "batch" and row[1] == str(seed) and row[2] == str(epochs):
                    scores[row[3]] = float(row[4])
    return scores


def effects(counts, score):
    z = (score - score.mean()) / score.std()
    coef, *_ = np.linalg.lstsq(counts, z, rcond=None)
    return coef - coef.mean()


def with_without(counts, score):
    z = (score - score.mean()) / score.std()
    return np.array([z[c > 0].mean() - z[c == 0].mean() for c in counts.T])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    with open(os.path.join(RESULTS, "proxy_macro.csv"), newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["failed"] == "0"]
    shared = shared_scores(args.seed, args.epochs)
    if not shared:
        sys.exit(f"no shared-weight scores for seed {args.seed}, {args.epochs} epochs in bench/results")
    rows = [r for r in rows if r["architecture"] in shared]
    counts = np.array([[ops_of(r["architecture"]).count(op) for op in MACRO_OPS] for r in rows], float)
    alone = np.array([float(r["val_accuracy"]) for r in rows])
    weights = np.array([shared[r["architecture"]] for r in rows])
    rng = np.random.default_rng(0)
    boot = []
    for _ in range(args.resamples):
        i = rng.integers(0, len(rows), len(rows))
        boot.append(effects(counts[i], weights[i]) - effects(counts[i], alone[i]))
    low, high = np.percentile(boot, [2.5, 97.5], axis=0)
    ww_alone, ww_shared = with_without(counts, alone), with_without(counts, weights)
    ef_alone, ef_shared = effects(counts, alone), effects(counts, weights)
    print(f"# The supernet's per-op bias on the macro space ({len(rows)} architectures)\n")
    print(f"Command: `python bench/supernet_op_bias.py --seed={args.seed} --epochs={args.epochs}`. "
          "Stand-alone: bench/results/proxy_macro.csv (2 epochs, 2,000 mnist5k images, 12 channels); "
          f"shared: the batch-statistics supernet of seed {args.seed} after {args.epochs} epochs "
          "(bench/results/shared_ranking*.csv, whole validation split). Scores in units of their own "
          "standard deviation over these architectures; 95% bootstrap interval over architectures "
          f"({args.resamples} resamples).\n")
    print("| op | layers using it (of 600) | with - without, stand-alone | with - without, shared | "
          "effect per layer, stand-alone | effect per layer, shared | bias (shared - stand-alone) | 95% CI |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for k, op in enumerate(MACRO_OPS):
        print(f"| {op} | {int(counts[:, k].sum())} | {ww_alone[k]:+.2f} | {ww_shared[k]:+.2f} | "
              f"{ef_alone[k]:+.3f} | {ef_shared[k]:+.3f} | {ef_shared[k] - ef_alone[k]:+.3f} | "
              f"[{low[k]:+.3f}, {high[k]:+.3f}] |")


if __name__ == "__main__":
    main()
