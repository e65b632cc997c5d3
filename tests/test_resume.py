"""Crash-safe, resumable searches: kill -9, SIGINT, SIGTERM, damaged state.

Real searches run as subprocesses of train.py, as a user would run them, and are
stopped with real signals. The runs are tiny (9 children of the toy space on 300
images), and the subprocesses that do not depend on each other run side by side.
"""

import concurrent.futures
import csv
import json
import pathlib
import re
import signal
import subprocess
import time

import pytest
from conftest import frameworks_blocked, run_script, start_script, tiny_config, tiny_flags

import run_log

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The tiny search (conftest.TINY_SEARCH) with 9 children, 3 per step, writing
# TensorBoard's events (the shared run's are read).
TINY = tiny_flags(trials=9, children_per_step=3, tensorboard=True)
COMPARED = ("trial", "step", "architecture", "val_accuracy", "reward", "baseline", "params")


def train(*args, timeout=300, env=None):
    """The finished command, as a child of the tests' fork server (conftest.run_script)."""
    return run_script(["train.py", *args], timeout=timeout, env=env)


def start(*args):
    """The command started, to stop mid-run, as a child of the fork server
    (conftest.start_script): the search process itself, which the signals reach."""
    return start_script(["train.py", *args])


def rows(run_dir):
    path = run_dir / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def wait_for_rows(process, run_dir, n, timeout=240):
    """Waits until history.csv holds at least n complete rows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(rows(run_dir)) >= n:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no {n} rows in {run_dir} after {timeout} s")


def interrupt(logdir, name, signum, after_rows):
    """Starts a search, sends `signum` once `after_rows` trials are done, returns
    (returncode, stdout, stderr)."""
    process = start(*TINY, f"--logdir={logdir}", f"--run_name={name}")
    wait_for_rows(process, logdir / name, after_rows)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run, a run killed with SIGKILL mid-step and then resumed, and
    runs stopped by SIGINT and SIGTERM (not resumed here)."""
    logdir = tmp_path_factory.mktemp("runs")
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        full = pool.submit(train, *TINY, f"--logdir={logdir}", "--run_name=full")
        sigint = pool.submit(interrupt, logdir, "sigint", signal.SIGINT, 2)

        # Kill -9 in the middle of the second step (children 4..6).
        killed = start(*TINY, f"--logdir={logdir}", "--run_name=killed")
        wait_for_rows(killed, logdir / "killed", 5)
        killed.kill()
        killed.communicate()
        rows_at_kill = len(rows(logdir / "killed"))
        resumed = train("--resume", f"--logdir={logdir}", "--run_name=killed")
        sigterm = pool.submit(interrupt, logdir, "sigterm", signal.SIGTERM, 1)
        return {
            "logdir": logdir,
            "full": full.result(),
            "killed_rows": rows_at_kill,
            "killed_returncode": killed.returncode,
            "resumed": resumed,
            "sigint": sigint.result(),
            "sigterm": sigterm.result(),
        }


def test_kill_9_then_resume_matches_an_uninterrupted_run(runs):
    logdir = runs["logdir"]
    assert runs["full"].returncode == 0, runs["full"].stderr[-2000:]
    assert runs["killed_returncode"] == -signal.SIGKILL
    assert 5 <= runs["killed_rows"] < 9  # Killed mid-run, not after the end.
    resumed = runs["resumed"]
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming {logdir / 'killed'} at trial" in resumed.stdout
    full, again = rows(logdir / "full"), rows(logdir / "killed")
    assert len(full) == len(again) == 9
    # Same architectures, in the same order, with the same accuracies and rewards.
    assert [[r[k] for k in COMPARED] for r in again] == [[r[k] for k in COMPARED] for r in full]
    best_full = json.loads((logdir / "full" / "best.json").read_text())
    best_again = json.loads((logdir / "killed" / "best.json").read_text())
    assert best_again["architecture"] == best_full["architecture"]
    assert best_again["test_accuracy"] == best_full["test_accuracy"]
    # Only the last step's controller checkpoint is kept.
    assert len(list((logdir / "killed" / "checkpoints").iterdir())) == 1


