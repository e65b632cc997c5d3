"""The search loop at table speed: NAS-Bench-201 lookups with every output on.

  python bench/nb201_speed.py [--trials 10000] [--strategies random,controller]

Runs real searches (`search.run_search`, `--space=nb201 --evaluation=benchmark`,
history.csv, TensorBoard events, commits, progress lines) in this process, one per
strategy, and reports the loop's seconds, trials per second, and the time per
trial over the first and the last 1,000 trials (from history.csv's
`elapsed_seconds`: the loop must stay flat as the run grows), with the commits'
count and cost. TensorFlow's start-up is not in the figures (about 5 s per
process here). Targets: random search 10,000 trials in at most 10 s,
the controller in at most 60 s, the last 1,000 no slower than the first 1,000
beyond noise (the first 1,000 include the controller's first traces: the second
1,000 are the steady state to compare with). Writes bench/results/nb201_speed.md.
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
import run_log  # noqa: E402
import search  # noqa: E402


def run(strategy, trials, logdir):
    """One search; returns its row of the table."""
    commits = []
    write_json = run_log.write_json

    def timed(path, *args, **kwargs):
        started = time.perf_counter()
        write_json(path, *args, **kwargs)
        if path.endswith(search.STATE_FILE):
            commits.append(time.perf_counter() - started)

    run_log.write_json = timed
    try:
        config = search.SearchConfig(
            space="nb201",
            evaluation="benchmark",
            strategy=strategy,
            trials=trials,
            logdir=logdir,
            run_name=strategy,
        )
        lines = []
        started = time.perf_counter()
        best = search.run_search(config, out=lines.append)
        wall = time.perf_counter() - started
    finally:
        run_log.write_json = write_json
    with open(os.path.join(logdir, strategy, "history.csv"), newline="") as f:
        elapsed = [float(r["elapsed_seconds"]) for r in csv.DictReader(f)]
    window = min(1000, len(elapsed) // 2)
    first = (elapsed[window - 1] - 0.0) / window
    second = (elapsed[2 * window - 1] - elapsed[window - 1]) / window
    last = (elapsed[-1] - elapsed[-window - 1]) / window
    return {
        "strategy": strategy,
        "trials": best["trials"],
        "loop_s": best["search_seconds"],
        "wall_s": wall,
        "trials_per_s": best["trials"] / best["search_seconds"],
        "first_ms": 1000 * first,
        "second_ms": 1000 * second,
        "last_ms": 1000 * last,
        "commits": len(commits),
        "commit_ms": 1000 * sum(commits) / max(len(commits), 1),
        "lines": sum(line.startswith("trial ") for line in lines),
        "best": best["test_accuracy"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--strategies", default="random,controller")
    args = parser.parse_args()
    manager.make_deterministic()
    logdir = tempfile.mkdtemp(prefix="nas-bench-nb201-")
    rows = [run(s, args.trials, logdir) for s in args.strategies.split(",")]
    header = (
        "| strategy | trials | loop (s) | trials/s | ms/trial, first 1,000 | second 1,000 | last 1,000 "
        "| state.json commits (mean ms) | progress lines | best CIFAR-10 |"
    )
    table = [header, "|" + " --- |" * 10]
    for r in rows:
        table.append(
            f"| {r['strategy']} | {r['trials']:,} | {r['loop_s']:.1f} | {r['trials_per_s']:,.0f} "
            f"| {r['first_ms']:.3f} | {r['second_ms']:.3f} | {r['last_ms']:.3f} | {r['commits']} ({r['commit_ms']:.1f}) "
            f"| {r['lines']} | {100 * r['best']:.2f} |"
        )
    text = (
        f"`python bench/nb201_speed.py --trials {args.trials} --strategies {args.strategies}` "
        f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs; loop = search seconds, without "
        f"TensorFlow's start-up; every output on)\n\n" + "\n".join(table) + "\n"
    )
    print(text)
    out = ROOT / "bench" / "results" / "nb201_speed.md"
    out.write_text(text)
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
