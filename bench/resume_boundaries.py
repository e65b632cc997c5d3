"""Interrupts a tiny search at every boundary of its loop, resumes it, compares.

  python bench/resume_boundaries.py [--signals SIGINT,SIGKILL] [--trials 4] [--children_per_step 2]
                             [--every 1] [--markdown FILE]

Random moments (bench/faults.py) rarely land on the few microseconds between two writes;
this sweep lands on each of them. A boundary is the entry or the exit of one of the
loop's functions (`BOUNDARIES`: a child's training, the step's rewards, a result's
accounting, a history row, a failure file, the strategy's proposal and learning, a
TensorBoard step, a sync, a commit). One run of a tiny trained-children search counts
them; then, for each boundary k and each signal, the search is started again with the
signal sent to itself at boundary k (`os.kill`: a SIGINT is handled at the next
bytecode, as a real one would be, and held back inside the loop's commit blocks as a
real one is), resumed with `train.py --resume`, and compared with the uninterrupted run
by bench/faults.py's comparison (history.csv but its timings, best.json but its
seconds, the final model's weights, the TensorBoard scalars).

The search runs in the command's own process (the crash guard's split is skipped:
`NAS_SEARCH_PROCESS=1`) so the hook sees the loop. Exit status 1 when any difference is
found; each is printed with the boundary that reproduces it.

An earlier version of this script (until commit 1acffec) raised KeyboardInterrupt in the
search's own process at 5 kinds of points (after a trial, around `learn` and `save`);
bench/results/resume_boundaries.md keeps what both found.
"""

import argparse
import functools
import json
import os
import pathlib
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import faults  # noqa: E402  (bench/faults.py: the comparison)

# (module, class, method): each call is two boundaries, its entry and its exit.
BOUNDARIES = (
    ("manager", "NetworkManager", "get_rewards"),
    ("manager", "NetworkManager", "_train_and_measure"),
    ("search", "_Run", "count"),
    ("search", "_Run", "save"),
    ("search", "_Run", "save_checkpoint"),
    ("run_log", "RunLog", "write_trial"),
    ("run_log", "RunLog", "write_failure"),
    ("run_log", "RunLog", "write_scalars"),
    ("run_log", "RunLog", "sync"),
    ("strategies", "ControllerStrategy", "propose"),
    ("strategies", "ControllerStrategy", "learn"),
)
EXIT_STATUS = {"SIGINT": 130, "SIGTERM": 143, "SIGKILL": -9}
HOOK = "NAS_BOUNDARY_HOOK"  # "count:FILE" or "K:SIGNAL" in the hooked process.


def _install(spec):
    """Wraps every boundary; at the k-th one sends the signal (or counts them all)."""
    import importlib  # pylint: disable=import-outside-toplevel

    mode, _, arg = spec.partition(":")
    seen = []

    def boundary(name):
        seen.append(name)
        if mode != "count" and len(seen) == int(mode):
            os.kill(os.getpid(), getattr(signal, arg))

    for module_name, class_name, method in BOUNDARIES:
        cls = getattr(importlib.import_module(module_name), class_name)
        original = getattr(cls, method)

        @functools.wraps(original)
        def wrapped(*args, __original=original, __name=f"{class_name}.{method}", **kwargs):
            boundary(f"enter {__name}")
            value = __original(*args, **kwargs)
            boundary(f"exit {__name}")
            return value

        setattr(cls, method, wrapped)
    if mode == "count":
        import atexit  # pylint: disable=import-outside-toplevel

        atexit.register(lambda: pathlib.Path(arg).write_text(json.dumps(seen)))


def hooked_main():
    """Runs train.py in this process with the boundaries wrapped (`HOOK` in the env)."""
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    _install(os.environ[HOOK])
    sys.argv = ["train.py"] + sys.argv[2:]
    runpy.run_path(str(ROOT / "train.py"), run_name="__main__")


def run(logdir, name, flags, hook=None, resume=False):
    command = [sys.executable, "train.py", f"--logdir={logdir}", f"--run_name={name}"]
    command += ["--resume"] if resume else flags
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if hook is not None:
        command = [sys.executable, __file__, "--hooked"] + command[2:]
        env.update({HOOK: hook, "NAS_SEARCH_PROCESS": "1"})
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    return done.returncode, done.stdout, done.stderr


def main():
    if sys.argv[1:2] == ["--hooked"]:
        return hooked_main()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--signals", default="SIGINT,SIGKILL")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--children_per_step", type=int, default=2)
    parser.add_argument("--every", type=int, default=1, help="every n-th boundary only")
    parser.add_argument("--markdown", help="write the summary table here")
    args = parser.parse_args()
    flags = ["--space=toy", f"--trials={args.trials}", f"--children_per_step={args.children_per_step}"]
    flags += faults.TINY + ["--seed=5"]
    signals = args.signals.split(",")
    logdir = pathlib.Path(tempfile.mkdtemp(prefix="boundaries-"))
    started = time.perf_counter()
    try:
        count_file = logdir / "boundaries.json"
        code, _, err = run(logdir, "full", flags, hook=f"count:{count_file}")
        if code != 0:
            sys.exit(f"the uninterrupted run failed ({code}): {err[-1500:]}")
        names = json.loads(count_file.read_text())
        reference = faults.record_of(logdir / "full")
        print(f"{' '.join(flags)}: {len(names)} boundaries ({time.perf_counter() - started:.0f} s)",
              flush=True)
        rows, differing = [], 0
        for k in range(1, len(names) + 1, args.every):
            for signame in signals:
                name = f"b{k}-{signame}"
                code, _, err = run(logdir, name, flags, hook=f"{k}:{signame}")
                stopped, found = code, []
                expected = EXIT_STATUS[signame]
                if code != expected:
                    found.append(f"exit {code} after {signame}, expected {expected}: {faults.tail(err)}")
                elif signame != "SIGKILL" and not faults.one_line(err):
                    found.append(f"the stop is not one line: {faults.tail(err)}")
                code, _, err = run(logdir, name, flags, resume=True)
                found += ([f"resume exit {code}: {faults.tail(err)}"] if code != 0
                          else faults.differences(logdir / name, reference))
                differing += bool(found)
                rows.append((k, names[k - 1], signame, stopped, found))
                print(f"  {k:3d} {names[k - 1]:<40} {signame:<7} exit {stopped:4d} -> "
                      + ("DIFFERS: " + "; ".join(found) if found else "identical"), flush=True)
                shutil.rmtree(logdir / name, ignore_errors=True)
        cases = len(rows)
        summary = (f"{cases} interruptions at {len(range(1, len(names) + 1, args.every))} of "
                   f"{len(names)} boundaries x {len(signals)} signals "
                   f"({', '.join(signals)}); {differing} with differences; "
                   f"{time.perf_counter() - started:.0f} s")
        print(summary)
        if args.markdown:
            lines = ["| boundary | where | " + " | ".join(signals) + " |",
                     "|---:|---|" + "---|" * len(signals)]
            by_k = {}
            for k, where, signame, stopped, found in rows:
                by_k.setdefault((k, where), {})[signame] = (
                    f"exit {stopped}: " + ("**differs**" if found else "identical"))
            for (k, where), cells in by_k.items():
                lines.append(f"| {k} | {where} | " + " | ".join(cells.get(s, "") for s in signals) + " |")
            pathlib.Path(args.markdown).write_text("\n".join(lines + ["", summary, ""]))
        return 1 if differing else 0
    finally:
        shutil.rmtree(logdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