# A shared-weight search: a supernet pass every 2 steps of 4 children, rewards in
# training mode on a space with a noise op (the supernet's generators in play).
SHARED = TINY + [
    "--space=macro",
    "--num_layers=3",
    "--filters=4",
    "--poison=noise2",
    "--evaluation=shared",
    "--trials=24",
    "--children_per_step=4",
    "--shared_steps_per_epoch=2",
    "--eval_batch=32",
    "--reward_mode=training",
    "--derive_candidates=6",
    "--skip_weight=0.8",
    "--reward_entropy=0.0001",
]


@pytest.fixture(scope="module")
def shared_runs(tmp_path_factory):
    """An uninterrupted shared-weight run, and one killed with SIGKILL in its second
    supernet epoch and resumed."""
    logdir = tmp_path_factory.mktemp("shared")
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        full = pool.submit(train, *SHARED, f"--logdir={logdir}", "--run_name=full")
        killed = start(*SHARED, f"--logdir={logdir}", "--run_name=killed")
        wait_for_rows(killed, logdir / "killed", 9)  # Rows are written per step of 4.
        killed.kill()
        killed.communicate()
        rows_at_kill = len(rows(logdir / "killed"))
        resumed = train("--resume", f"--logdir={logdir}", "--run_name=killed")
        return {
            "logdir": logdir,
            "full": full.result(),
            "killed_rows": rows_at_kill,
            "resumed": resumed,
        }


def test_shared_search_killed_then_resumed_matches_an_uninterrupted_run(shared_runs):
    logdir = shared_runs["logdir"]
    assert shared_runs["full"].returncode == 0, shared_runs["full"].stderr[-2000:]
    resumed = shared_runs["resumed"]
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert 9 <= shared_runs["killed_rows"] < 24
    assert f"resuming {logdir / 'killed'} at trial" in resumed.stdout
    full, again = rows(logdir / "full"), rows(logdir / "killed")
    assert len(full) == len(again) == 24
    compared = COMPARED + ("epoch",)
    assert [[r[k] for k in compared] for r in again] == [[r[k] for k in compared] for r in full]
    assert (logdir / "killed" / "derive.csv").read_text() == (
        logdir / "full" / "derive.csv"
    ).read_text()
    best_full = json.loads((logdir / "full" / "best.json").read_text())
    best_again = json.loads((logdir / "killed" / "best.json").read_text())
    for key in ("architecture", "shared_val_accuracy", "test_accuracy", "last_quarter_poison_rate"):
        assert best_again[key] == best_full[key], key


