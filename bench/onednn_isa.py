"""oneDNN's AVX2 kernels against its AVX ones for PyTorch children (manager._cap_torch_onednn).

Trains the same toy children (mnist5k, 300 images, 1 epoch, batch 32) on Keras's PyTorch
backend in a fresh process per setting, one thread (as a Ray worker has) or all cores,
and prints seconds per child after a warm-up child. Children that kill the process under
a setting are reported as such. Usage: python bench/onednn_isa.py [--threads 1] [--repeats 3]
"""

import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHILD = """
import os, sys, time
sys.path.insert(0, {root!r})
import data, manager, state_space
ds = data.load_dataset("mnist5k", train_size=300, val_size=100, seed=0)
space = state_space.toy_space()
m = manager.NetworkManager(ds, space, template="toy", epochs=1, batch_size=32, seed=0)
rng = __import__("numpy").random.default_rng({seed})
m.evaluate(space.sample(rng))  # Warm-up: the backend's first child.
for a in space.sample(rng, 4):
    t = time.perf_counter(); r = m.evaluate(a); dt = time.perf_counter() - t
    print("child", round(dt, 3), space.format(a), flush=True)
"""


def run(isa, threads, seed):
    env = {**os.environ, "KERAS_BACKEND": "torch", "OMP_NUM_THREADS": str(threads)}
    env["ONEDNN_MAX_CPU_ISA"] = isa  # "ALL": oneDNN's default (the best the CPU has).
    proc = subprocess.run([sys.executable, "-c", CHILD.format(root=ROOT, seed=seed)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    times = [float(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("child")]
    return times, proc.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch  # pylint: disable=import-outside-toplevel

    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{args.threads} thread(s); 4 children per process after a warm-up child")
    print("| seed | ISA | seconds per child (mean) | children | process exit |")
    print("|---|---|---|---|---|")
    for seed in range(args.repeats):
        for isa in ("ALL", "AVX"):
            times, rc = run(isa, args.threads, seed)
            mean = f"{sum(times) / len(times):.3f}" if times else "-"
            print(f"| {seed} | {isa} | {mean} | {len(times)} | {rc} |", flush=True)


if __name__ == "__main__":
    main()
