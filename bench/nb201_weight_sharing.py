"""Weight sharing on NAS-Bench-201: ENAS, random search with weight sharing, DARTS and
GDAS, every pick held against the table, on a clean cell and on one with `none` x 5.

  python bench/nb201_weight_sharing.py                         # 5 seeds, 10 epochs
  python bench/nb201_weight_sharing.py --seeds 0-9 --epochs 20 --methods darts,gdas
  python bench/nb201_weight_sharing.py --speed                 # seconds per step only

Each run is `train.py --space=nb201 --evaluation=shared --dataset=cifar10_5k` (3,500
training and 500 validation images; configs/nb201-shared.flags) with a CPU-sized supernet (`--channels`,
`--cells_per_stage`), `--epochs` passes of the training split (minibatches of 64),
`--children_per_step` x `--steps_per_epoch` children scored between passes, and the
strategy's pick derived at the end (ENAS, random: the best of 100 proposals on the
validation split; DARTS, GDAS: the argmax cell); the final retraining is one epoch
(its accuracy is not reported: the table's is). Per method and space: the pick's
200-epoch CIFAR-10 test accuracy in the table and its rank (mean, 95% t interval over
seeds), the derived cell's table accuracy after each pass (supernet.csv), the share
of the pick's edges that are `none` (its poison rate; 1 in 5 for a uniform cell of the
clean space, 5 in 9 of the poisoned one), and seconds per supernet pass.

`--speed` times one minibatch step of the supernet, single path (ENAS, random) against
DARTS's alternation (a mixed-op step for alpha, one for the weights) and GDAS's (two
sampled steps), median of 30 after 5 warm-up steps.

Writes bench/results/nb201_weight_sharing.md and .csv. Runs are independent: a
killed benchmark is run again with the same arguments and skips the finished runs
(their best.json exists under --logdir).
"""

import argparse
import csv
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

RESULTS = ROOT / "bench" / "results"
METHODS = {"random": "random search with weight sharing", "controller": "ENAS (the controller)",
           "darts": "DARTS (first order)", "gdas": "GDAS"}
SPACES = {"clean": [], "none x5": ["--poison=none", "--poison_instances=5"]}


def seeds_of(text):
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return out


def flags(args, method, seed, space):
    trials = args.epochs * args.steps_per_epoch * args.children_per_step
    return [
        "--space=nb201", "--evaluation=shared", "--dataset=cifar10_5k", f"--strategy={method}",
        f"--seed={seed}", f"--nb201_channels={args.channels}", f"--nb201_cells={args.cells_per_stage}",
        "--batch_size=64", "--eval_batch=128", f"--children_per_step={args.children_per_step}",
        f"--shared_steps_per_epoch={args.steps_per_epoch}", f"--trials={trials}",
        f"--shared_lr_t0={args.epochs}", "--final_epochs=1", "--tensorboard=false",
        *SPACES[space],
    ]


