"""Children in worker processes (workers.py): same history with 0, 1 or 2 workers,
workers that die, recycling, signals and resume, Ray that cannot be reached. The
PyTorch and JAX backends, in and out of workers: tests/test_backends.py.

The in-process searches share one local Ray (`ray_cluster`, started once for the
module); the train.py subprocesses start their own, as a user's search does.
"""

import csv
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from conftest import tiny_config, tiny_flags

import data
import poisoning
import search
import state_space
import workers

ROOT = Path(__file__).resolve().parents[1]
COMPARED = ("trial", "step", "architecture", "val_accuracy", "reward", "baseline", "params")
# The tiny search (conftest.TINY_SEARCH) with 9 children, 3 per step; no final retraining
# (it runs in the search process, with or without workers).
NINE = dict(trials=9, children_per_step=3, final_epochs=0)


@pytest.fixture(scope="module")
def ray_cluster():
    started = workers.start_ray(num_cpus=2)
    yield
    if started:
        workers.stop_ray()


def rows(run_dir):
    with open(Path(run_dir) / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def compared(run_dir):
    return [[r[k] for k in COMPARED] for r in rows(run_dir)]


def search_in_process(tmp_path, name, **settings):
    config = tiny_config(tmp_path, name, **{**NINE, **settings})
    lines = []
    summary = search.run_search(config, out=lines.append)
    return summary, lines


@pytest.fixture(scope="module")
def one_worker(ray_cluster, tmp_path_factory):
    """The reference: the tiny search with one worker, replaced after 5 children
    (9 children: 2 processes), which the search process must equal too."""
    logdir = tmp_path_factory.mktemp("one-worker")
    summary, lines = search_in_process(logdir, "w1", workers=1, worker_children=5)
    return logdir / "w1", summary, lines


def test_one_and_two_workers_give_the_same_history(one_worker, tmp_path):
    reference, reference_summary, lines = one_worker
    assert any("children in 1 worker process" in line for line in lines)
    assert lines[-1] == "worker processes: 2 started, 0 died"
    summary, lines = search_in_process(tmp_path, "w2", workers=2)
    assert any("children in 2 worker processes" in line for line in lines)
    assert lines[-1] == "worker processes: 2 started, 0 died"
    assert compared(tmp_path / "w2") == compared(reference)
    assert len(rows(reference)) == 9
    assert summary["architecture"] == reference_summary["architecture"]
    assert summary["search_val_accuracy"] == reference_summary["search_val_accuracy"]
    assert workers._ray().is_initialized()  # Started by the tests: left up for the next.


def test_the_search_process_trains_children_as_a_worker_does(one_worker, tmp_path):
    """TensorFlow: the same children, rewards and pick in the search process as in a
    worker (both deterministic kernels: conftest, as train.py and every worker)."""
    reference, reference_summary, _ = one_worker
    summary, lines = search_in_process(tmp_path, "w0", workers=0)
    assert not any("worker process" in line for line in lines)
    assert compared(tmp_path / "w0") == compared(reference)
    assert summary["architecture"] == reference_summary["architecture"]
    assert summary["search_val_accuracy"] == reference_summary["search_val_accuracy"]


def test_naswot_scoring_in_workers_ranks_as_in_process(ray_cluster, tmp_path):
    flags = dict(strategy="proxy_ranking", proxy_candidates=8, proxy_batch=64, trials=2)
    search_in_process(tmp_path, "w1", workers=1, **flags)
    with open(tmp_path / "w1" / "naswot.csv", newline="") as f:
        ranked = list(csv.DictReader(f))
    assert len(ranked) == 8
    # The same candidates scored here, in the test's process, give the same scores.
    config = tiny_config(tmp_path, **{**NINE, **flags}).resolved()
    space, template = poisoning.make_space(config)
    dataset = data.load_dataset(
        config.dataset, train_size=config.train_size, val_size=config.val_size, seed=config.seed
    )
    m = search.make_manager(config, dataset, space, template)
    # The two trained children are the top two candidates; history.csv has their decisions.
    trained = rows(tmp_path / "w1")
    assert [r["architecture"] for r in trained] == [r["architecture"] for r in ranked[:2]]
    for row in trained:
        architecture = tuple(int(row[d.key]) for d in space.decisions)
        assert float(row["naswot_score"]) == pytest.approx(m.scorer.score(architecture).score, abs=1e-3)


def _child_processes():
    """Worker processes of this test process's Ray busy with a child (Ray titles them
    ray::ChildWorker.run); not those of searches running beside the tests."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "ray::ChildWorker.run" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:
            pass
    return found


def _kill_first_busy_worker(killed, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not killed:
        for p in _child_processes():
            try:
                p.kill()
                killed.append(p.pid)
                return
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.01)


def test_a_worker_killed_mid_child_fails_that_child_and_the_search_goes_on(
    ray_cluster, tmp_path
):
    killed = []
    killer = threading.Thread(target=_kill_first_busy_worker, args=(killed,))
    killer.start()
    # Children that train for a while, so that the kill lands inside one.
    summary, lines = search_in_process(tmp_path, "killed", workers=1, epochs=3, trials=3,
                                       final_epochs=1)
    killer.join()
    assert killed, "no busy worker was found to kill"
    history = rows(tmp_path / "killed")
    assert len(history) == 3  # The search went on to the end.
    failed = [r for r in history if r["failed"] == "1"]
    assert len(failed) == 1
    assert "worker process died while training this child" in failed[0]["reason"]
    assert any(r["failed"] == "0" and float(r["val_accuracy"]) > 0 for r in history)
    assert summary["trials"] == 3 and (tmp_path / "killed" / "best_model.keras").exists()
    assert any("FAILED (worker process died" in line for line in lines)


def test_a_pool_asking_for_more_than_the_cluster_has_is_one_clear_error(ray_cluster, tiny_dataset):
    with pytest.raises(workers.WorkerError, match="--gpus_per_child=1, but the Ray cluster has 0 GPUs"):
        workers.WorkerPool({}, tiny_dataset, 1, gpus_per_child=1)


def test_a_worker_that_cannot_start_says_why(ray_cluster, tiny_dataset):
    space = state_space.toy_space(2)
    pool = workers.WorkerPool({"space": space, "template": "nope"}, tiny_dataset, 1)
    try:
        (result,) = pool.map([("evaluate", space.sample(np.random.default_rng(0)), 0)])
    finally:
        pool.close()
    assert isinstance(result, workers.WorkerDied)
    assert result.reason.startswith("worker process could not start: ValueError: unknown template")


def train(*args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_sigterm_stops_the_workers_and_resume_with_another_count_continues_exactly(
    one_worker, tmp_path
):
    reference = one_worker[0]
    process = subprocess.Popen(
        [sys.executable, "train.py", *tiny_flags(**NINE), "--workers=2", f"--logdir={tmp_path}",
         "--run_name=w2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_dir = tmp_path / "w2"
    deadline = time.monotonic() + 240
    while not (run_dir / "history.csv").exists() or len(rows(run_dir)) < 2:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    family = psutil.Process(process.pid).children(recursive=True)
    assert any("ChildWorker" in " ".join(p.cmdline()) for p in family)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "interrupted by SIGTERM" in err and "--resume" in err
    gone, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, [p.cmdline() for p in alive]  # Ray and its workers ended too.
    # Resumed here, on the module's Ray (a train.py resume would start its own).
    config = dataclasses.replace(search.read_config(run_dir), logdir=str(tmp_path), workers=1)
    lines = []
    search.run_search(config, out=lines.append, resume=True)
    assert any("children in 1 worker process" in line for line in lines)
    assert compared(run_dir) == compared(reference)


def test_an_unreachable_ray_address_is_one_line_exit_2_and_no_run_folder(tmp_path):
    done = train(
        *tiny_flags(**NINE), "--workers=1", "--ray_address=127.0.0.1:1", f"--logdir={tmp_path}"
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "cannot reach a Ray cluster at 127.0.0.1:1" in lines[0]
    assert not any(tmp_path.iterdir())


def test_a_budget_keeps_children_over_it_out_of_the_workers(ray_cluster, tmp_path):
    """--max_cost with workers: the costs are measured in the search process, and only the
    children within the budget go to a worker to be trained (the pool's own path)."""
    summary, lines = search_in_process(tmp_path, "budget", workers=1, max_cost="params:6000",
                                       strategy="random", seed=1)
    assert any("children in 1 worker process" in line for line in lines)
    history = rows(tmp_path / "budget")
    assert {r["feasible"] for r in history} == {"0", "1"}, [r["cost_params"] for r in history]
    for r in history:
        over = float(r["cost_params"]) > 6000
        assert r["feasible"] == str(int(not over))
        assert (float(r["train_seconds"]) == 0.0) == over  # Trained in the worker, or not at all.
    assert summary["costs"]["params"] <= 6000
