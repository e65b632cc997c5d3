"""Shared test setup: the repository root on sys.path, quiet TensorFlow, seeds, tiny data,
the tiny search (TINY_SEARCH, tiny_config, tiny_flags), the background pool that runs
the suite's slow subprocesses beside the other tests, and `run_script`, which runs a
command (`python train.py ...`) as a child of a fork server that has imported TensorFlow
already (tests/zygote.py).

Background subprocesses: a test module that defines `background_jobs(folder)` (a dict
name -> function of no arguments) gets those functions started on one shared pool of
`BACKGROUND_PROCESSES` threads as soon as the suite is collected, and reads their
results with `start_background(module)`. Each job is a subprocess (train.py, or a
check on another backend) that pays TensorFlow's, PyTorch's or JAX's start-up: in the
background they use the cores the in-process tests leave idle. `make test` runs the
in-process tests in two pytest-xdist workers; the jobs then run in worker gw0 and reach
the other through files (start_background).
"""

import collections.abc
import concurrent.futures
import json
import os
import pathlib
import pickle
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parent.parent
# The subprocesses the tests start (and Ray's workers) see no JAX: tests/without_jax/jax.
# pytest-xdist's workers inherit that too; they take it off their own path here.
_WITHOUT_JAX = str(ROOT / "tests" / "without_jax")
if _WITHOUT_JAX not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (_WITHOUT_JAX, os.environ.get("PYTHONPATH")) if p
    )
