"""The PyTorch and JAX backends of Keras: children trained in and out of worker
processes (workers.py), and the supernet trained, scored and extracted on JAX.

Each check is a subprocess with KERAS_BACKEND set (a process has one backend), and
each pays its backend's start and, on JAX, XLA's compilations: they run in the
background from the start of the suite (conftest.py), and the tests read the results.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import start_background, tiny_flags

ROOT = Path(__file__).resolve().parents[1]
COMPARED = ("trial", "step", "architecture", "val_accuracy", "reward", "baseline", "params")

JAX_CHECK = """
import numpy as np, keras
assert keras.backend.backend() == "jax"
import data, poisoning, state_space, weight_sharing
rng = np.random.default_rng(0)
x = rng.uniform(size=(64, 8, 8, 1)).astype("float32"); y = rng.integers(0, 4, 64).astype("int32")
ds = data.Dataset("tiny", x[:48], y[:48], x[48:], y[48:], x[48:], y[48:], num_classes=4)
space = poisoning.poison(state_space.macro_space(3), "dropout1.0,noise2,stretched3x3", instances=2)
for mode in ("inference", "training"):
    ev = weight_sharing.SharedEvaluator(ds, space, filters=4, batch_size=16, eval_batch=16,
                                        reward_mode=mode, bn="batch" if mode == "training" else "moving")
    ev.train_epoch(lambda n: space.sample(rng, n))
    assert ev.epochs == 1 and 0 <= ev.score(space.sample(rng), 0) <= 1
net = ev.net
for a in space.sample(rng, 4):
    rows = np.repeat(net.encode([a]), 16, 0)
    net.bn = "moving"
    got = keras.ops.convert_to_numpy(net([x[:16], rows], training=False))
    want = keras.ops.convert_to_numpy(net.extract(a)(x[:16], training=False))
    assert np.abs(got - want).max() < 2e-5, np.abs(got - want).max()
print("jax ok")
"""

# The zero-cost proxies of one small network with fixed weights (zero_cost.py): each
# backend's gradients (TensorFlow's tape, PyTorch's autograd, JAX's grad) give the same.
ZERO_COST_CHECK = """
import json, numpy as np, keras
import zero_cost
rng = np.random.default_rng(0)
inputs = keras.Input((6, 6, 2))
h = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")(inputs)
h = keras.layers.BatchNormalization(name="bn")(h)
h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
out = keras.layers.Dense(4, activation="softmax", name="classifier")(h)
model = keras.Model(inputs, out)
for layer in model.layers:
    layer.set_weights([(np.abs(rng.normal(size=w.shape)) + 0.5 if layer.name == "bn" else
                        rng.normal(size=w.shape)).astype("float32") for w in layer.get_weights()])
