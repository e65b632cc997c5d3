"""Memory and time per child of a long macro search: children in the search process
against children in worker processes (workers.py), and throughput with 1 and 2 workers.

  python bench/worker_memory.py                                   # the README's numbers
  python bench/worker_memory.py --children 300 --in_process 100 --throughput 60

Each search is a real `train.py` process (random strategy, so that every child is a
new architecture and the controller costs nothing; macro space, 1 epoch, 8 channels,
1,500 training images, batch 32: children dominated by their fixed cost, as in
docs/WORKERS.md). Every second the script sums the resident memory of the search
process and all its descendants (Ray's processes and the workers included) and
notes how many children history.csv holds. Reported per run:
  - memory after the 20th child, the most after it, and the growth (target < 300 MB
    with workers);
  - seconds per child (wall time between history rows) over the first and the last
    50 children;
  - children per minute; the 2-worker run trains the first children of the 1-worker
    run again (same seed), and both rates over those children are compared.
Writes bench/results/OUT.md and OUT.csv (the samples; `--out`, default worker_memory).
"""

import argparse
import csv
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import psutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHILD = [
    "--space=macro",
    "--strategy=random",
    "--epochs=1",
    "--filters=8",
    "--train_size=1500",
    "--batch_size=32",
    "--children_per_step=10",
    "--notensorboard",
]


def tree_rss_mb(process):
    """(resident MB of `process` and all its descendants, how many of them are child
    workers: two with --workers=1 while a replacement starts beside the old one)."""
    total, workers = 0, 0
    try:
        family = [process] + process.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0, 0
    for p in family:
        try:
            total += p.memory_info().rss
            workers += "ChildWorker" in " ".join(p.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total / 2**20, workers


def history(run_dir):
    path = run_dir / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("elapsed_seconds")]


def run(name, children, workers, logdir, samples):
    """One search; returns its summary dict. Appends (name, t, children, MB) samples."""
    args = [sys.executable, "train.py", *CHILD, f"--trials={children}", f"--workers={workers}"]
    args += [f"--logdir={logdir}", f"--run_name={name}", "--final_epochs=1"]
    print(" ".join(args[1:]), flush=True)
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ps = psutil.Process(process.pid)
    start = time.monotonic()
    run_dir = logdir / name
    while process.poll() is None:
        n = len(history(run_dir))
        mb, live = tree_rss_mb(ps)
        samples.append((name, round(time.monotonic() - start, 1), n, round(mb, 1), live))
        if n >= children:
            break
        time.sleep(1.0)
    _, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{name} failed: {err.decode()[-2000:]}")
    return summarize(name, workers, run_dir, samples)