sys.path[:] = [p for p in sys.path if p != _WITHOUT_JAX]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import config as config_lib  # noqa: E402  (pure Python: no TensorFlow)
import data  # noqa: E402
import run_log  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _deterministic_kernels():
    """TensorFlow's kernels deterministic for the whole session, as in every search
    process and worker (manager.make_deterministic; train.py calls it before a search),
    so an in-process search here computes what the command line's does, whatever
    order the modules run in."""
    import manager  # pylint: disable=import-outside-toplevel  (Keras: after the env is set)

    manager.make_deterministic()


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global seeds."""
    random.seed(0)
    np.random.seed(0)


@pytest.fixture
def tiny_dataset():
    """A small, learnable dataset: 8x8 images whose class is the bright quadrant."""
    rng = np.random.default_rng(0)

    def make(n):
        y = rng.integers(0, 4, size=n).astype("int32")
        x = rng.uniform(0, 0.2, size=(n, 8, 8, 1)).astype("float32")
        for i, label in enumerate(y):
            r, c = divmod(int(label), 2)
            x[i, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4, 0] += 0.8
        return x, y

    x_train, y_train = make(96)
    x_val, y_val = make(32)
    x_test, y_test = make(32)
    return data.Dataset("tiny", x_train, y_train, x_val, y_val, x_test, y_test, num_classes=4)


# The tiny search of the tests: 4 children of the toy space (2 per step: 2 steps), each
# trained 1 epoch on 300 mnist5k images and scored on 100, no TensorBoard events. A
# batch of 32 (10 steps per epoch) lets the children learn a little, so the rewards are
# not all zero and the controller's updates matter. A test that depends on other
# values says which: tiny_config(..., trials=9), tiny_flags(tensorboard=True).
TINY_SEARCH = dict(
    trials=4,
    children_per_step=2,
    epochs=1,
    train_size=300,
    val_size=100,
    batch_size=32,
    tensorboard=False,
)

# Every built-in strategy that searches a table, with the settings a run of a few dozen
# queries needs (tests/test_nb201.py, tests/test_hardware.py).
TABLE_STRATEGIES = {
    "controller": {},
    "random": {},
    "evolution": {"population_size": 10, "sample_size": 3},
    "tpe": {},
    "budget_controller": {},
    "memory_controller": {},
    "embedding": {"embedding_pretrain": 200, "embedding_epochs": 5},
    "reinforce_table": {},
}


def tiny_config(logdir, run_name=None, **changes):
    """The tiny search in `logdir` as a SearchConfig, with `changes` (any settings) on
    top; run_name None: the default name (<space>-<strategy>-seed<seed>)."""
    settings = {**TINY_SEARCH, "logdir": str(logdir), "run_name": run_name, **changes}
    return config_lib.SearchConfig(**settings)


def tiny_flags(**changes):
    """The tiny search as train.py (or assess.py) flags, `--name=value`, with `changes`
    on top (booleans as --name=true / --name=false)."""
    settings = {**TINY_SEARCH, **changes}
    return [f"--{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items()]


FRAMEWORKS = ("tensorflow", "keras", "torch", "jax", "ray")


def frameworks_blocked(folder):
    """An environment in which importing any of FRAMEWORKS raises ImportError (packages
    of those names first on PYTHONPATH; a process train.py starts inherits it)."""
    for name in FRAMEWORKS:
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(
            f"raise ImportError('{name} was imported, but this command line was to be "
            f"refused before any framework')\n"
        )
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


class _Zygote:
    """The client of tests/zygote.py, the fork server: one per test process, started at
    its first command. `run` sends a command and waits for its child."""

    def __init__(self):
        self.env = dict(os.environ)
        # TensorFlow's C++ log at train.py's own default: an absl app started after
        # TensorFlow's import (in a child) brings up its CUDA platform, whose failed cuInit
        # it logs as an error; a fresh process logs it inside train.py's quiet start-up.
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "zygote.py")], cwd=ROOT,
            env={**self.env, "TF_CPP_MIN_LOG_LEVEL": "3"},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        ready = json.loads(self.process.stdout.readline() or "{}")
        if ready.get("ready") is not True:
            raise RuntimeError("tests/zygote.py did not start")
        # What importing TensorFlow sets in a process's environment (TF2_BEHAVIOR, ...): a
        # fresh process would set the same itself.
        self.added = {k: v for k, v in ready["env"].items() if k not in self.env}
        self.lock, self.next_id, self.waiting = threading.Lock(), 0, {}
        threading.Thread(target=self._read, daemon=True).start()

    def serves(self, env):
        """Whether a command in `env` would start as the server's children do."""
        for key in (set(env) | set(self.env)) - {"TF_CPP_MIN_LOG_LEVEL"}:
            if key in self.added:
                if env.get(key) not in (None, self.added[key]):
                    return False
            elif env.get(key) != self.env.get(key):
                return False
        return True

    def _read(self):
        for line in self.process.stdout:
            message = json.loads(line)
            with self.lock:
                slot = self.waiting.setdefault(message["id"], {"event": threading.Event()})
            slot.update(message)
            if "status" in message:
                slot["event"].set()
        with self.lock:  # The server is gone: no command waits for it any longer.
            self.dead = True
            for slot in self.waiting.values():
                slot.setdefault("status", None)
                slot["event"].set()

    dead = False

    def start(self, argv, cwd):
        """The command started as the server's child: a `_Started` (its pid once the
        server has forked it)."""
        folder = tempfile.mkdtemp(prefix="zygote-")
        with self.lock:
            self.next_id += 1
            request_id = self.next_id
            slot = self.waiting.setdefault(request_id, {"event": threading.Event()})
            started = _Started(self, request_id, slot, list(argv), folder)
            self.process.stdin.write(json.dumps(
                {"id": request_id, "argv": argv, "cwd": str(cwd), "stdout": started.out,
                 "stderr": started.err}
            ) + "\n")
            self.process.stdin.flush()
        return started

    def run(self, argv, cwd, timeout):
        started = self.start(argv, cwd)
        try:
            stdout, stderr = started.communicate(timeout)
        except subprocess.TimeoutExpired:
            started.kill()
            stdout, stderr = started.communicate(30)
            raise subprocess.TimeoutExpired(argv, timeout, stdout, stderr) from None
        return subprocess.CompletedProcess([sys.executable, *argv], started.returncode, stdout, stderr)


class _Started:
    """A command the fork server runs, with what the tests use of subprocess.Popen's
    (text mode, both streams captured): pid, poll, send_signal, kill, communicate,
    returncode (-N when signal N ended it)."""

    def __init__(self, client, request_id, slot, argv, folder):
        self.client, self.request_id, self.slot, self.argv = client, request_id, slot, argv
        self.folder = folder
        self.out, self.err = os.path.join(folder, "stdout"), os.path.join(folder, "stderr")
        self.returncode = None
        self._streams = None

    @property
    def pid(self):
        while "pid" not in self.slot and not self.slot["event"].is_set():
            time.sleep(0.01)
        return self.slot.get("pid")

    def poll(self):
        if self.slot["event"].is_set():
            if self.slot["status"] is None:
                raise RuntimeError(
                    f"the tests' fork server (tests/zygote.py) ended while {self.argv} ran"
                )
            self.returncode = self.slot["status"]
        return self.returncode

    def send_signal(self, signum):
        if self.poll() is None and self.pid is not None:
            os.kill(self.pid, signum)

    def kill(self):
        self.send_signal(9)

    def communicate(self, timeout=None):
        if not self.slot["event"].wait(timeout):
            raise subprocess.TimeoutExpired(self.argv, timeout)
        self.poll()
        if self._streams is None:
            with open(self.out) as f_out, open(self.err) as f_err:
                self._streams = f_out.read(), f_err.read()
            shutil.rmtree(self.folder, ignore_errors=True)
            with self.client.lock:
                self.client.waiting.pop(self.request_id, None)
        return self._streams