x = rng.normal(size=(8, 6, 6, 2)).astype("float32"); y = rng.integers(0, 4, 8)
print(json.dumps({p: zero_cost.score(p, model, x, y) for p in zero_cost.PROXIES}))
"""

# The oneDNN cap a search's PyTorch process sets (manager.make_deterministic), printed.
ONEDNN_CHECK = """
import os, manager
manager.make_deterministic()
print("ONEDNN_MAX_CPU_ISA=" + str(os.environ.get("ONEDNN_MAX_CPU_ISA")))
"""

# A lone JAX search with a worker takes about 65 s on a quiet 2-core machine; beside the
# rest of the suite on a slow day (3x) it came close to the 400 s this was before.
TIMEOUT = 900
pytestmark = pytest.mark.timeout(TIMEOUT + 100)  # The first test waits for the jobs.


def _run(args, backend):
    """The finished process; one that ran past TIMEOUT is killed and returned with
    return code None and what it had printed, so the test says which job and where."""
    try:
        return subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env={**{k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"},
                 "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)},
        )
    except subprocess.TimeoutExpired as e:
        text = lambda b: (b or b"").decode(errors="replace") if isinstance(b, bytes) else (b or "")
        return subprocess.CompletedProcess(
            args, None, text(e.stdout), f"timed out after {TIMEOUT} s\n" + text(e.stderr)
        )


def background_jobs(logdir):
    """Two-child searches on PyTorch with their children in the search process and in
    a worker (what a worker is given does not depend on the backend: one worker start
    is enough); a one-child search on JAX in the search process (XLA compiles the child
    and the final retraining: the slowest); the JAX supernet check. Started with the
    suite (conftest.py), the JAX ones first."""
    jobs = {
        "jax0": (["train.py", *tiny_flags(trials=1, children_per_step=1)], "jax"),
        "jax-supernet": (["-c", JAX_CHECK + ZERO_COST_CHECK], "jax"),
        "torch0": (["train.py", *tiny_flags(trials=2)], "torch"),
        "torch1": (["train.py", *tiny_flags(trials=2)], "torch"),
    }
    started = {}
    for name, (args, backend) in jobs.items():
        if args[0] == "train.py":
            args = args + [f"--workers={name[-1]}", f"--logdir={logdir}", f"--run_name={name}"]
        started[name] = lambda a=args, b=backend: _run(a, b)
    started["logdir"] = lambda: logdir
    # The zero-cost check on PyTorch after the oneDNN cap's check, in its process; on JAX
    # after the supernet's, in its process (a PyTorch and a JAX start-up fewer).
    started["torch-checks"] = lambda: _run(["-c", ONEDNN_CHECK + ZERO_COST_CHECK], "torch")
    return started


@pytest.fixture(scope="module")
def runs():
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    futures = start_background(sys.modules[__name__])
    return futures["logdir"].result(), {k: f.result() for k, f in futures.items() if k != "logdir"}


def rows(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def compared(run_dir):
    return [{k: r[k] for k in COMPARED} for r in rows(run_dir)]


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_children_train_on_the_torch_and_jax_backends_in_and_out_of_process(backend, runs):
    logdir, done = runs
    for n in (0, 1) if backend == "torch" else (0,):
        proc = done[f"{backend}{n}"]
        assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-2000:]
        best = json.loads((logdir / f"{backend}{n}" / "best.json").read_text())
        assert best["params"] > 0 and 0 <= best["test_accuracy"] <= 1
        assert best["keras_backend"] == backend
        assert all(r["failed"] == "0" for r in rows(logdir / f"{backend}{n}"))
    if backend == "torch":
        assert "backend torch" in done["torch1"].stdout  # The worker's, on its pool's line.
        assert compared(logdir / "torch0") == compared(logdir / "torch1")


def test_the_supernet_trains_scores_and_extracts_on_jax(runs):
    proc = runs[1]["jax-supernet"]
    assert proc.returncode == 0 and "jax ok" in proc.stdout, proc.stderr[-3000:]


def test_torch_children_avoid_onednns_avx2_kernels_on_a_cpu_without_avx512(runs):
    """PyTorch's oneDNN corrupts the heap in an AVX2 kernel (manager._cap_torch_onednn):
    on such a CPU every torch process of a search caps it at AVX; a user's own cap wins."""
    torch = pytest.importorskip("torch")
    proc = runs[1]["torch-checks"]  # No cap of the user's (the suite's environment has none).
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = {None: proc.stdout.split("ONEDNN_MAX_CPU_ISA=")[1].split()[0]}
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    env.update(KERAS_BACKEND="torch", PYTHONPATH=str(ROOT), ONEDNN_MAX_CPU_ISA="AVX2")
    proc = subprocess.run([sys.executable, "-c", ONEDNN_CHECK], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got["AVX2"] = proc.stdout.split("ONEDNN_MAX_CPU_ISA=")[1].split()[0]
    avx2_only = torch.backends.cpu.get_cpu_capability() == "AVX2"
    assert got == {None: "AVX" if avx2_only else "None", "AVX2": "AVX2"}


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_the_zero_cost_proxies_are_the_same_on_every_backend(runs, backend, capsys):
    proc = runs[1]["torch-checks" if backend == "torch" else "jax-supernet"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    exec(ZERO_COST_CHECK, {})  # pylint: disable=exec-used  (here: TensorFlow)
    expected = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(got) == set(expected) == {"grad_norm", "snip", "synflow", "params", "flops"}
    for proxy, value in expected.items():
        assert value > 0 and got[proxy] == pytest.approx(value, rel=1e-5), proxy
