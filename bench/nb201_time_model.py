"""How well does the linear time model predict a NAS-Bench-201 cell's training time?

  python bench/nb201_time_model.py [--folds 5]

nb201.TimeModel (intercept plus seconds per edge of each op, least squares) fitted to the
benchmark's 12-epoch CIFAR-10 training times of the 1,000 cells at hand
(embedded/nb201_train_seconds_1000.csv.gz): its coefficients and R^2 on all of them, and the
error of each cell's time predicted by a model fitted without its fold (k-fold
cross-validation, folds by index mod k). Writes bench/results/nb201_time_model.md.
"""

import argparse
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nb201  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    table = nb201.load_table()
    known, seconds = nb201.load_train_seconds()
    model = nb201.TimeModel.fit(table.ops[known], seconds)
    fitted = model.predict(table.ops[known])
    r2 = 1 - np.sum((fitted - seconds) ** 2) / np.sum((seconds - seconds.mean()) ** 2)
    fold = np.arange(len(known)) % args.folds
    predicted = np.empty_like(seconds)
    for k in range(args.folds):
        held = fold == k
        predicted[held] = nb201.TimeModel.fit(table.ops[known[~held]], seconds[~held]).predict(table.ops[known[held]])
    absolute = np.abs(predicted - seconds)
    relative = absolute / seconds
    names = [op for op in nb201.NB201_OPS if op != "none"]
    lines = [
        "# The NAS-Bench-201 time model",
        "",
        f"`python bench/nb201_time_model.py --folds {args.folds}`: {len(known):,} cells with known 12-epoch "
        f"CIFAR-10 training times (mean {seconds.mean():.1f} s, {seconds.min():.1f}-{seconds.max():.1f} s).",
        "",
        f"Fitted to all: intercept {model.intercept:.1f} s; per edge "
        + ", ".join(f"`{n}` {c:+.1f} s" for n, c in zip(names, model.per_op))
        + f", `none` 0; R² {r2:.4f}.",
        "",
        f"{args.folds}-fold cross-validation, each cell predicted by the model fitted without its fold: "
        f"relative error median {100 * np.median(relative):.1f}%, mean {100 * relative.mean():.1f}%, "
        f"90th percentile {100 * np.percentile(relative, 90):.1f}%, worst {100 * relative.max():.1f}%; "
        f"absolute error median {np.median(absolute):.1f} s, mean {absolute.mean():.1f} s, worst "
        f"{absolute.max():.1f} s.",
    ]
    text = "\n".join(lines) + "\n"
    (ROOT / "bench" / "results" / "nb201_time_model.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
