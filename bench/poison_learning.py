"""How many trials does the controller need to learn to avoid poisoned ops?

  python bench/poison_learning.py --fit logs/assess-poison/runs/*random*/history.csv
  python bench/poison_learning.py --effect 0.03 --noise 0.06 --trials 96,192,384

Training children costs seconds each; this bench replaces them by a reward model
and runs only the real controller, so a whole grid of controller settings takes
minutes. The reward model: accuracy = base - effect * poisoned_layers + N(0, noise),
clipped to [0, 1], in the same space and with the same EWA baseline as a search.
`--fit` estimates base, effect and noise by least squares from history.csv files of
real (random-search) runs, so the model has the signal the real children gave.

For each learning rate x children per step x trial budget it reports the poison rate
over the last quarter of the trials (mean +- std over seeds), next to the uniform prior
and half of it (the target of the assessment: below half of random search's rate).
Writes bench/results/poison_learning.md.
"""

import argparse
import csv
import os
import pathlib
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import controller  # noqa: E402
import manager  # noqa: E402
import poisoning  # noqa: E402
import run_log  # noqa: E402
import state_space  # noqa: E402


def fit(paths):
    """Least-squares accuracy ~ base - effect * poisoned_layers over history rows."""
    poisoned, accuracy = [], []
    for path in paths:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            column = run_log.accuracy_column(reader.fieldnames)  # val_accuracy, or a table's.
            for row in reader:
                poisoned.append(int(row["poisoned_layers"]))
                accuracy.append(float(row[column]))
    x, y = np.array(poisoned, float), np.array(accuracy)
    slope, base = np.polyfit(x, y, 1)
    noise = float(np.std(y - (base + slope * x), ddof=2))
    return float(base), float(-slope), noise, len(y)


def search(space, *, lr, children, trials, seed, base, effect, noise, hparams):
    ctrl = controller.Controller(space, seed=seed, learning_rate=lr, **hparams)
    baseline = manager.EwaBaseline(0.8)
    rng = np.random.default_rng(seed + 1000)
    rates = []
    for _ in range(trials // children):
        archs = ctrl.sample(children)
        layers = np.array([space.poisoned_layers(a) for a in archs])
        acc = np.clip(base - effect * layers + rng.normal(0, noise, len(archs)), 0, 1)
        reference = baseline.value if baseline.value is not None else acc[0]
        ctrl.update(archs, list(acc - reference))
        for a in acc:
            baseline.update(a)
        rates.extend(layers / space.num_layers)
    quarter = max(1, len(rates) // 4)
    return float(np.mean(rates[-quarter:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit", nargs="*", default=[], help="history.csv files to fit")
    parser.add_argument("--base", type=float, default=0.35)
    parser.add_argument("--effect", type=float, default=0.04)
    parser.add_argument("--noise", type=float, default=0.08)
    parser.add_argument("--poison", default="dropout1.0,stretched3x3")
    parser.add_argument("--instances", type=int, default=6)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--lrs", default="0.005,0.01,0.02")
    parser.add_argument("--children", default="4,8")
    parser.add_argument("--trials", default="96,192,384")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--entropy_weight", type=float, default=1e-4)
    parser.add_argument("--tanh_constant", type=float, default=2.5)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "poison_learning.md"))
    args = parser.parse_args()

    source = "flags"
    if args.fit:
        args.base, args.effect, args.noise, n = fit(args.fit)
        source = f"fitted to {n} children of {len(args.fit)} history.csv files"
    space = poisoning.poison(
        state_space.macro_space(args.layers), args.poison, instances=args.instances
    )
    prior = space.poison_prior()
    hparams = {"entropy_weight": args.entropy_weight, "tanh_constant": args.tanh_constant}
    lines = [
        "# Controller against poison, with a reward model instead of trained children",
        "",
        f"`python bench/poison_learning.py {' '.join(sys.argv[1:])}`",
        "",
        f"Space: macro, {args.layers} layers, poisoned with {args.poison} x{args.instances}; "
        f"uniform prior {prior:.3f}, half of it {prior / 2:.3f}.",
        f"Reward model ({source}): accuracy = {args.base:.3f} - {args.effect:.4f} x poisoned "
        f"layers + N(0, {args.noise:.3f}).",
        f"Controller: entropy weight {args.entropy_weight:g}, tanh constant {args.tanh_constant:g}"
        f", other settings default. {args.seeds} seeds. {platform.platform()}.",
        "",
        "| learning rate | children per step | trials | last-quarter poison rate | below half the prior |",
        "|---|---|---|---|---|",
    ]
    started = time.perf_counter()
    for lr in [float(v) for v in args.lrs.split(",")]:
        for children in [int(v) for v in args.children.split(",")]:
            for trials in [int(v) for v in args.trials.split(",")]:
                rates = [
                    search(
                        space,
                        lr=lr,
                        children=children,
                        trials=trials,
                        seed=seed,
                        base=args.base,
                        effect=args.effect,
                        noise=args.noise,
                        hparams=hparams,
                    )
                    for seed in range(args.seeds)
                ]
                mean, std = np.mean(rates), np.std(rates, ddof=1) if len(rates) > 1 else 0.0
                row = (
                    f"| {lr:g} | {children} | {trials} | {mean:.3f} ± {std:.3f} | "
                    f"{'yes' if mean < prior / 2 else 'no'} |"
                )
                print(row, flush=True)
                lines.append(row)
    lines += ["", f"{time.perf_counter() - started:.0f} s in all."]
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
