"""Interrupt a tiny search at every boundary, resume it, compare (issue 20's resume sweep).

  python bench/resume_boundaries.py [--trials 9] [--children_per_step 3] [--strategy controller]
                                    [--kinds trial,learn-before,learn-after,save-before,save-after]

In this process: one uninterrupted toy search (trained children, 1 epoch on 200 images),
then, for every point k, the same search interrupted there (KeyboardInterrupt, what
train.py's SIGINT/SIGTERM handler raises) and resumed to the end. The points: after each
trial (the loop's `should_stop`), and inside each step's update (`strategy.learn`) and
each checkpoint (`strategy.save`), where a signal can land too. Every history.csv
column that does not measure time, and best.json's pick, must equal the uninterrupted
run's; prints one line per point and the differences found. An interrupt raised inside a
commit stands for a SIGKILL there (SIGINT and SIGTERM wait for the commit to end).
"""

import argparse
import csv
import json
import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402

import config as config_lib  # noqa: E402
import manager  # noqa: E402
import search  # noqa: E402
import strategies  # noqa: E402

TIMED = {"train_seconds", "seconds", "elapsed_seconds"}


def history(run_dir):
    with open(os.path.join(run_dir, "history.csv"), newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIMED} for row in csv.DictReader(f)]


def pick(run_dir):
    with open(os.path.join(run_dir, "best.json")) as f:
        best = json.load(f)
    return best["architecture_str"], best["test_accuracy"]


class _Raiser:
    """Wraps a method so that its n-th call raises KeyboardInterrupt (before or after
    the real call)."""

    def __init__(self, n, after):
        self.n, self.after, self.calls = n, after, 0

    def wrap(self, method):
        def wrapped(*args, **kwargs):
            self.calls += 1
            if self.calls == self.n and not self.after:
                raise KeyboardInterrupt
            result = method(*args, **kwargs)
            if self.calls == self.n and self.after:
                raise KeyboardInterrupt
            return result

        return wrapped


def run(config, should_stop=None, resume=False):
    try:
        search.run_search(config, out=lambda line: None, resume=resume, should_stop=should_stop)
        return True
    except KeyboardInterrupt:
        return False
    finally:
        keras.backend.clear_session()


def interrupted(config, point):
    """Runs `config` until `point` raises, then resumes it; True if it was interrupted."""
    kind, n = point
    if kind == "trial":
        trials = []

        def should_stop():
            trials.append(1)
            return len(trials) == n

        finished = run(config, should_stop)
    else:
        method, after = {"learn-before": ("learn", False), "learn-after": ("learn", True),
                         "save-before": ("save", False), "save-after": ("save", True)}[kind]
        raiser = _Raiser(n, after)
        original = {}
        for cls in (strategies.ControllerStrategy, strategies.RandomStrategy):
            original[cls] = getattr(cls, method)
            setattr(cls, method, raiser.wrap(original[cls]))
        try:
            finished = run(config)
        finally:
            for cls, m in original.items():
                setattr(cls, method, m)
    if finished:
        return False
    if not run(config, resume=True):
        raise RuntimeError(f"the resume of {point} was interrupted")
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=9)
    parser.add_argument("--children_per_step", type=int, default=3)
    parser.add_argument("--strategy", default="controller")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default="trial,learn-before,learn-after,save-before,save-after")
    args = parser.parse_args()
    manager.make_deterministic()
    logdir = tempfile.mkdtemp(prefix="resume-boundaries-")
    base = dict(space="toy", strategy=args.strategy, trials=args.trials,
                children_per_step=args.children_per_step, epochs=1, train_size=200, val_size=100,
                batch_size=32, seed=args.seed, tensorboard=False, logdir=logdir)
    full = config_lib.SearchConfig(**base, run_name="full")
    assert run(full)
    reference, reference_pick = history(os.path.join(logdir, "full")), pick(os.path.join(logdir, "full"))
    steps = -(-args.trials // args.children_per_step)
    points = [("trial", k) for k in range(1, args.trials)]
    points += [(kind, n) for kind in ("learn-before", "learn-after") for n in range(1, steps + 1)]
    points += [(kind, n) for kind in ("save-before", "save-after") for n in range(1, steps + 2)]
    points = [p for p in points if p[0] in args.kinds.split(",")]
    differences = 0
    for i, point in enumerate(points):
        name = f"cut-{i}"
        config = config_lib.SearchConfig(**base, run_name=name)
        was_cut = interrupted(config, point)
        rows = history(os.path.join(logdir, name))
        bad = [j + 1 for j, (a, b) in enumerate(zip(rows, reference)) if a != b]
        if len(rows) != len(reference):
            bad.append(f"{len(rows)} rows, expected {len(reference)}")
        if pick(os.path.join(logdir, name)) != reference_pick:
            bad.append("another pick")
        differences += bool(bad)
        detail = ""
        if bad and isinstance(bad[0], int):
            row, ref = rows[bad[0] - 1], reference[bad[0] - 1]
            detail = "; ".join(f"{k}: {row[k]} vs {ref[k]}" for k in ref if row.get(k) != ref[k])
        print(f"{point[0]:>12} {point[1]:>2}: {'interrupted' if was_cut else 'not reached'}; "
              f"{'identical' if not bad else f'DIFFERS at {bad} ({detail})'}", flush=True)
    print(f"\n{len(points)} points, {differences} with differences (folder {logdir})")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
