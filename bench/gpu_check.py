"""The GPU check: children of the toy, macro and NB201 spaces trained on a GPU with
Keras's JAX and PyTorch backends, against the same machine's CPU.

  python bench/gpu_check.py                       # every backend here, GPU and CPU
  python bench/gpu_check.py --backends=torch --children=3 --epochs=1
  python bench/gpu_check.py --require_gpu          # exit 1 unless every backend ran on a GPU

Meant for a machine with a GPU that has JAX and PyTorch but no TensorFlow and no
network: the Keras wheel and the two packages it needs that such a machine may lack
travel with the repository (`bench/gpu_wheels.sh` fetches them into .whl/ here; on the
GPU machine `pip install --no-index --target /tmp/site .whl/*.whl`, then PYTHONPATH).
Nothing here imports TensorFlow: the children are built by `manager.NetworkManager`
(the search's own builders, seeded as in a search) and trained with `model.fit` on
mnist5k (embedded: no network), 32x32 for NB201 cells.

Each (backend, device) runs in a process of its own (KERAS_BACKEND is read at import;
the CPU legs hide the GPU: CUDA_VISIBLE_DEVICES="" for PyTorch, JAX_PLATFORMS=cpu for
JAX). The process checks where the child's weights live (a CUDA device, or not) and
says so in the table. Reported per row: the first child's seconds (imports aside:
building, tracing or compiling, training, validation), the mean of the others, the
median seconds of a training step after the first two of each child, and the steps
per child. Prints the table and writes it to `--out` (bench/results/gpu_check.md).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPACES = ("toy", "macro", "nb201")


def _device_of(model):
    """Where `model`'s first weight lives: "gpu" or "cpu", from the backend's own tensor."""
    import keras  # pylint: disable=import-outside-toplevel

    value = model.weights[0].value
    backend = keras.backend.backend()
    if backend == "torch":
        return "gpu" if value.device.type == "cuda" else "cpu"
    if backend == "jax":
        return "gpu" if all(d.platform == "gpu" for d in value.devices()) else "cpu"
    return "cpu"


def measure(space_name, children, epochs, train_size, batch_size):
    """Runs in the backend's process: one JSON line per child."""
    sys.path.insert(0, str(ROOT))
    import keras  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel

    import data  # pylint: disable=import-outside-toplevel
    import manager  # pylint: disable=import-outside-toplevel
    import state_space  # pylint: disable=import-outside-toplevel

    dataset = data.load_dataset("mnist5k", train_size=train_size, val_size=500, seed=0)
    if space_name == "nb201":  # The benchmark's cells on 32x32 images, as in the paper.
        pad = ((0, 0), (2, 2), (2, 2), (0, 0))
        dataset = data.Dataset(dataset.name, np.pad(dataset.x_train, pad), dataset.y_train,
                               np.pad(dataset.x_val, pad), dataset.y_val, np.pad(dataset.x_test, pad),
                               dataset.y_test, num_classes=dataset.num_classes)
    space, template, args = {
        "toy": (state_space.toy_space(4), "toy", {}),
        "macro": (state_space.macro_space(6), "macro", {"filters": 24}),
        "nb201": (state_space.nb201_space(), "nb201", {"channels": 16, "cells": 5}),
    }[space_name]
    m = manager.NetworkManager(dataset, space, template=template, epochs=epochs,
                               batch_size=batch_size, template_args=args)

    class Steps(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.last = [], None

        def on_train_batch_begin(self, batch, logs=None):
            self.last = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.seconds.append(time.perf_counter() - self.last)

    for i, architecture in enumerate(space.sample(np.random.default_rng(0), children)):
        started = time.perf_counter()
        keras.utils.set_random_seed(m.child_seed(architecture))
        model = m.build(architecture)
        steps = Steps()
        model.fit(dataset.x_train, dataset.y_train, epochs=epochs, batch_size=batch_size,
                  verbose=0, callbacks=[steps])
        accuracy = manager.accuracy_of(model, dataset.x_val, dataset.y_val)
        device = _device_of(model)
        del model
        keras.backend.clear_session()
        per_epoch = len(steps.seconds) // epochs
        later = [s for e in range(epochs) for s in steps.seconds[e * per_epoch + 2:(e + 1) * per_epoch]]
        print("ROW " + json.dumps({
            "child": i, "seconds": time.perf_counter() - started, "device": device,
            "step": float(np.median(later)) if later else None, "steps": len(steps.seconds),
            "accuracy": float(accuracy),
        }), flush=True)


def legs(backends, device):
    """(backend, wanted device, environment) of each process to run."""
    for backend in backends:
        for where in (["gpu", "cpu"] if device == "both" else [device]):
            env = {**os.environ, "KERAS_BACKEND": backend, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
            if where == "cpu":
                env.update(CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
            yield backend, where, env


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="jax,torch")
    parser.add_argument("--spaces", default=",".join(SPACES))
    parser.add_argument("--device", default="both", choices=("both", "gpu", "cpu"))
    parser.add_argument("--children", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train_size", type=int, default=2000)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--timeout", type=int, default=300, help="seconds for each row's process")
    parser.add_argument("--require_gpu", action="store_true",
                        help="exit status 1 unless every GPU leg trained on a GPU")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "gpu_check.md"))
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.children, args.epochs, args.train_size, args.batch_size)
        return
    spaces = args.spaces.split(",")
    unknown = [s for s in spaces if s not in SPACES]
    if unknown:
        parser.error(f"unknown space {unknown[0]!r}: one of {', '.join(SPACES)}")
    lines = ["| backend | asked | ran on | space | first child s | later children s (mean) | "
             "step ms (median) | steps per child | val accuracy (mean) |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    missed = []
    for backend, where, env in legs(args.backends.split(","), args.device):
        for space in spaces:
            command = [sys.executable, __file__, f"--measure={space}", f"--children={args.children}",
                       f"--epochs={args.epochs}", f"--train_size={args.train_size}",
                       f"--batch_size={args.batch_size}"]
            try:
                done = subprocess.run(command, env=env, capture_output=True, text=True, check=False,
                                      timeout=args.timeout)
                out, err = done.stdout, done.stderr
            except subprocess.TimeoutExpired as e:
                out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
                err = f"timed out after {args.timeout} s"
            rows = [json.loads(l[4:]) for l in out.splitlines() if l.startswith("ROW ")]
            if not rows:
                last = (err.strip().splitlines() or ["no output"])[-1][:200]
                lines.append(f"| {backend} | {where} | failed | {space} | {last} | | | | |")
                missed.append(f"{backend}/{where}/{space}")
                print(lines[-1], flush=True)
                continue
            ran = ",".join(sorted({r["device"] for r in rows}))
            if where == "gpu" and ran != "gpu":
                missed.append(f"{backend}/{where}/{space}")
            later = rows[1:] or rows
            steps = [r["step"] for r in rows if r["step"] is not None]
            lines.append(
                f"| {backend} | {where} | {ran} | {space} | {rows[0]['seconds']:.2f} | "
                f"{sum(r['seconds'] for r in later) / len(later):.2f} | "
                f"{1000 * sorted(steps)[len(steps) // 2]:.1f} | {rows[0]['steps']} | "
                f"{sum(r['accuracy'] for r in rows) / len(rows):.3f} |" if steps else
                f"| {backend} | {where} | {ran} | {space} | {rows[0]['seconds']:.2f} | | | | |")
            print(lines[-1], flush=True)
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                         capture_output=True, text=True, check=False) if _has("nvidia-smi") else None
    name = gpu.stdout.strip() if gpu and gpu.returncode == 0 else "no GPU seen"
    text = "\n".join([
        "# Children on a GPU: JAX and PyTorch, against the same machine's CPU",
        "",
        f"`python bench/gpu_check.py {' '.join(sys.argv[1:])}`".replace(" `", "`")
        + f" on {time.strftime('%Y-%m-%d')}, {name}, {os.cpu_count()} CPUs; {args.children} "
        f"children per row, {args.epochs} epoch(s) of {args.train_size} mnist5k images, batch "
        f"{args.batch_size} (NB201: 32x32, 16 channels, 5 cells per stage; macro: 6 layers, 24 "
        "channels). 'ran on' is where the weights were.",
        "",
        *lines,
        "",
    ])
    pathlib.Path(args.out).write_text(text)
    print("\n" + text)
    if args.require_gpu and missed:
        print(f"not on a GPU: {', '.join(missed)}")
        sys.exit(1)


def _has(program):
    return any((pathlib.Path(p) / program).exists() for p in os.environ.get("PATH", "").split(os.pathsep))


if __name__ == "__main__":
    main()
