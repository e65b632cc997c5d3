"""Fault injection: interrupt searches at random moments, resume them, compare.

  python bench/faults.py [--modes all] [--runs 1] [--cuts 3] [--seed 0] [--trials N]
                         [--faults signal,worker,disk,readonly] [--markdown FILE]

For each mode (a small search of its own, `MODES`): one uninterrupted run, then `--runs`
runs that are each interrupted `--cuts` times at random moments and resumed after every
interruption, as a user would (`python train.py --resume ...`). Faults:

  signal    SIGINT, SIGTERM or SIGKILL (drawn at random) to the search process.
  worker    SIGKILL to one of the search's Ray worker processes (modes with workers):
            the run goes on; the child it held fails, no other.
  disk      the run folder's file system fills up (a tmpfs, with a file that takes its
            space): the run stops with one line; the file goes, the run is resumed.
  readonly  the run folder becomes read-only (a read-only bind mount): the run stops
            with one line; the mount goes, the run is resumed.

After the last resume every history.csv column that does not measure time, best.json
(but its seconds), the final model's weights and the TensorBoard scalars (once per step
and tag; not the timings) must equal the uninterrupted run's; with a killed worker, the
rows before the kill must, and exactly the children the kill took are failed. `disk` and
`readonly` need to mount file systems (root); without that they are skipped, and said so.

Every moment is drawn from `--seed`, the mode and the run, and the seed that reproduces
a difference is printed beside it. `--markdown` writes the table BENCHMARKS.md quotes.
Exit status 1 when any difference is found.
"""

import argparse
import csv
import dataclasses
import io
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

TINY = ["--epochs=1", "--train_size=300", "--val_size=100", "--batch_size=32", "--final_epochs=1"]
TRAINED = ["--space=toy", "--trials=9", "--children_per_step=3"] + TINY
SHARED = TINY + [
    "--space=macro", "--num_layers=3", "--filters=4", "--evaluation=shared", "--trials=24",
    "--children_per_step=4", "--shared_steps_per_epoch=2", "--eval_batch=32",
    "--derive_candidates=6", "--reward_mode=training",
]
BENCHMARK = ["--space=nb201", "--evaluation=benchmark", "--trials=4000", "--children_per_step=8"]
# Mode name -> train.py flags (each a small search; the seed is the run's).
MODES = {
    "controller": TRAINED,
    "controller-1-worker": TRAINED + ["--workers=1"],
    "controller-2-workers": TRAINED + ["--workers=2"],
    "evolution": TRAINED + ["--strategy=evolution", "--population_size=4", "--sample_size=2"],
    "tpe": TRAINED + ["--strategy=tpe", "--tpe_startup=3"],
    "embedding": TRAINED + ["--strategy=embedding", "--embedding_pretrain=300", "--embedding_epochs=5"],
    "budget-aware": TRAINED + ["--strategy=budget_controller"],
    "memory": TRAINED + ["--strategy=memory_controller", "--memory_size=100"],
    "early-stop": ["--space=toy", "--trials=12", "--children_per_step=3", "--early_stop=median",
                   "--early_stop_after=3", "--epochs=3", "--train_size=300", "--val_size=100",
                   "--batch_size=32", "--final_epochs=1"],
    "shared": SHARED,
    "naswot": TRAINED + ["--evaluation=naswot", "--trials=12", "--proxy_batch=32"],
    "naswot-strategy": TRAINED + ["--strategy=proxy_ranking", "--proxy_candidates=30", "--proxy_batch=32"],
    "benchmark": BENCHMARK,
    "benchmark-table": BENCHMARK + ["--strategy=reinforce_table"],
}
WORKER_MODES = {name for name, flags in MODES.items() if any(f.startswith("--workers=") for f in flags)}
TIMED_COLUMNS = {"train_seconds", "seconds", "elapsed_seconds"}
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


def train(logdir, name, flags, resume=False, timeout=900):
    """A train.py process (started, not waited for)."""
    command = [sys.executable, "train.py", f"--logdir={logdir}", f"--run_name={name}"]
    command += ["--resume"] if resume else flags
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def finish(process, timeout=900):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def history(run_dir):
    path = run_dir / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIMED_COLUMNS} for row in csv.DictReader(f)]


def best(run_dir):
    with open(run_dir / "best.json") as f:
        return {k: v for k, v in json.load(f).items() if not k.endswith("seconds")}


