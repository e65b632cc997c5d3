"""How fast is an untrained architecture scored, against what the CPU allows?

  python bench/score_speed.py                       # toy, macro and nb201; 20 each
  python bench/score_speed.py --spaces=nb201 --archs=50 --scores=naswot,synflow,snip

For each space it samples `--archs` distinct architectures (seeded) and scores each
as a search does (`zero_cost.Scorer`, the manager's build function, mnist5k images or,
for nb201, 32x32x3 inputs: building, seeding, scoring), after one warm-up architecture.
Per architecture it times the build alone and the whole score, and counts the work the
score needs: FLOPs = 2 x the multiply-accumulates of one image (zero_cost.flops) times
the images (NASWOT: the minibatch, forward only; snip, grad_norm: the minibatch,
forward + backward, about 3x; synflow: one image, forward + backward, float64). The
floor is that work over this CPU's throughput, measured here as a float32 matrix product
(float64 for synflow); the ratio seconds / floor says how far from the hardware a score
is, and the build's share says where the rest goes.

The table goes to bench/results/score_speed.md.
"""

import argparse
import os
import pathlib
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import config as config_lib  # noqa: E402
import data  # noqa: E402
import poisoning  # noqa: E402
import search  # noqa: E402
import zero_cost  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def throughput(dtype, n=1024, repeats=5):
    """FLOP/s of an n x n matrix product in `dtype` (NumPy's BLAS, every core)."""
    a = np.random.default_rng(0).normal(size=(n, n)).astype(dtype)
    a @ a  # pylint: disable=pointless-statement
    best = min(_timed(lambda: a @ a) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def images_of(space_name, n):
    """(x, y): mnist5k training images, or for nb201 the same padded to 32x32x3."""
    ds = data.load_dataset("mnist5k", val_size=100, train_size=max(n, 200), seed=0)
    x, y = ds.x_train, ds.y_train
    if space_name == "nb201":
        x = np.repeat(np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0))), 3, axis=-1)
    return x.astype("float32"), y


def work(score, macs, batch):
    """FLOPs one score of a network of `macs` multiply-accumulates per image needs."""
    if score == "naswot":
        return 2 * macs * batch
    if score in ("snip", "grad_norm"):
        return 3 * 2 * macs * batch
    if score == "synflow":
        return 3 * 2 * macs
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", default="toy,macro,nb201")
    parser.add_argument("--scores", default="naswot,synflow")
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    scores = args.scores.split(",")
    unknown = [s for s in scores if s not in config_lib.SCORES] + [
        s for s in args.spaces.split(",") if s not in config_lib.SPACES
    ]
    if unknown or args.archs < 1:
        parser.error(f"--scores from {','.join(config_lib.SCORES)}, --spaces from "
                     f"{','.join(config_lib.SPACES)}, --archs >= 1 (got {unknown})")
    flops32, flops64 = throughput("float32"), throughput("float64")
    lines = [
        "# Scoring speed against the CPU's floor",
        "",
        f"`python bench/score_speed.py --spaces={args.spaces} --scores={args.scores} "
        f"--archs={args.archs} --batch={args.batch}` ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Keras {keras.__version__} on {keras.backend.backend()}, "
        f"{time.strftime('%Y-%m-%d')}). Throughput (NumPy matrix product, 1024^2): "
        f"{flops32 / 1e9:.1f} GFLOP/s float32, {flops64 / 1e9:.1f} GFLOP/s float64. Medians over "
        f"the architectures, after one warm-up.",
        "",
        "| space | score | archs/s | s/arch | build s | MFLOP per score | floor ms | s / floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for space_name in args.spaces.split(","):
        c = config_lib.SearchConfig(space=space_name, filters=24).resolved()
        space, template = poisoning.make_space(c)
        x, y = images_of(space_name, args.batch)
        ds = data.Dataset(space_name, x, y, x[:10], y[:10], x[:10], y[:10], 10)
        m = search.make_manager(c, ds, space, template, None, None)
        rng = np.random.default_rng(0)
        archs = []
        while len(archs) < args.archs + 1:
            a = space.sample(rng)
            if a not in archs:
                archs.append(a)
        builds, macs = [], []
        for a in archs:
            keras.utils.set_random_seed(0)
            start = time.perf_counter()
            model = m.build_model(a)
            builds.append(time.perf_counter() - start)
            macs.append(zero_cost.flops(model))
            del model
            keras.backend.clear_session()
        for score in scores:
            scorer = zero_cost.Scorer(m.build_model, x, y, proxy=score, batch_size=args.batch)
            seconds = []
            for a in archs:
                s = scorer.score(a)
                seconds.append(s.seconds)
            seconds = np.array(seconds[1:])  # After the warm-up.
            needed = np.array([work(score, n, args.batch) for n in macs[1:]])
            floor = needed / (flops64 if score == "synflow" else flops32)
            # params and flops read the network and compute nothing: no floor to compare.
            ratio = f"{np.median(seconds / floor):,.0f}x" if floor.all() else "no compute"
            lines.append(
                f"| {space_name} | {score} | {1 / np.median(seconds):.1f} | {np.median(seconds):.3f} | "
                f"{np.median(builds[1:]):.3f} | {np.median(needed) / 1e6:.1f} | "
                f"{np.median(floor) * 1e3:.2f} | {ratio} |"
            )
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "score_speed.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
