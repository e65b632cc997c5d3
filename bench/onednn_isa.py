"""What oneDNN buys these children: its kernels on against off, per backend.

  python bench/onednn_isa.py [--backend tensorflow|torch] [--space toy|macro] [--threads 1]
                             [--repeats 3]

TensorFlow: `TF_ENABLE_ONEDNN_OPTS=1` (TensorFlow's default on x86) against `=0` (a
child that crashes the process is retried with it off: crash_guard.py). PyTorch: oneDNN's AVX2 kernels
(`ONEDNN_MAX_CPU_ISA=ALL`, the default) against its AVX ones (manager._cap_torch_onednn).
Trains the same children (mnist5k; toy: 300 images, 1 epoch, batch 32; macro: 6 layers, 8
filters, 1,500 images, 1 epoch) with `manager.NetworkManager.evaluate`, each setting in a
fresh process, `--threads` threads (1: as a Ray worker has), and prints seconds per child
after a warm-up child and each child's accuracy. A setting under which a child kills the
process is reported with its exit status.
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
toy = {space!r} == "toy"
ds = data.load_dataset("mnist5k", train_size=300 if toy else 1500, val_size=100 if toy else 500, seed=0)
space = state_space.toy_space() if toy else state_space.macro_space(6)
m = manager.NetworkManager(ds, space, template={space!r}, epochs=1, batch_size=32, seed=0,
                           template_args=None if toy else {{"filters": 8}})
rng = __import__("numpy").random.default_rng({seed})
m.evaluate(space.sample(rng))  # Warm-up: the backend's first child.
for a in space.sample(rng, 4):
    t = time.perf_counter(); r = m.evaluate(a); dt = time.perf_counter() - t
    print("child", round(dt, 3), round(r.fitness, 4), int(r.failed), space.format(a), flush=True)
"""
SETTINGS = {
    "tensorflow": (("TF_ENABLE_ONEDNN_OPTS", "1"), ("TF_ENABLE_ONEDNN_OPTS", "0")),
    "torch": (("ONEDNN_MAX_CPU_ISA", "ALL"), ("ONEDNN_MAX_CPU_ISA", "AVX")),
}


def run(backend, space, setting, threads, seed):
    env = {**os.environ, "KERAS_BACKEND": backend, "OMP_NUM_THREADS": str(threads),
           "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(threads),
           "TF_CPP_MIN_LOG_LEVEL": "3", setting[0]: setting[1]}
    proc = subprocess.run([sys.executable, "-c", CHILD.format(root=ROOT, space=space, seed=seed)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    rows = [line.split()[1:4] for line in proc.stdout.splitlines() if line.startswith("child")]
    return [(float(t), float(a), int(f)) for t, a, f in rows], proc.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="tensorflow", choices=sorted(SETTINGS))
    parser.add_argument("--space", default="toy", choices=("toy", "macro"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.backend}, {args.space} children, {args.threads} thread(s); 4 children per "
          f"process after a warm-up child")
    print("| seed | setting | seconds per child (mean) | accuracies | process exit |")
    print("|---|---|---|---|---|")
    means = {}
    for seed in range(args.repeats):
        for setting in SETTINGS[args.backend]:
            rows, rc = run(args.backend, args.space, setting, args.threads, seed)
            mean = sum(t for t, _, _ in rows) / len(rows) if rows else None
            if mean is not None and rc == 0:
                means.setdefault(setting, []).append(mean)
            accuracies = " ".join(f"{a:.3f}" + ("(failed)" if f else "") for _, a, f in rows)
            print(f"| {seed} | {setting[0]}={setting[1]} | {'-' if mean is None else f'{mean:.3f}'} "
                  f"| {accuracies} | {rc} |", flush=True)
    on, off = (means.get(s) for s in SETTINGS[args.backend])
    if on and off:
        print(f"\nmedian over seeds: {sorted(on)[len(on) // 2]:.3f} s vs "
              f"{sorted(off)[len(off) // 2]:.3f} s per child (first setting vs second)")


if __name__ == "__main__":
    main()