def weights(run_dir):
    """The final model's weights ({dataset path: bytes}), from best_model.keras."""
    path = run_dir / "best_model.keras"
    if not path.exists():
        return {}
    import h5py  # pylint: disable=import-outside-toplevel

    with zipfile.ZipFile(path) as archive:
        data = archive.read("model.weights.h5")
    found = {}
    with h5py.File(io.BytesIO(data), "r") as f:
        f.visititems(lambda name, item: found.setdefault(name, item[()].tobytes())
                     if hasattr(item, "shape") else None)
    return found


def scalars(run_dir):
    """{(step, tag): [values]} of the run folder's own TensorBoard events (not timings)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader  # pylint: disable=import-outside-toplevel
    from tensorboard.util import tensor_util  # pylint: disable=import-outside-toplevel

    found = {}
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if "seconds" in value.tag:
                    continue
                number = float(tensor_util.make_ndarray(value.tensor))
                found.setdefault((event.step, value.tag), []).append(number)
    return found


def differences(run_dir, reference, rows_only=None):
    """What differs between a run folder and the uninterrupted run's (a list of words);
    `rows_only`: compare only the first rows of history.csv (a killed worker changes
    what follows)."""
    found = []
    rows, expected = history(run_dir), reference["history"]
    if rows_only is not None:
        rows, expected = rows[:rows_only], expected[:rows_only]
    elif len(rows) != len(expected):
        found.append(f"{len(rows)} history rows, expected {len(expected)}")
    for i, (row, ref) in enumerate(zip(rows, expected)):
        if row != ref:
            keys = [k for k in ref if row.get(k) != ref[k]]
            found.append(f"history row {i + 1}: " + ", ".join(f"{k} {row.get(k)} vs {ref[k]}" for k in keys[:6]))
            break
    if rows_only is not None:
        return found
    if not (run_dir / "best.json").exists():
        return found + ["no best.json"]
    got = best(run_dir)
    keys = [k for k in set(got) | set(reference["best"]) if got.get(k) != reference["best"].get(k)]
    if keys:
        found.append("best.json: " + ", ".join(f"{k} {got.get(k)!r} vs {reference['best'].get(k)!r}" for k in sorted(keys)[:4]))
    if weights(run_dir) != reference["weights"]:
        found.append("final model weights differ")
    got = scalars(run_dir)
    twice = sorted(k for k, v in got.items() if len(v) > 1)
    if twice:
        found.append(f"TensorBoard: {len(twice)} (step, tag) written twice, e.g. {twice[0]}")
    elif got != reference["scalars"]:
        keys = sorted(set(got) ^ set(reference["scalars"])) or sorted(
            k for k in got if got[k] != reference["scalars"].get(k))
        found.append(f"TensorBoard scalars differ, e.g. {keys[0]}")
    return found


def record_of(run_dir):
    return {"history": history(run_dir), "best": best(run_dir), "weights": weights(run_dir),
            "scalars": scalars(run_dir)}


def _remount_read_only(where):
    """Makes the bind mount at `where` read-only. The kernel refuses (busy) while a file
    is open for writing through the new mount, which the search may have done in the
    moment since it was made (seen once: shared mode): tried again until it takes."""
    for _ in range(200):
        done = subprocess.run(["mount", "-o", "remount,ro,bind", str(where)], capture_output=True, text=True)
        if done.returncode == 0:
            return
        time.sleep(0.01)
    raise RuntimeError(f"cannot make {where} read-only: {done.stderr.strip()}")


def can_mount():
    probe = tempfile.mkdtemp(prefix="faults-mount-")
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe],
                              capture_output=True, check=False)
        if done.returncode:
            return False
        subprocess.run(["umount", probe], check=True)
        return True
    except OSError:
        return False
    finally:
        os.rmdir(probe)


def worker_pids():
    """Processes of Ray's actors (ray::ChildWorker)."""
    import psutil  # pylint: disable=import-outside-toplevel

    found = []
    for process in psutil.process_iter(["cmdline"]):
        line = " ".join(process.info["cmdline"] or ())
        if line.startswith("ray::ChildWorker"):
            found.append(process.pid)
    return found


@dataclasses.dataclass
class Outcome:
    mode: str
    fault: str
    seed: int
    cuts: list  # What each interruption was: "SIGKILL", "worker", "disk", ..., "finished first"
    found: list  # Differences (empty: none).
    seconds: float