def summarize(name, workers, run_dir, samples):
    """The table row of one run, from its history.csv and its memory samples."""
    rows = history(run_dir)
    elapsed = np.array([float(r["elapsed_seconds"]) for r in rows])
    per_child = np.diff(np.concatenate([[0.0], elapsed]))
    mine = [s for s in samples if s[0] == name]
    at_20 = next((mb for _, _, n, mb, _ in mine if n >= 20), None)
    after = [mb for _, _, n, mb, _ in mine if n >= 20]
    # A child's memory swings by hundreds of MB while it trains (building, tracing,
    # the training data), so one sample at child 20 may be a trough or a crest; the
    # fair "value at child 20" for a peak is the peak of the children before it.
    peak_10_20 = max((mb for _, _, n, mb, _ in mine if 10 <= n < 20), default=None)
    top = max((s for s in mine if s[2] >= 20), key=lambda s: s[3], default=None)
    overlap = [mb for _, _, n, mb, live in mine if n >= 20 and live > max(workers, 1)]
    k = min(50, len(rows) // 2)
    # The trend: least-squares MB per child over the samples after child 20 (the
    # sawtooth of recycled workers averages out; in process it is the growth).
    late = [(n, mb) for _, _, n, mb, _ in mine if n >= 20]
    slope = float(np.polyfit([n for n, _ in late], [mb for _, mb in late], 1)[0]) if late else None
    medians = [
        float(np.median([mb for n, mb in late if lo <= n < lo + 50]))
        for lo in range(20, len(rows), 50)
        if any(lo <= n < lo + 50 for n, _ in late)
    ]
    return {
        "medians": medians,
        "run": name,
        "workers": workers,
        "children": len(rows),
        "mb_at_20": at_20,
        "mb_max_after_20": max(after) if after else None,
        "growth_mb": (max(after) - at_20) if after else None,
        "peak_10_20": peak_10_20,
        "peak_growth_mb": (max(after) - peak_10_20) if after and peak_10_20 else None,
        "top_child": None if top is None else top[2] + 1,  # 1-based: the child then training.
        "top_workers": None if top is None else top[4],
        "overlap_samples": len(overlap),
        "overlap_max": max(overlap, default=None),
        "peak_no_overlap": max((mb for _, _, n, mb, live in mine
                                if n >= 20 and live <= max(workers, 1)), default=None),
        "mb_per_child": slope,
        "first_s": float(np.mean(per_child[:k])),
        "last_s": float(np.mean(per_child[-k:])),
        "k": k,
        "per_minute": 60 * len(rows) / float(elapsed[-1]),
        "failed": sum(r["failed"] == "1" for r in rows),
    }


def peaks_table(samples):
    """Markdown: per run of `samples`, the peak of the first 20 children against the
    peak after them (a child swings by hundreds of MB while it trains, so peaks are
    compared with peaks), the child training at the highest sample, and the children
    whose samples rose above the first 20's peak."""
    lines = ["| run | peak, children 2-20 | peak, children 10-20 | most after child 20 | at child "
             "| after 20 minus 2-20 | after 20 minus 10-20 | children above the 2-20 peak |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name in dict.fromkeys(s[0] for s in samples):
        mine = [s for s in samples if s[0] == name]
        first = max((s[3] for s in mine if 1 <= s[2] < 20), default=None)
        late = max((s[3] for s in mine if 10 <= s[2] < 20), default=None)
        top = max((s for s in mine if s[2] >= 20), key=lambda s: s[3], default=None)
        if first is None or top is None:
            continue
        above = sorted({s[2] + 1 for s in mine if s[2] >= 20 and s[3] > first})
        shown = ", ".join(map(str, above[:8])) + (f", ... ({len(above)} in all)" if len(above) > 8 else "")
        lines.append(f"| {name} | {first:.0f} | {late:.0f} | {top[3]:.0f} | {top[2] + 1} | "
                     f"{top[3] - first:+.0f} | {top[3] - late:+.0f} | {shown or 'none'} |")
    return "\n".join(lines)


def rate_of_first(run_dir, n):
    """Children per minute over the first `n` children of a run."""
    rows = history(run_dir)[:n]
    return 60 * len(rows) / float(rows[-1]["elapsed_seconds"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=300, help="children of the worker run")
    parser.add_argument(
        "--in_process", type=int, default=100, help="children of the in-process run (0: none)"
    )
    parser.add_argument(
        "--throughput", type=int, default=60, help="children of the 2-worker run (0: none)"
    )
    parser.add_argument(
        "--report",
        metavar="LOGDIR",
        help="only write the tables again from an earlier run's LOGDIR and OUT.csv",
    )
    parser.add_argument("--out", default="worker_memory",
                        help="bench/results/OUT.md and OUT.csv (the samples)")
    parser.add_argument("--peaks", metavar="CSV",
                        help="only print the peaks table of an earlier run's samples (OUT.csv)")
    args = parser.parse_args()
    out = ROOT / "bench" / "results"
    if args.peaks:
        with open(args.peaks, newline="") as f:
            samples = [(r["run"], float(r["seconds"]), int(r["children"]), float(r["resident_mb"]),
                        int(r.get("workers") or 0)) for r in csv.DictReader(f)]
        print(peaks_table(samples))
        return
    plan = [("in-process", 0, args.in_process), ("1-worker", 1, args.children)]
    plan += [("2-workers", 2, args.throughput)]
    plan = [p for p in plan if p[2]]
    results = []
    if args.report:
        logdir = pathlib.Path(args.report)
        with open(out / f"{args.out}.csv", newline="") as f:
            samples = [
                (r["run"], float(r["seconds"]), int(r["children"]), float(r["resident_mb"]),
                 int(r.get("workers") or 0))
                for r in csv.DictReader(f)
            ]
        for name, workers, _ in plan:
            results.append(summarize(name, workers, logdir / name, samples))
    else:
        logdir = pathlib.Path(tempfile.mkdtemp(prefix="nas-workers-"))
        samples = []
        for name, workers, children in plan:
            results.append(run(name, children, workers, logdir, samples))
    if args.throughput:
        results[-1]["one_worker_same_children"] = rate_of_first(
            logdir / "1-worker", args.throughput
        )

    if not args.report:
        with open(out / f"{args.out}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["run", "seconds", "children", "resident_mb", "workers"])
            w.writerows(samples)
    command = "python bench/worker_memory.py " + " ".join(
        a for a in sys.argv[1:] if not a.startswith("--report")
    )
    lines = [
        "# Memory and time per child: children in the search process vs in workers",
        "",
        f"`{command.strip()}` on {os.cpu_count()} CPUs; each run a `train.py` macro search "
        f"(`{' '.join(CHILD)}`), memory summed over the search process and all its "
        "descendants (Ray, workers), sampled every second; worker settings are the defaults "
        "(`--worker_children=50 --worker_growth_mb=250`).",
        "",
        "| run | workers | children | MB after child 20 | most MB after child 20 | growth (target < 300) "
        "| trend after child 20, MB per child | s/child first k | s/child last k | k | children/min "
        "| failed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['run']} | {r['workers']} | {r['children']} | {r['mb_at_20']:.0f} | "
            f"{r['mb_max_after_20']:.0f} | {r['growth_mb']:+.0f} | {r['mb_per_child']:+.1f} | "
            f"{r['first_s']:.2f} | {r['last_s']:.2f} | {r['k']} | {r['per_minute']:.1f} | "
            f"{r['failed']} |"
        )
    lines += ["", "Median MB over each 50 children from child 20 on (the sawtooth of recycled workers "
              "removed; in process, the growth):", ""]
    for r in results:
        lines.append(f"- {r['run']}: " + ", ".join(f"{m:.0f}" for m in r["medians"]))
    for r in results:
        if "one_worker_same_children" in r:
            lines += [
                "",
                f"Throughput over the same first {r['children']} children: "
                f"{r['one_worker_same_children']:.1f} children/min with 1 worker, "
                f"{r['per_minute']:.1f} with 2 workers "
                f"({r['per_minute'] / r['one_worker_same_children']:.2f}x).",
            ]
    lines += ["", "Peaks: the value at child 20 taken as the peak over children 10-20 (a child's own "
              "swing is hundreds of MB), the child training at the highest sample, and the samples "
              "taken while a replacement worker ran beside the old one:", "",
              "| run | peak children 10-20 | most after child 20 | growth (target < 300) | at child "
              "| workers then | samples with 2 workers | most with 2 workers | most with one |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        if r["peak_growth_mb"] is None:
            continue
        lines.append(
            f"| {r['run']} | {r['peak_10_20']:.0f} | {r['mb_max_after_20']:.0f} | "
            f"{r['peak_growth_mb']:+.0f} | {r['top_child']} | {r['top_workers']} | "
            f"{r['overlap_samples']} | {r['overlap_max'] or 0:.0f} | {r['peak_no_overlap'] or 0:.0f} |")
    text = "\n".join(lines) + "\n"
    (out / f"{args.out}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
