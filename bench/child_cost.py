"""Where a child's time goes, per Keras backend: building, the first training step
(TensorFlow traces its graph, JAX compiles with XLA), the rest of the first epoch, a
later epoch, validation and clearing.

  python bench/child_cost.py                        # TensorFlow, PyTorch, JAX
  python bench/child_cost.py --backends tensorflow --children 4
  python bench/child_cost.py --backends tensorflow,tensorflow-eager   # traced against eager

Each backend runs in its own process (KERAS_BACKEND is read at import), with the
same settings as the search (TensorFlow: op determinism, so no XLA, as train.py and
every worker). The children are the same random macro architectures (6 layers, 8
channels, 1,500 mnist5k images, batch 32, 2 epochs) trained by
`manager.NetworkManager`'s own build and fit; the first child of each process is
reported apart (imports and first-use costs), the mean of the others is the steady
state. A backend named `<backend>-eager` runs the same children with
`model.run_eagerly = True` (no traced training step: each step runs op by op). Fixed cost = build + (epoch 1 - epoch 2) + validation + clearing: what a
child costs beyond its training steps. Writes bench/results/child_cost.md.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
PHASES = ("build", "first_step", "epoch1", "epoch2", "validation", "clear")


def measure(children, eager=False):
    """Runs in the child process: prints one JSON line per child."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel

    import data  # pylint: disable=import-outside-toplevel
    import manager  # pylint: disable=import-outside-toplevel
    import state_space  # pylint: disable=import-outside-toplevel

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        tf.config.experimental.enable_op_determinism()
    dataset = data.load_dataset("mnist5k", train_size=1500, val_size=500, seed=0)
    space = state_space.macro_space(6)
    m = manager.NetworkManager(
        dataset, space, template="macro", epochs=2, batch_size=32, template_args={"filters": 8}
    )

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times, self.first_step = [], None

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if self.first_step is None:
                self.first_step = time.perf_counter() - self.start

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    for i, architecture in enumerate(space.sample(np.random.default_rng(0), children)):
        t0 = time.perf_counter()
        keras.utils.set_random_seed(m.child_seed(architecture))
        model = m.build(architecture)
        model.run_eagerly = eager
        t1 = time.perf_counter()
        clock = Clock()
        model.fit(
            dataset.x_train, dataset.y_train, epochs=2, batch_size=32, verbose=0, callbacks=[clock]
        )
        t2 = time.perf_counter()
        accuracy = manager.accuracy_of(model, dataset.x_val, dataset.y_val)
        t3 = time.perf_counter()
        del model
        keras.backend.clear_session()
        t4 = time.perf_counter()
        row = dict(
            child=i,
            build=t1 - t0,
            first_step=clock.first_step,
            epoch1=clock.times[0],
            epoch2=clock.times[1],
            validation=t3 - t2,
            clear=t4 - t3,
            accuracy=accuracy,
        )
        print("ROW " + json.dumps(row), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,torch,jax")
    parser.add_argument("--children", type=int, default=5)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--eager", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.children, args.eager)
        return
    table = [
        "| backend | child | build | first step | epoch 1 | epoch 2 | validation | clear | "
        "fixed cost | 1-epoch child in all |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for backend in args.backends.split(","):
        done = subprocess.run(
            [sys.executable, __file__, "--measure", f"--children={args.children}"]
            + (["--eager"] if backend.endswith("-eager") else []),
            env={**os.environ, "KERAS_BACKEND": backend.removesuffix("-eager")},
            capture_output=True,
            text=True,
            check=False,
        )
        rows = [json.loads(line[4:]) for line in done.stdout.splitlines() if line.startswith("ROW ")]
        if not rows:
            table.append(f"| {backend} | failed: {done.stderr.strip().splitlines()[-1:]} |")
            continue
        for label, group in (("first", rows[:1]), (f"mean of {len(rows) - 1} more", rows[1:])):
            if not group:
                continue
            mean = {k: sum(r[k] for r in group) / len(group) for k in PHASES}
            fixed = mean["build"] + mean["epoch1"] - mean["epoch2"] + mean["validation"] + mean["clear"]
            whole = mean["build"] + mean["epoch1"] + mean["validation"] + mean["clear"]
            table.append(
                f"| {backend} | {label} | "
                + " | ".join(f"{mean[k]:.2f}" for k in PHASES)
                + f" | {fixed:.2f} | {whole:.2f} |"
            )
        print(table[-1], flush=True)
    text = "\n".join(
        [
            "# Per-child cost by Keras backend (seconds)",
            "",
            f"`python bench/child_cost.py {' '.join(sys.argv[1:])}`".replace(" `", "`"),
            f"on {os.cpu_count()} CPUs: macro children, 6 layers, 8 channels, 1,500 mnist5k "
            "images, batch 32 (47 steps an epoch), 2 epochs; fixed cost = build + (epoch 1 - "
            "epoch 2) + validation + clear.",
            "",
            *table,
            "",
        ]
    )
    (ROOT / "bench" / "results" / "child_cost.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
