"""Measures the search overhead: search wall time against plain `model.fit` time.

  python bench/search_overhead.py [--trials 24] [--epochs 3] [--space toy]

Runs a real search (controller strategy, mnist5k) through `search.run_search`,
then, in the same process, rebuilds every child the search trained and times a
plain `model.fit` of it with the same settings. Overhead = search wall time /
sum of plain fit times - 1: everything that is not training (building, compiling,
validation, the controller, logging, clearing sessions). Target: <= 5%.
Writes bench/results/search_overhead.md.
"""

import argparse
import csv
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402

import data  # noqa: E402
import manager  # noqa: E402
import poisoning  # noqa: E402
import search  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--children_per_step", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--space", default="toy")
    parser.add_argument(
        "--workers", type=int, default=0, help="children in this many worker processes (Ray)"
    )
    args = parser.parse_args()

    logdir = tempfile.mkdtemp(prefix="nas-bench-")
    config = search.SearchConfig(
        space=args.space,
        trials=args.trials,
        children_per_step=args.children_per_step,
        epochs=args.epochs,
        logdir=logdir,
        run_name="overhead",
        workers=args.workers,
    )
    summary = search.run_search(config, out=lambda line: None)
    search_seconds = summary["search_seconds"]
    with open(os.path.join(logdir, "overhead", "history.csv")) as f:
        rows = [r for r in csv.DictReader(f)]
    trained = [r for r in rows if r["cached"] == "0" and r["failed"] == "0"]

    # Plain model.fit of the same children, with the same data and settings.
    config = config.resolved()
    dataset = data.load_dataset(config.dataset, val_size=config.val_size, seed=config.seed)
    space, template = poisoning.make_space(config)
    builder = manager.NetworkManager(
        dataset, space, template=template, epochs=config.epochs, learning_rate=config.child_lr
    )
    keys = [d.key for d in space.decisions]
    fit_seconds = 0.0
    for row in trained:
        architecture = tuple(int(row[k]) if row[k].lstrip("-").isdigit() else row[k] for k in keys)
        keras.utils.set_random_seed(builder.child_seed(architecture))
        model = builder.build(architecture)
        start = time.perf_counter()
        model.fit(
            dataset.x_train,
            dataset.y_train,
            epochs=config.epochs,
            batch_size=config.batch_size,
            verbose=0,
        )
        fit_seconds += time.perf_counter() - start
        del model
        keras.backend.clear_session()

    in_search_fit = sum(float(r["train_seconds"]) for r in trained)
    overhead = search_seconds / fit_seconds - 1
    # The same measure without comparing two sets of fits (fit times vary by 10-20%
    # from run to run on a shared machine): the search's time outside model.fit.
    outside = (search_seconds - in_search_fit) / in_search_fit
    text = "\n".join(
        [
            f"Search overhead: {args.space} space, {args.trials} trials ({len(trained)} trained, "
            f"{len(rows) - len(trained)} cached or failed), {args.epochs} epochs per child, mnist5k, "
            f"{os.cpu_count()} CPUs, children "
            + (f"in {args.workers} worker process(es)" if args.workers else "in the search process")
            + ".",
            "",
            "| search wall time | sum of plain model.fit | model.fit inside the search | overhead vs plain fit | time outside fit / fit, same run | target <= 5% |",
            "| --- | --- | --- | --- | --- | --- |",
            f"| {search_seconds:.1f} s | {fit_seconds:.1f} s | {in_search_fit:.1f} s | "
            f"{100 * overhead:+.1f}% | {100 * outside:.1f}% | "
            f"{'met' if overhead <= 0.05 else 'MISSED'} |",
            "",
        ]
    )
    name = "search_overhead.md" if not args.workers else f"search_overhead_{args.workers}worker.md"
    (ROOT / "bench" / "results" / name).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
