"""Shared test setup: the repository root on sys.path, quiet TensorFlow, seeds, tiny data,
and the background pool that runs the suite's slow subprocesses beside the other tests.

Background subprocesses: a test module that defines `background_jobs(folder)` (a dict
name -> function of no arguments) gets those functions started on one shared pool of
`BACKGROUND_PROCESSES` threads as soon as the suite is collected, and reads their
results with `start_background(module)`. Each job is a subprocess (train.py, or a
check on another backend) that pays TensorFlow's, PyTorch's or JAX's start-up: in the
background they use the second core while the in-process tests use the first.
"""

import concurrent.futures
import os
import pathlib
import random
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import data  # noqa: E402


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


BACKGROUND_PROCESSES = 3
_background = {"pool": None, "root": None}


def start_background(module):
    """Submits `module.background_jobs(folder)` to the shared pool, once; returns the
    dict name -> Future (called by the suite at collection, and by the module's
    fixture, which also makes it work for a module run on its own)."""
    if getattr(module, "_background_futures", None) is None:
        if _background["pool"] is None:
            _background["pool"] = concurrent.futures.ThreadPoolExecutor(BACKGROUND_PROCESSES)
            _background["root"] = tempfile.mkdtemp(prefix="nas-tests-")
        folder = pathlib.Path(_background["root"]) / module.__name__.rpartition(".")[2]
        folder.mkdir()
        jobs = module.background_jobs(folder)
        module._background_futures = {
            name: _background["pool"].submit(job) for name, job in jobs.items()
        }
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


def pytest_collection_finish(session):
    started = set()
    for item in session.items:
        module = getattr(item, "module", None)
        if hasattr(module, "background_jobs") and module not in started and _uses_background(item):
            started.add(module)
            start_background(module)


def pytest_sessionfinish(session):
    if _background["pool"] is not None:
        _background["pool"].shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(_background["root"], ignore_errors=True)