def interval(values):
    from scipy import stats  # pylint: disable=import-outside-toplevel

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), float("nan")
    return float(v.mean()), float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def speed(args):
    """Seconds per minibatch step: single path, DARTS, GDAS (median of 30)."""
    import data  # pylint: disable=import-outside-toplevel
    import differentiable  # pylint: disable=import-outside-toplevel
    import state_space  # pylint: disable=import-outside-toplevel
    import weight_sharing  # pylint: disable=import-outside-toplevel

    space = state_space.nb201_space()
    dataset = data.load_dataset("cifar10_5k")
    ev = weight_sharing.SharedEvaluator(
        dataset, space, supernet=weight_sharing.SUPERNETS["nb201"],
        network={"channels": args.channels, "cells": args.cells_per_stage}, batch_size=64,
    )
    x, y = dataset.x_train[:64], dataset.y_train[:64]
    rng = np.random.default_rng(0)
    results = {}

    def timed(step):
        times = []
        for i in range(35):
            t = time.perf_counter()
            step(i)
            if i >= 5:
                times.append(time.perf_counter() - t)
        return float(np.median(times))

    results["single path"] = timed(
        lambda i: ev.net.train_on_batch([x, ev._rows(space.sample(rng), 64)], y))
    for method in ("darts", "gdas"):
        s = differentiable.METHODS[method](space, 0)
        results[f"{method} (alpha step + weight step)"] = timed(
            lambda i, s=s: s.supernet_step(ev, (0, i), x, y, x, y))
    results["score one cell (128 images)"] = timed(
        lambda i: ev.score(space.sample(rng), i))
    return results, ev.net.count_params()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0-4")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--spaces", default=",".join(SPACES))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--steps_per_epoch", type=int, default=5)
    p.add_argument("--children_per_step", type=int, default=10)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--cells_per_stage", type=int, default=1)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--logdir", default="/tmp/nb201_weight_sharing")
    p.add_argument("--speed", action="store_true")
    p.add_argument("--out", default=str(RESULTS / "nb201_weight_sharing"))
    args = p.parse_args()

    if args.speed:
        results, params = speed(args)
        lines = [f"Seconds per supernet minibatch step (64 images; {args.channels} channels, "
                 f"{args.cells_per_stage} cell(s) per stage, {params:,} parameters), median of 30, "
                 f"`python bench/nb201_weight_sharing.py --speed`, "
                 f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}:", ""]
        lines += ["| step | seconds |", "| --- | --- |"]
        lines += [f"| {k} | {v:.4f} |" for k, v in results.items()]
        pathlib.Path(args.out + "_speed.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return

    runs = [(m, s, seed) for seed in seeds_of(args.seeds) for s in args.spaces.split(",")
            for m in args.methods.split(",")]
    started = time.perf_counter()
    pending, running = list(runs), []

    def run_dir(m, s, seed):
        return pathlib.Path(args.logdir) / f"{m}-{s.replace(' ', '')}-{seed}"

    while pending or running:
        while pending and len(running) < args.parallel:
            m, s, seed = pending.pop(0)
            d = run_dir(m, s, seed)
            if (d / "best.json").exists():
                continue
            cmd = [sys.executable, str(ROOT / "train.py"), *flags(args, m, seed, s),
                   f"--logdir={d.parent}", f"--run_name={d.name}"]
            resume = ["--resume"] if (d / "config.json").exists() else []
            d.parent.mkdir(parents=True, exist_ok=True)
            log = open(str(d) + ".log", "a")
            running.append((subprocess.Popen(cmd + resume, stdout=log, stderr=subprocess.STDOUT,
                                             cwd=ROOT), d, log))
            print(f"started {d.name}", flush=True)
        for proc, d, log in list(running):
            if proc.poll() is not None:
                log.close()
                running.remove((proc, d, log))
                print(f"{d.name}: exit {proc.returncode} ({time.perf_counter() - started:.0f}s)",
                      flush=True)
        time.sleep(1)

    rows, table = [], {}
    for m, s, seed in runs:
        d = run_dir(m, s, seed)
        best = json.loads((d / "best.json").read_text())
        with open(d / "supernet.csv", newline="") as f:
            epochs = list(csv.DictReader(f))
        ops = best["architecture_str"]
        none_edges = sum(part.startswith("none") for part in ops.replace("+", "|").split("|") if part)
        seconds = [float(e["seconds"]) for e in epochs]
        # The pick after each pass (none before the first scored step for ENAS and random).
        curve = [float(e["table_accuracy"]) if e["table_accuracy"] else float("nan") for e in epochs]
        rows.append([m, s, seed, ops, best["table_accuracy"], best["table_rank"], none_edges,
                     float(np.median(seconds)), best["search_seconds"],
                     " ".join(f"{c:.4f}" for c in curve)])
        table.setdefault((m, s), []).append((best["table_accuracy"], best["table_rank"],
                                             none_edges / 6, np.median(seconds), curve))
    with open(args.out + ".csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "space", "seed", "pick", "table_accuracy", "table_rank", "none_edges",
                    "seconds_per_pass", "search_seconds", "derived_table_accuracy_per_epoch"])
        w.writerows(rows)
    command = "python bench/nb201_weight_sharing.py " + " ".join(sys.argv[1:])
    lines = [
        "# Weight sharing on NAS-Bench-201, every pick held against the table", "",
        f"Command: `{command.strip()}`; {platform.processor() or platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}. Seeds {args.seeds}; supernet {args.channels} channels, "
        f"{args.cells_per_stage} cell(s) per stage; {args.epochs} passes of the 3,500 cifar10_5k "
        f"training images; {args.steps_per_epoch} steps of {args.children_per_step} children "
        "after each pass. Table accuracy: the pick's 200-epoch CIFAR-10 test accuracy in "
        "NAS-Bench-201, percent (the best cell 94.37; a uniform cell 87.06 on average, 60.49 in "
        "the poisoned space); mean and 95% t interval over seeds; the derived cell by pass: "
        "the mean over seeds of the table accuracy of the pick after each pass (supernet.csv).", "",
        "| space | method | pick's table accuracy | rank (of 15,625) | pick's edges that are none "
        "| derived cell by pass (mean table accuracy) | seconds per pass |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (m, s), values in table.items():
        acc = interval([100 * v[0] for v in values])
        rank = interval([v[1] for v in values])
        none = np.mean([v[2] for v in values])
        curve = np.nanmean([v[4] for v in values], axis=0) if values[0][4][1:] else []
        shown = " ".join("-" if np.isnan(c) else f"{100 * c:.1f}" for c in curve)
        lines.append(f"| {s} | {METHODS[m]} | {acc[0]:.2f} ± {acc[1]:.2f} | {rank[0]:,.0f} ± "
                     f"{rank[1]:,.0f} | {none:.2f} | {shown} | {np.mean([v[3] for v in values]):.0f} |")
    pathlib.Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
