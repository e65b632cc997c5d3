"""Seconds per scored architecture: shared weights against training from scratch.

  python bench/shared_speed.py                   # 6-layer macro space, 24 channels, mnist5k
  python bench/shared_speed.py --filters=12 --eval_batch=64 --trained=4 --scored=2000

In one process, on the same space and data split (the defaults of
configs/enas.flags): `--trained` random architectures trained from scratch as
search children for one epoch (`--evaluation=train`: build, fit, validate, clear),
then a supernet trained for one pass of the training split with uniform
architectures and `--scored` random architectures scored on one validation
minibatch each (`--evaluation=shared`). Per architecture, the shared cost is given
alone and with the supernet's training spread over the 1,000 architectures ENAS
scores per epoch (50 steps of 20). Writes bench/results/shared_speed.md.
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

RESULTS = ROOT / "bench" / "results"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--filters", type=int, default=24)
    parser.add_argument("--eval_batch", type=int, default=128)
    parser.add_argument("--trained", type=int, default=6, help="Children trained from scratch.")
    parser.add_argument("--scored", type=int, default=1000, help="Architectures scored shared.")
    parser.add_argument(
        "--per_epoch",
        default="1000,200",
        help="Architectures scored per supernet pass (ENAS: 1000; configs/shared.flags: 200).",
    )
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS / "shared_speed.md")
    args = parser.parse_args()
    config = config_lib.SearchConfig(
        space="macro", filters=args.filters, epochs=1, eval_batch=args.eval_batch,
        evaluation="shared",
    ).resolved()
    dataset = data.load_dataset("mnist5k", val_size=config.val_size, seed=0)
    space, template = poisoning.make_space(config)
    rng = np.random.default_rng(0)

    trainer = search.make_manager(
        config_lib.SearchConfig(space="macro", filters=args.filters, epochs=1).resolved(),
        dataset,
        space,
        template,
    )
    trained = []
    for a in space.sample(rng, args.trained):
        result = trainer.evaluate(a)
        trained.append(result.seconds)
        print(f"trained from scratch: {result.seconds:.1f}s (fit {result.train_seconds:.1f}s)")

    shared = search.make_shared(config, dataset, space)
    started = time.perf_counter()
    first = shared.train_epoch(lambda n: space.sample(rng, n))["supernet/seconds"]
    second = shared.train_epoch(lambda n: space.sample(rng, n))["supernet/seconds"]
    print(f"supernet pass: first {first:.1f}s (tracing), then {second:.1f}s")
    manager = search.make_manager(config, dataset, space, template, shared)
    manager.evaluate(space.sample(rng), 0)  # The scoring function's one trace.
    started = time.perf_counter()
    for i, a in enumerate(space.sample(rng, args.scored)):
        manager.evaluate(a, i)
    scored = (time.perf_counter() - started) / args.scored
    cadences = [int(n) for n in args.per_epoch.split(",")]
    amortized = {n: scored + second / n for n in cadences}
    trained_mean = float(np.mean(trained))
    lines = [
        "# Seconds per architecture: shared weights vs trained from scratch",
        "",
        f"Command: `python bench/shared_speed.py --filters={args.filters} "
        f"--eval_batch={args.eval_batch} --trained={args.trained} --scored={args.scored} "
        f"--per_epoch={args.per_epoch}` "
        f"(keras {keras.__version__}, backend {keras.backend.backend()}, {os.cpu_count()} CPUs, "
        f"{platform.machine()}). 6-layer macro space, {args.filters} channels, "
        f"{dataset.describe()}.",
        "",
        "| evaluation | seconds per architecture |",
        "| --- | --- |",
        f"| trained from scratch, 1 epoch (mean of {args.trained}; build, fit, validate) | "
        f"{trained_mean:.2f} (min {min(trained):.2f}, max {max(trained):.2f}) |",
        f"| shared weights, one validation minibatch of {args.eval_batch} (mean of {args.scored}) "
        f"| {scored:.4f} |",
    ]
    lines += [
        f"| shared, with a supernet pass ({second:.1f} s) per {n} architectures | "
        f"{amortized[n]:.4f} |"
        for n in cadences
    ]
    lines += [""]
    lines += [
        f"With a pass per {n} architectures, shared weights score an architecture "
        f"{trained_mean / amortized[n]:.0f}x faster than training it for one epoch (target: at "
        f"least 100x), and 10,000 architectures take {10000 * amortized[n] / 60:.1f} min of "
        f"scoring and supernet training (target: 15 min)."
        for n in cadences
    ]
    lines += [
        "",
        f"The first supernet pass took {first:.1f} s, most of it tracing the training step "
        f"once. Not counted: the controller, the run's files, the final retraining.",
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
