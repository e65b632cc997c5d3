"""What reusing a gone controller's traced models saves: table-lookup runs in one process.

  python bench/controller_reuse.py [--runs 6] [--trials 1000]

Runs `--runs` NAS-Bench-201 controller searches (`search.run_search`, 8 per step, seeds
0, 1, ...) one after another in this process, as `assess.py --evaluation=benchmark` does,
twice: with a new controller taking over the traced models of the last one (controller
`_idle`, the default) and with that pool emptied before every run (every run traces its
own functions, as before). The two passes alternate run by run, so load on the machine
falls on both alike. Prints the seconds per run (first run apart: it traces in both) and
checks that both passes pick the same cells.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import config as config_lib  # noqa: E402
import controller  # noqa: E402
import manager  # noqa: E402
import search  # noqa: E402


def one_run(logdir, seed, trials, reuse):
    if not reuse:
        controller._idle.clear()  # pylint: disable=protected-access
    config = config_lib.SearchConfig(
        space="nb201", evaluation="benchmark", strategy="controller", trials=trials,
        children_per_step=8, seed=seed, tensorboard=False, logdir=logdir,
        run_name=f"{'reuse' if reuse else 'fresh'}-{seed}",
    )
    start = time.perf_counter()
    best = search.run_search(config, out=lambda line: None)
    seconds = time.perf_counter() - start
    keras.backend.clear_session()
    return seconds, best["nb201_string"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    manager.make_deterministic()
    seconds = {True: [], False: []}
    picks = {True: [], False: []}
    with tempfile.TemporaryDirectory() as logdir:
        for seed in range(args.runs):
            for reuse in (False, True) if seed % 2 else (True, False):
                s, pick = one_run(logdir, seed, args.trials, reuse)
                seconds[reuse].append(s)
                picks[reuse].append(pick)
    print(f"`python bench/controller_reuse.py --runs {args.runs} --trials {args.trials}` "
          f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs)\n")
    print("| controller models | seconds per run (runs 2+: mean, min-max) | first run (s) |")
    print("| --- | --- | --- |")
    for reuse, label in ((False, "traced per run"), (True, "taken over from the last run")):
        rest = np.array(seconds[reuse][1:])
        print(f"| {label} | {rest.mean():.2f} ({rest.min():.2f}-{rest.max():.2f}) | {seconds[reuse][0]:.2f} |")
    print(f"\nSame picks in both passes: {picks[True] == picks[False]}")


if __name__ == "__main__":
    main()
