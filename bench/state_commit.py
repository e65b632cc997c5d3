"""What one commit of a run's state costs as the run grows (it must be O(1) per trial).

  python bench/state_commit.py [--trials 3000] [--strategy random] [--at 10,100,1000,3000]

A trained-children search commits after every trial; this measures that commit without
the training: a random search on the NAS-Bench-201 table (no images), committed after
every trial as a trained search is (`--children_per_step 1`, the benchmark's commit
interval set to 0), with the manager's cache of results on as with trained children. For each trial count in `--at` it prints the size of state.json, the
bytes the loop appended to its logs since the previous commit and the milliseconds the
commit took (the median of the commits around that trial), and at the end the bytes
written by every commit of the run together.
"""

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import config as config_lib  # noqa: E402
import run_commit  # noqa: E402
import search  # noqa: E402


def _size(path):
    return os.path.getsize(path) if os.path.exists(path) else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3000)
    parser.add_argument("--strategy", default="random")
    parser.add_argument("--at", default="10,100,1000,3000")
    args = parser.parse_args()
    logdir = tempfile.mkdtemp(prefix="state-commit-")
    run_dir = os.path.join(logdir, "run")
    commits = []  # (trial, seconds, state.json bytes, log bytes)
    logs = ("history.csv", "trials.jsonl")
    save = run_commit.Run.save  # pylint: disable=protected-access

    def timed_save(run):
        before = sum(_size(os.path.join(run_dir, name)) for name in logs)
        start = time.perf_counter()
        save(run)
        seconds = time.perf_counter() - start
        commits.append((run.trial, seconds, _size(os.path.join(run_dir, search.STATE_FILE)), before))

    run_commit.Run.save = timed_save  # pylint: disable=protected-access
    make_manager = search.make_manager

    def caching_manager(*a, **k):
        manager = make_manager(*a, **k)
        manager.use_cache = True  # As with trained children (the table's answers are not cached).
        return manager

    search.make_manager = caching_manager
    search.BENCHMARK_COMMIT_SECONDS = 0.0
    config = config_lib.SearchConfig(
        space="nb201", evaluation="benchmark", strategy=args.strategy, trials=args.trials,
        children_per_step=1, seed=0, tensorboard=False, logdir=logdir, run_name="run",
    )
    search.run_search(config, out=lambda line: None)
    print(f"{args.strategy} on the NB201 table, one commit per trial ({len(commits)} commits)\n")
    print("| trial | state.json bytes | ms per commit (median of 9) | log bytes per trial |")
    print("|---:|---:|---:|---:|")
    for at in (int(a) for a in args.at.split(",")):
        near = [c for c in commits if abs(c[0] - at) <= 4]
        if not near:
            continue
        ms = statistics.median(c[1] for c in near) * 1000
        grown = [b[3] - a[3] for a, b in zip(near, near[1:]) if b[0] == a[0] + 1]
        per_trial = statistics.median(grown) if grown else float("nan")
        print(f"| {at:,} | {near[len(near) // 2][2]:,} | {ms:.2f} | {per_trial:,.0f} |")
    state_bytes = sum(c[2] for c in commits)
    print(f"\nstate.json bytes written over the run: {state_bytes:,} "
          f"({state_bytes / max(len(commits), 1):,.0f} per commit); folder {logdir}")


if __name__ == "__main__":
    main()
