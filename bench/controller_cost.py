"""Measures the controller's own cost per architecture: sample + REINFORCE update.

  python bench/controller_cost.py [--steps 60] [--children 8]

For each built-in space it times `sample(m)` and `update(m architectures)` over
`steps` controller steps (after warm-up steps that compile the functions) and
reports milliseconds per architecture. Target: <= 20 ms on 2 CPU cores.
Writes bench/results/controller_cost.md.
"""

import argparse
import os
import pathlib
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import controller  # noqa: E402
import state_space  # noqa: E402


def measure(space, steps, children, warmup=3):
    c = controller.Controller(space, seed=0)
    rng = np.random.default_rng(0)
    sample_times, update_times = [], []
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        archs = c.sample(children)
        t1 = time.perf_counter()
        c.update(archs, rng.normal(0, 0.1, size=children))
        t2 = time.perf_counter()
        if step >= warmup:
            sample_times.append((t1 - t0) / children)
            update_times.append((t2 - t1) / children)
    sample_ms = 1000 * np.median(sample_times)
    update_ms = 1000 * np.median(update_times)
    return sample_ms, update_ms


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--children", type=int, default=8)
    args = parser.parse_args()
    spaces = [
        ("toy (4 layers)", state_space.toy_space()),
        ("macro (6 layers)", state_space.macro_space(6)),
        ("macro (12 layers)", state_space.macro_space(12)),
    ]
    lines = [
        f"Controller cost per architecture, median over {args.steps} steps of "
        f"{args.children} children (keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}).",
        "",
        "| space | decisions | sample ms/arch | update ms/arch | total ms/arch | target <= 20 ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, space in spaces:
        sample_ms, update_ms = measure(space, args.steps, args.children)
        total = sample_ms + update_ms
        lines.append(
            f"| {name} | {len(space.decisions)} | {sample_ms:.2f} | {update_ms:.2f} | "
            f"{total:.2f} | {'met' if total <= 20 else 'MISSED'} |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    out = ROOT / "bench" / "results" / "controller_cost.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