_zygote = {"client": None, "lock": threading.Lock()}


def _client(argv, env):
    """The fork server, when it can run `argv` in `env` (started at the first command);
    else None."""
    with _zygote["lock"]:
        if _zygote["client"] is None:
            try:
                _zygote["client"] = _Zygote()
            except (OSError, RuntimeError, ValueError):
                _zygote["client"] = False  # Every command a plain subprocess, then.
        client = _zygote["client"]
    if client and not client.dead and argv[0] != "-c" and client.serves(
        dict(os.environ) if env is None else env
    ):
        return client
    return None


def start_script(argv, cwd=ROOT):
    """`subprocess.Popen([python, *argv], cwd=cwd, stdout=PIPE, stderr=PIPE, text=True)`
    for a command to stop mid-run (a signal, SIGKILL): a child of the fork server, or a
    plain subprocess where the server cannot run it. The handle has pid, poll,
    send_signal, kill, communicate and returncode. The command runs as the search process
    itself (NAS_SEARCH_PROCESS=1: no crash guard in front of it); the guard's own handling
    of signals is tested with plain processes (tests/test_faults.py, test_assess.py)."""
    client = _client(argv, None)
    if client:
        return client.start(list(argv), cwd)
    return subprocess.Popen([sys.executable, *argv], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_script(argv, cwd=ROOT, timeout=600, env=None):
    """`subprocess.run([python, *argv], cwd=cwd, capture_output=True, text=True, ...)`,
    done by a child of the fork server (tests/zygote.py) when the command's environment
    is the one the server started with, so that it starts with TensorFlow imported; as
    a plain subprocess otherwise (another backend, frameworks blocked, a changed
    environment)."""
    client = _client(argv, env)
    if client:
        return client.run(list(argv), cwd, timeout)
    return subprocess.run([sys.executable, *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


BACKGROUND_PROCESSES = 3
# Under pytest-xdist (`make test` runs two workers), one process runs the background
# jobs (the only process, or worker gw0) and writes each result to a file that the
# other worker reads; the folder is made by the process that starts the workers.
_ROOT_VARIABLE = "NAS_TESTS_BACKGROUND_ROOT"
_NAMES = "names.json"
_RUNNER = os.environ.get("PYTEST_XDIST_WORKER", "gw0") == "gw0"
_background = {"pool": None, "made_root": False}


def _wait_for(path):
    while not path.exists():
        time.sleep(0.2)
    return path.read_bytes()


class _Written:
    """A job another worker runs: result() waits for the file its runner writes."""

    def __init__(self, path):
        self.path = path

    def result(self):
        ok, value = pickle.loads(_wait_for(self.path))
        if not ok:
            raise value
        return value


class _WrittenJobs(collections.abc.Mapping):
    """A module's jobs that another worker runs, by the names its runner wrote."""

    def __init__(self, results):
        self.results = results
        self._names = None

    def _jobs(self):
        if self._names is None:
            self._names = json.loads(_wait_for(self.results / _NAMES))
        return self._names

    def __getitem__(self, name):
        if name not in self._jobs():
            raise KeyError(name)
        return _Written(self.results / f"{name}.pickle")

    def __iter__(self):
        return iter(self._jobs())

    def __len__(self):
        return len(self._jobs())


def _run_and_write(job, path):
    """Runs `job` and writes (ok, its value or exception) to `path` for another worker."""
    try:
        outcome = (True, job())
    except BaseException as e:  # pylint: disable=broad-except  (handed to the reader)
        outcome = (False, e)
    try:
        blob = pickle.dumps(outcome)
    except Exception as e:  # pylint: disable=broad-except
        blob = pickle.dumps((False, RuntimeError(f"background result not picklable: {e!r}")))
    with run_log.atomic_write(str(path), "wb") as f:
        f.write(blob)
    ok, value = outcome
    if not ok:
        raise value
    return value


def start_background(module):
    """Submits `module.background_jobs(folder)` to the shared pool, once; returns the
    dict name -> Future (called by the suite at collection, and by the module's
    fixture, which also makes it work for a module run on its own). In an xdist worker
    other than gw0 the Futures are the files gw0's pool writes."""
    if getattr(module, "_background_futures", None) is None:
        folder = pathlib.Path(os.environ[_ROOT_VARIABLE]) / module.__name__.rpartition(".")[2]
        results = folder / ".results"
        if _RUNNER:
            results.mkdir(parents=True)
            jobs = module.background_jobs(folder)
            if _background["pool"] is None:
                _background["pool"] = concurrent.futures.ThreadPoolExecutor(BACKGROUND_PROCESSES)
            module._background_futures = {
                name: _background["pool"].submit(_run_and_write, job, results / f"{name}.pickle")
                for name, job in jobs.items()
            }
            run_log.write_json(str(results / _NAMES), list(jobs))
        else:
            module._background_futures = _WrittenJobs(results)
    return module._background_futures


def _uses_background(item):
    """Whether `item` asks for a fixture of its module that starts the background jobs
    (so a single test of a module with background jobs runs without them)."""
    for name in item.fixturenames:
        fixture = getattr(item.module, name, None)
        function = getattr(fixture, "__wrapped__", None)
        if function is not None and "start_background" in function.__code__.co_names:
            return True
    return False


# bench/suite_profile.py sets SUITE_PROFILE_TESTS to a file: each test's CPU in its own
# pytest process (setup, call and teardown; the process's every thread, so TensorFlow's
# too) and wall time go there, a line per test, so that the in-process work is ranked
# beside the subprocesses the profile's process log ranks.
_TEST_CPU_LOG = os.environ.get("SUITE_PROFILE_TESTS")


if _TEST_CPU_LOG:

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        cpu, wall = time.process_time(), time.time()
        yield
        cpu, wall = time.process_time() - cpu, time.time() - wall
        with open(_TEST_CPU_LOG, "a") as f:
            f.write(f"{item.nodeid}\t{cpu:.3f}\t{wall:.3f}\n")


def pytest_configure(config):
    """The background jobs' folder, made before xdist starts its workers (they inherit
    the environment), by the process that will remove it."""
    if "PYTEST_XDIST_WORKER" not in os.environ and _ROOT_VARIABLE not in os.environ:
        os.environ[_ROOT_VARIABLE] = tempfile.mkdtemp(prefix="nas-tests-")
        _background["made_root"] = True


# The modules that take longest in their worker (waiting for their own subprocesses, Ray's
# workers and signals, or long in-process searches) are handed out first: `make test` has
# pytest-xdist keep the collection's order (--no-loadscope-reorder); its own order (most
# tests first) and the alphabetical one each left a long module last and the other worker
# idle for the suite's last minute (bench/results/suite_profile.md's last tenth). Modules
# that read the background jobs (test_train, test_nb201, ...) keep their places, so the
# jobs have run by then.
LONG_MODULES = ("test_workers", "test_nb201_supernet", "test_resume", "test_faults",
                "test_strategies", "test_keras_tuner_oracles", "test_controller")


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        name = item.nodeid.split("::")[0].rpartition("/")[2].removesuffix(".py")
        return LONG_MODULES.index(name) if name in LONG_MODULES else len(LONG_MODULES)

    items.sort(key=rank)  # Stable: the other modules, and every module's tests, keep their order.


def pytest_collection_finish(session):
    started = set()
    for item in session.items:
        module = getattr(item, "module", None)
        if hasattr(module, "background_jobs") and module not in started and _uses_background(item):
            started.add(module)
            start_background(module)


def pytest_sessionfinish(session):
    if _background["pool"] is not None:
        # Alone, the jobs no test asked for yet are dropped; as gw0, the other worker
        # may still read them.
        alone = "PYTEST_XDIST_WORKER" not in os.environ
        _background["pool"].shutdown(wait=True, cancel_futures=alone)


def pytest_unconfigure(config):
    if _background["made_root"]:
        shutil.rmtree(os.environ.pop(_ROOT_VARIABLE), ignore_errors=True)