def tail(err):
    """What a difference report quotes of stderr: from the first traceback on, or the end."""
    start = err.find("Traceback")
    return err[start:start + 1500] if start >= 0 else err.strip()[-300:]


def one_line(err):
    """A fault's stop must be one line on stderr (TensorFlow's start-up lines aside)."""
    lines = [l for l in err.strip().splitlines() if l.strip()]
    return lines and "Traceback" not in err


def interrupted_run(mode, fault, seed, cuts, logdir, reference, reference_seconds):
    """One run of `mode` interrupted `cuts` times by `fault`, resumed after each."""
    rng = random.Random(f"{seed}-{mode}-{fault}")
    flags, name, run_dir = MODES[mode], f"{fault}-{seed}", logdir / f"{fault}-{seed}"
    started, done, found, rows_only = time.perf_counter(), [], [], None
    mount = None
    if fault == "disk":  # The run lives on a file system of its own, filled up later.
        mount = logdir / f"tmpfs-{seed}"
        mount.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(mount)], check=True)
        run_dir = mount / name
    where = run_dir.parent
    try:
        resume = False
        for _ in range(cuts):
            # A run stopped before it wrote its config.json is started again, as train.py says.
            resume = resume and (run_dir / "config.json").exists()
            process = train(where, name, flags, resume=resume)
            # A moment within what is left of the run (a resumed run has less to do), drawn
            # from the first three quarters of it: the machine's speed varies between runs,
            # and a moment after the run's end interrupts nothing.
            left = 1 - len(history(run_dir)) / max(len(reference["history"]), 1)
            time.sleep(rng.uniform(0.5, max(5.0, 0.75 * reference_seconds * left)))
            if process.poll() is not None:  # Finished (or failed) before the moment came.
                code, out, err = finish(process)
                done.append("finished first")
                if code:
                    found.append(f"exit {code} without a fault: {err.strip().splitlines()[-1:]}")
                break
            if fault == "signal":
                signum = rng.choice(SIGNALS)
                process.send_signal(signum)
                code, out, err = finish(process)
                done.append(signal.Signals(signum).name)
                if signum != signal.SIGKILL and (code != 128 + signum or not one_line(err)):
                    found.append(f"{signal.Signals(signum).name}: exit {code}, stderr {tail(err)!r}")
            elif fault == "worker":
                pids = worker_pids()
                while not pids and process.poll() is None:  # Ray still starting its worker.
                    time.sleep(0.2)
                    pids = worker_pids()
                if pids:
                    os.kill(rng.choice(pids), signal.SIGKILL)
                    done.append("worker")
                    rows_only = len(history(run_dir))  # Rows before the kill: unchanged.
                code, out, err = finish(process)
                if code:
                    found.append(f"a killed worker ended the search: exit {code}, {err.strip().splitlines()[-1:]}")
                break  # The run went on to its end.
            else:
                if fault == "disk":
                    filler = mount / "filler"
                    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True, check=False)
                else:
                    subprocess.run(["mount", "--bind", str(where), str(where)], check=True)
                    _remount_read_only(where)
                try:
                    code, out, err = finish(process)
                finally:
                    if fault == "disk":
                        filler.unlink()
                    else:
                        subprocess.run(["umount", str(where)], check=True)
                if code == 0:
                    done.append(f"{fault} (finished first)")
                    break
                done.append(fault)
                # 1: the run stopped at its last commit; 2: the folder could not be opened.
                if code not in (1, 2) or not one_line(err) or "cannot write the run folder" not in err:
                    found.append(f"{fault}: exit {code}, stderr {err.strip()[-300:]!r}")
            resume = True
        else:
            resume = (run_dir / "config.json").exists()
            code, out, err = finish(train(where, name, flags, resume=resume))
            if code:
                found.append(f"the last resume: exit {code}, {err.strip().splitlines()[-1:]}")
        if fault == "worker":
            rows = history(run_dir)
            failed = [r for r in rows if r["failed"] == "1"]
            expected_failed = done.count("worker")
            if len(rows) != len(reference["history"]):
                found.append(f"{len(rows)} history rows, expected {len(reference['history'])}")
            if len(failed) > expected_failed or any("worker process died" not in r["reason"] for r in failed):
                found.append(f"{len(failed)} failed children for {expected_failed} worker kills: "
                             f"{[r['reason'] for r in failed][:2]}")
            found += differences(run_dir, reference, rows_only=rows_only if failed else None)
        else:
            found += differences(run_dir, reference)
    finally:
        if mount is not None:
            subprocess.run(["umount", str(mount)], check=False)
    return Outcome(mode, fault, seed, done, found, time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="all", help=f"all, or some of: {', '.join(MODES)}")
    parser.add_argument("--faults", default="signal,worker,disk,readonly")
    parser.add_argument("--runs", type=int, default=1, help="interrupted runs per mode and fault")
    parser.add_argument("--cuts", type=int, default=3, help="interruptions per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", help="write the summary table here")
    parser.add_argument("--keep", action="store_true", help="keep the run folders")
    parser.add_argument("--trials", type=int, help="every mode's --trials instead of its own")
    args = parser.parse_args()
    if args.trials is not None:
        if args.trials < 1:
            parser.error(f"--trials must be >= 1, got {args.trials}")
        for mode, flags in MODES.items():
            MODES[mode] = [f for f in flags if not f.startswith("--trials=")] + [f"--trials={args.trials}"]
    modes = list(MODES) if args.modes == "all" else args.modes.split(",")
    faults = args.faults.split(",")
    unknown = [m for m in modes if m not in MODES] + [f for f in faults if f not in
                                                      ("signal", "worker", "disk", "readonly")]
    if unknown:
        parser.error(f"unknown mode or fault: {', '.join(unknown)}")
    mounting = can_mount()
    if not mounting and {"disk", "readonly"} & set(faults):
        print("disk and readonly faults skipped: this process cannot mount file systems (needs root)")
        faults = [f for f in faults if f not in ("disk", "readonly")]
    outcomes = []
    for mode in modes:
        logdir = pathlib.Path(tempfile.mkdtemp(prefix=f"faults-{mode}-"))
        started = time.perf_counter()
        code, _, err = finish(train(logdir, "reference", MODES[mode]))
        seconds = time.perf_counter() - started
        if code:
            print(f"{mode}: the uninterrupted run failed (exit {code}): {err.strip()[-500:]}")
            outcomes.append(Outcome(mode, "none", 0, [], ["the uninterrupted run failed"], seconds))
            continue
        reference = record_of(logdir / "reference")
        print(f"{mode}: uninterrupted run {seconds:.0f} s, {len(reference['history'])} trials", flush=True)
        for fault in faults:
            if fault == "worker" and mode not in WORKER_MODES:
                continue
            for run in range(args.runs):
                seed = args.seed * 1000 + run
                outcome = interrupted_run(mode, fault, seed, args.cuts, logdir, reference, seconds)
                outcomes.append(outcome)
                verdict = "identical" if not outcome.found else "DIFFERS: " + "; ".join(outcome.found)
                print(f"  {fault} seed {seed}: {', '.join(outcome.cuts) or 'no cut'} -> {verdict} "
                      f"({outcome.seconds:.0f} s)" + (
                          f"\n    reproduce: python bench/faults.py --modes={mode} --faults={fault} "
                          f"--seed={args.seed} --runs={run + 1} --cuts={args.cuts}" if outcome.found else ""),
                      flush=True)
        if not args.keep:
            shutil.rmtree(logdir, ignore_errors=True)
    table = summary(outcomes)
    print("\n" + table)
    if args.markdown:
        pathlib.Path(args.markdown).write_text(
            f"`python bench/faults.py {' '.join(sys.argv[1:])}` ({time.strftime('%Y-%m-%d')})\n\n{table}\n")
    sys.exit(1 if any(o.found for o in outcomes) else 0)


def summary(outcomes):
    lines = ["| mode | fault | runs | interruptions | of which | runs with differences |",
             "|---|---|---:|---:|---|---:|"]
    groups = {}
    for o in outcomes:
        groups.setdefault((o.mode, o.fault), []).append(o)
    total = 0
    for (mode, fault), group in groups.items():
        cuts = [c for o in group for c in o.cuts if "finished first" not in c]
        total += len(cuts)
        kinds = ", ".join(f"{cuts.count(k)} {k}" for k in dict.fromkeys(cuts)) or "-"
        lines.append(f"| {mode} | {fault} | {len(group)} | {len(cuts)} | {kinds} | "
                     f"{sum(bool(o.found) for o in group)} |")
    lines.append(f"\n{total} interruptions in {len(outcomes)} runs; "
                 f"{sum(bool(o.found) for o in outcomes)} runs with differences.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