def test_shared_search_scores_on_the_supernet_and_retrains_the_derived_pick(shared_runs):
    """The uninterrupted shared run end to end: one line per step, the epoch column,
    minibatch accuracies, derivation, the retrained pick, poison metrics."""
    proc, run_dir = shared_runs["full"], shared_runs["logdir"] / "full"
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "trial 1/" not in out  # One line per step, not per architecture.
    steps = re.findall(r"^step (\d+)/6 epoch (\d) \| trials (\d+)/24 \|.*poison rate", out, re.M)
    assert [tuple(map(int, m)) for m in steps] == [(s, (s - 1) // 2 + 1, 4 * s) for s in range(1, 7)]
    assert len(re.findall(r"^supernet epoch \d: loss ", out, re.M)) == 3
    with open(run_dir / "history.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:3] == ["trial", "step", "epoch"] and "layer2_skip1" in header
    history = rows(run_dir)
    assert [int(r["epoch"]) for r in history] == [t // 8 + 1 for t in range(24)]
    for r in history:
        accuracy = float(r["val_accuracy"])
        assert accuracy * 32 == pytest.approx(round(accuracy * 32))  # One minibatch of 32.
        assert float(r["train_seconds"]) == 0.0 and int(r["params"]) > 0 and r["cached"] == "0"
    with open(run_dir / "derive.csv", newline="") as f:
        derived = list(csv.DictReader(f))
    assert 1 <= len(derived) <= 6
    scores = [float(r["shared_val_accuracy"]) for r in derived]
    assert scores == sorted(scores, reverse=True)
    best = json.loads((run_dir / "best.json").read_text())
    assert best["architecture_str"] == derived[0]["architecture"]
    assert best["shared_val_accuracy"] == pytest.approx(scores[0], abs=1e-6)
    assert best["search_val_accuracy"] == best["shared_val_accuracy"]
    assert best["supernet_epochs"] == 3 and best["trials"] == 24
    assert best["params"] == int(derived[0]["params"])  # The retrained child is that child.
    assert 0 <= best["last_quarter_poison_rate"] <= 1
    assert best["poison_prior"] == pytest.approx(1 / 7)
    assert 0.0 <= best["test_accuracy"] <= 1.0 and (run_dir / "best_model.keras").exists()
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert checkpoints == ["step-00006", "supernet-0003"]


@pytest.mark.parametrize("name, signum", [("sigint", signal.SIGINT), ("sigterm", signal.SIGTERM)])
def test_signal_saves_state_and_prints_the_resume_command(runs, name, signum):
    returncode, out, err = runs[name]
    assert returncode == 128 + signum
    assert "Traceback" not in err
    run_dir = runs["logdir"] / name
    assert f"python train.py --resume --logdir={runs['logdir']} --run_name={name}" in err
    state = json.loads((run_dir / "state.json").read_text())
    history = rows(run_dir)
    assert state["phase"] == "search"
    assert state["trial"] == len(history) >= 1
    assert [r["trial"] for r in history] == [str(i + 1) for i in range(len(history))]


def test_resume_after_sigint_finishes_and_then_does_nothing(runs, tmp_path):
    logdir = runs["logdir"]
    done = train("--resume", f"--logdir={logdir}", "--run_name=sigint")
    assert done.returncode == 0, done.stderr[-2000:]
    history = rows(logdir / "sigint")
    assert len(history) == 9
    assert [r[k] for r in history for k in COMPARED] == [
        r[k] for r in rows(logdir / "full") for k in COMPARED
    ]
    # The search clock goes on from where the first process stopped.
    elapsed = [float(r["elapsed_seconds"]) for r in history]
    assert elapsed == sorted(elapsed)
    best = json.loads((logdir / "sigint" / "best.json").read_text())
    assert elapsed[-1] <= best["search_seconds"]
    before = (logdir / "sigint" / "history.csv").read_bytes()
    # Said before any framework is imported (a second, not TensorFlow's start-up).
    again = train("--resume", f"--logdir={logdir}", "--run_name=sigint",
                  env=frameworks_blocked(tmp_path / "no-frameworks"))
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout == f"run {logdir / 'sigint'} is already finished; nothing to do\n"
    assert (logdir / "sigint" / "history.csv").read_bytes() == before


def _truncate(paths):
    assert paths, "no file to damage"  # The damage must happen, or the test proves nothing.
    for path in paths:
        path.write_bytes(b"truncated")


def _copy_run(runs, name):
    source = runs["logdir"] / "sigterm"
    target = runs["logdir"] / name
    subprocess.run(["cp", "-r", str(source), str(target)], check=True)
    return target


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "state.json").write_text((d / "state.json").read_text()[:80]), "damaged"),
        (lambda d: (d / "state.json").write_text("not json"), "damaged"),
        (lambda d: (d / "state.json").write_text('{"version": 99}'), "damaged"),
        (lambda d: (d / "state.json").write_text('{"version": 1}'), "earlier version"),
        (lambda d: (d / "trials.jsonl").write_text(""), "damaged"),
        (lambda d: (d / "state.json").unlink(), "no run state"),
        (lambda d: (d / "config.json").write_text("{"), "config.json"),
        (
            lambda d: [
                p.write_text(p.read_text().replace('"lstm_units": 64', '"lstm_units": 32'))
                for p in d.glob("checkpoints/*/controller.json")
            ],
            "controller checkpoint",
        ),
        (
            lambda d: _truncate(list(d.glob("checkpoints/*/controller.weights.npz"))),
            "controller checkpoint",
        ),
    ],
    ids=[
        "truncated", "not-json", "other-version", "version-1", "trials-log", "missing", "config",
        "sizes", "weights",
    ],
)
def test_damaged_or_mismatched_checkpoint_is_one_clear_error(
    runs, damage, message, request, tmp_path
):
    run_dir = _copy_run(runs, "damaged-" + request.node.callspec.id)
    damage(run_dir)
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    # The run folder's own files are read before any framework is imported (run_state.py);
    # the controller's checkpoint only by the controller.
    early = message != "controller checkpoint"
    env = frameworks_blocked(tmp_path / "no-frameworks") if early else None
    proc = train("--resume", f"--logdir={runs['logdir']}", f"--run_name={run_dir.name}", env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error:"), proc.stderr
    assert message in lines[0]
    after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert after == before  # Nothing was overwritten.


def test_resume_with_another_space_is_refused(runs, tmp_path):
    env = frameworks_blocked(tmp_path / "no-frameworks")  # Refused before any is imported.
    proc = train(
        "--resume", "--space=macro", f"--logdir={runs['logdir']}", "--run_name=sigterm", env=env
    )
    assert proc.returncode == 2
    assert "cannot resume" in proc.stderr and "--space=macro" in proc.stderr


def test_new_run_into_a_used_folder_is_refused(runs, tmp_path):
    env = frameworks_blocked(tmp_path / "no-frameworks")  # Refused before any is imported.
    proc = train(*TINY, f"--logdir={runs['logdir']}", "--run_name=full", env=env)
    assert proc.returncode == 2
    assert "already holds a run" in proc.stderr and "--resume" in proc.stderr


def test_truncate_csv_drops_rows_past_the_state_and_cut_rows(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("trial,x\n1,a\n2,b\n3,c\n4,partial")
    run_log._truncate_csv(str(path), 2)
    assert path.read_text() == "trial,x\n1,a\n2,b\n"
    path.write_text("trial,x\n1,a\n2,b")  # The state's last row was cut by a crash.
    run_log._truncate_csv(str(path), 2)
    assert path.read_text() == "trial,x\n1,a\n"


def test_nothing_is_read_back_with_pickle():
    for name in ("controller.py", "manager.py", "search.py", "run_log.py", "data.py", "train.py"):
        source = (ROOT / name).read_text()
        assert "import pickle" not in source and "allow_pickle=True" not in source, name
        for line in source.splitlines():
            if "np.load(" in line or "numpy.load(" in line:
                assert "allow_pickle=False" in line, (name, line)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_from_another_thread_waits_for_the_end_of_a_deferred_block(signum):
    # Signals sent to the process may land on any thread (TensorFlow runs many);
    # the handler must still not run inside the block.
    import os
    import threading

    calls = []
    previous = signal.signal(signum, lambda s, _frame: calls.append(s))
    try:
        with run_log.deferred_signals():
            sender = threading.Thread(target=os.kill, args=(os.getpid(), signum))
            sender.start()
            sender.join()
            for _ in range(100_000):  # Bytecodes at which CPython would run a handler.
                pass
            time.sleep(0.05)
            inside = list(calls)
        assert inside == []
        assert calls == [signum]
    finally:
        signal.signal(signum, previous)


def test_a_second_process_cannot_write_into_a_run_in_progress(runs, tmp_path):
    import shutil

    import run_state

    run_dir = tmp_path / "sigterm"
    shutil.copytree(runs["logdir"] / "sigterm", run_dir)
    before = (run_dir / "history.csv").read_text()
    lock = run_state.lock(str(run_dir))
    try:  # Refused before any framework is imported.
        proc = train("--resume", f"--logdir={tmp_path}", "--run_name=sigterm",
                     env=frameworks_blocked(tmp_path / "no-frameworks"))
    finally:
        lock.close()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"train.py: error: run folder {run_dir} is in use by another search process; "
        "wait for it to stop (or stop it) before resuming"
    )
    assert (run_dir / "history.csv").read_text() == before


def test_an_interrupt_swallowed_by_python_still_stops_the_search_after_the_trial(tmp_path):
    # A KeyboardInterrupt raised inside a weakref callback or __del__ is printed and
    # dropped by Python; should_stop (train.py: "a signal was received") catches it.
    import search

    config = tiny_config(tmp_path, "stop", trials=6, train_size=100, val_size=50, batch_size=50)
    calls = []
    with pytest.raises(KeyboardInterrupt):
        search.run_search(
            config,
            out=calls.append,
            should_stop=lambda: sum(c.startswith("trial ") for c in calls) >= 3,
        )
    trials = [line for line in calls if line.startswith("trial ")]
    assert len(trials) == 3  # Stopped right after the third trial, mid-step.
    state = json.loads((tmp_path / "stop" / "state.json").read_text())
    assert state["trial"] == 3 == len(rows(tmp_path / "stop"))


def test_shared_search_writes_supernet_scalars_per_epoch_to_tensorboard(shared_runs):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    steps = {}
    for path in (shared_runs["logdir"] / "full").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    for tag in ("supernet/loss", "supernet/accuracy", "supernet/learning_rate"):
        assert steps[tag] == [0, 2, 4], tag  # One per epoch, at the step it preceded.
    assert steps["accuracy/mean"] == list(range(6)) and steps["poison/rate"] == list(range(6))
    assert steps["controller/skip_rate"] == list(range(6))


# ---------------------------------------------------------------- the first commit
# In process, on the NAS-Bench-201 table (no training): the start of a run is the same
# code in every mode. bench/resume_boundaries.py found the defect: a run stopped inside
# its first commit (config.json written, state.json not yet) could be neither resumed
# ("no run state") nor started again ("already holds a run").


def _table_run(logdir, name):
    import config as config_lib  # pylint: disable=import-outside-toplevel

    return config_lib.SearchConfig(
        space="nb201", evaluation="benchmark", strategy="controller", trials=40,
        children_per_step=8, seed=3, tensorboard=False, logdir=str(logdir), run_name=name,
    )


def _untimed(run_dir):
    timed = {"train_seconds", "seconds", "elapsed_seconds"}
    return [{k: v for k, v in r.items() if k not in timed} for r in rows(run_dir)]


def test_a_run_stopped_inside_its_first_commit_is_started_again_by_resume(tmp_path, monkeypatch):
    import search  # pylint: disable=import-outside-toplevel
    import strategies  # pylint: disable=import-outside-toplevel

    search.run_search(_table_run(tmp_path, "full"), out=lambda line: None)
    original = strategies.ControllerStrategy.save

    def killed(self, directory):  # A SIGKILL while the first checkpoint is written.
        raise KeyboardInterrupt

    monkeypatch.setattr(strategies.ControllerStrategy, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        search.run_search(_table_run(tmp_path, "cut"), out=lambda line: None)
    monkeypatch.setattr(strategies.ControllerStrategy, "save", original)
    cut = tmp_path / "cut"
    assert (cut / "config.json").exists() and not (cut / "state.json").exists()
    lines = []
    best = search.run_search(_table_run(tmp_path, "cut"), out=lines.append, resume=True)
    assert any("stopped before its first commit; starting it from the beginning" in l for l in lines)
    assert _untimed(cut) == _untimed(tmp_path / "full") and len(rows(cut)) == 40
    assert best["nb201_string"] == json.loads((tmp_path / "full" / "best.json").read_text())["nb201_string"]


def test_a_folder_holding_only_the_lock_of_a_stopped_start_counts_as_empty(tmp_path):
    import search  # pylint: disable=import-outside-toplevel

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / search.LOCK_FILE).touch()
    best = search.run_search(_table_run(tmp_path, "run"), out=lambda line: None)
    assert best["trials"] == 40


# ---------------------------------------------------------------- renamed settings


def test_a_run_folder_made_before_the_renames_resumes_with_the_old_names(tmp_path):
    """A run started as `--strategy=naswot --naswot_candidates=8 --naswot_batch=16`
    (before config.RENAMED_VALUES and RENAMED_FLAGS): its config.json holds the old
    names and its folder the old default name, toy-naswot-seed0. The same command with
    --resume finds that folder and finishes the run: the top of its ranking trained."""
    import search  # pylint: disable=import-outside-toplevel

    settings = dict(strategy="proxy_ranking", proxy_candidates=8, proxy_batch=16)
    config = tiny_config(tmp_path, **settings)
    lines = []
    with pytest.raises(KeyboardInterrupt):
        search.run_search(config, out=lines.append,
                          should_stop=lambda: sum(l.startswith("trial ") for l in lines) >= 2)
    old = tmp_path / "toy-naswot-seed0"
    (tmp_path / "toy-proxy_ranking-seed0").rename(old)
    saved = json.loads((old / "config.json").read_text())
    saved.update(strategy="naswot", run_name=old.name)
    saved["naswot_candidates"] = saved.pop("proxy_candidates")
    saved["naswot_batch"] = saved.pop("proxy_batch")
    (old / "config.json").write_text(json.dumps(saved))
    assert len(rows(old)) == 2
    command = tiny_flags(strategy="naswot", naswot_candidates=8, naswot_batch=16)
    proc = train(*command, "--resume", f"--logdir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (tmp_path / "toy-proxy_ranking-seed0").exists()
    with open(old / "naswot.csv", newline="") as f:
        ranking = [r["architecture"] for r in csv.DictReader(f)]
    assert [r["architecture"] for r in rows(old)] == ranking[:4]
    assert json.loads((old / "state.json").read_text())["phase"] == "finished"
