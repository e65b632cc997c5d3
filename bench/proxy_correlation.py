"""How well do training-free proxies rank architectures? NASWOT, parameters, FLOPs.

  python bench/proxy_correlation.py                       # toy and macro, 100 each
  python bench/proxy_correlation.py --spaces=macro --archs=200 --filters=24
  python bench/proxy_correlation.py --no-train            # scoring speed only

For each space it samples `--archs` distinct architectures (seeded), scores them
all untrained with NASWOT (timed, before anything is trained), counts their
parameters and multiply-accumulates (FLOPs here = MACs of the convolution and dense
layers for one image), then trains each as a search child (`manager.NetworkManager`,
same seed per architecture, so the scored network is the one that gets trained) and
measures its validation accuracy. Reports Kendall tau and Spearman rho of each
proxy against the accuracy, and the scoring time per architecture.

Per-architecture rows go to bench/results/proxy_<space>.csv as soon as each is
done; rerunning with the same settings continues from there. The table goes to
bench/results/proxy_correlation_<spaces>.md (naswot_speed_<spaces>.md with --no-train).

Needs scipy (bench/requirements.txt).
"""

import argparse
import csv
import gc
import json
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
import naswot  # noqa: E402
import poisoning  # noqa: E402
import search  # noqa: E402
import zero_cost  # noqa: E402

RESULTS = ROOT / "bench" / "results"
FIELDS = ["index", "architecture", "naswot", "relu_units", "params", "flops", "score_seconds"]
FIELDS += ["val_accuracy", "train_seconds", "failed"]


def sample_distinct(space, n, seed):
    rng, seen, out = np.random.default_rng(seed), set(), []
    if space.num_architectures < n:
        sys.exit(f"proxy_correlation.py: error: --archs={n} is more than the space holds")
    while len(out) < n:
        a = space.sample(rng)
        if a not in seen:
            seen.add(a)
            out.append(a)
    return out


def read_rows(path):
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        return {int(r["index"]): r for r in csv.DictReader(f)}


def run_space(name, args, dataset):
    config = config_lib.SearchConfig(
        space=name,
        filters=args.filters,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        cache=False,
    ).resolved()
    space, template = poisoning.make_space(config)
    m = search.make_manager(config, dataset, space, template)  # The children train.py trains.
    archs = sample_distinct(space, args.archs, args.seed)
    path = args.out / f"proxy_{name}.csv"
    settings = {k: v for k, v in vars(args).items() if k not in ("spaces", "train", "out")}
    settings_path = path.with_suffix(".json")
    if path.exists() and args.train:
        saved = json.loads(settings_path.read_text()) if settings_path.exists() else None
        if saved != settings:
            sys.exit(
                f"proxy_correlation.py: error: {path} holds rows of other settings ({saved}); "
                f"move it away or pass another --out"
            )
    elif args.train:
        settings_path.write_text(json.dumps(settings, indent=2) + "\n")
    done = read_rows(path) if args.train else {}
    # 1. Score every architecture untrained, timed on its own (warm-up excluded).
    m.scorer.score(archs[0])
    scores, started = [], time.perf_counter()
    for a in archs:
        scores.append(m.scorer.score(a))
    score_wall = time.perf_counter() - started
    print(f"{name}: scored {len(archs)} in {score_wall:.1f} s ({len(archs) / score_wall:.1f}/s)")
    if not args.train:
        phases = phase_times(m, archs[:20])
        print(f"{name}: median ms per phase {phases}")
        return phases, scores, score_wall
    # 2. Train each, appending rows as they finish.
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(FIELDS)
        for i, (a, s) in enumerate(zip(archs, scores)):
            if i in done:
                continue
            flops = zero_cost.flops(m.build_model(a))
            keras.backend.clear_session()
            r = m.evaluate(a)
            row = [i, space.format(a), f"{s.score:.4f}", s.relu_units, s.params, flops]
            row += [
                f"{s.seconds:.4f}",
                f"{r.accuracy:.4f}",
                f"{r.train_seconds:.2f}",
                int(r.failed),
            ]
            w.writerow(row)
            f.flush()
            done[i] = dict(zip(FIELDS, map(str, row)))
            print(f"{name} {i + 1}/{len(archs)}: naswot {s.score:.1f} acc {r.accuracy:.4f}")
    return [done[i] for i in range(len(archs))], scores, score_wall


def phase_times(m, archs):
    """Median milliseconds of the phases of one score: building the Keras model, the
    forward pass that gives the codes, and kernel + log-determinant."""
    times = {"build": [], "forward": [], "kernel": []}
    for a in archs:
        keras.utils.set_random_seed(m.child_seed(a))
        t0 = time.perf_counter()
        model = m.build_model(a)
        t1 = time.perf_counter()
        codes = naswot.binary_codes(model, m.scorer.batch)
        keras.ops.convert_to_numpy(codes[-1])
        t2 = time.perf_counter()
        naswot.score_kernel(naswot.kernel(codes))
        t3 = time.perf_counter()
        for key, seconds in zip(times, (t1 - t0, t2 - t1, t3 - t2)):
            times[key].append(seconds)
        del model
        keras.backend.clear_session()
    return {k: 1000 * float(np.median(v)) for k, v in times.items()}


def correlations(rows):
    from scipy import stats  # pylint: disable=import-outside-toplevel (bench requirement)

    acc = np.array([float(r["val_accuracy"]) for r in rows])
    out = {}
    for proxy in ("naswot", "params", "flops"):
        x = np.array([float(r[proxy]) for r in rows])
        tau, p_tau = stats.kendalltau(x, acc)
        rho, p_rho = stats.spearmanr(x, acc)
        out[proxy] = (tau, p_tau, rho, p_rho)
    return out, acc


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spaces", default="toy,macro")
    parser.add_argument("--archs", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train_size", type=int, default=2000)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--filters", type=int, default=12, help="Width of macro children.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", default=str(RESULTS), help="Folder of the CSVs and the table.")
    args = parser.parse_args()
    args.out = pathlib.Path(args.out)
    spaces = [s.strip() for s in args.spaces.split(",") if s.strip()]
    for s in spaces:
        if s not in ("toy", "macro"):
            parser.error(f"--spaces: unknown space {s!r}; allowed: toy, macro")
    if args.archs < 3:
        parser.error(f"--archs must be >= 3, got {args.archs}")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        tf.config.experimental.enable_op_determinism()
    dataset = data.load_dataset("mnist5k", train_size=args.train_size, val_size=500, seed=0)
    gc.collect()
    gc.freeze()
    args.out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Training-free proxies against trained accuracy",
        "",
        f"`python bench/proxy_correlation.py {' '.join(sys.argv[1:])}`".replace(" `", "`"),
        "",
        f"mnist5k, {args.train_size} training images, validation 500; children trained "
        f"{args.epochs} epochs, batch {args.batch_size}, Adam 3e-3; macro width "
        f"{args.filters}; NASWOT minibatch 128; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Keras {keras.__version__} ({keras.backend.backend()}).",
        "",
        "| space | archs | val acc range | proxy | Kendall τ (p) | Spearman ρ (p) |",
        "|---|---|---|---|---|---|",
    ]
    timing = [
        "",
        "| space | NASWOT scoring: archs/s | median s/arch | N_A (median) |"
        + ("" if args.train else " build ms | forward ms | kernel + log-det ms |"),
        "|---|---|---|---|" + ("" if args.train else "---|---|---|"),
    ]
    for name in spaces:
        rows, scores, wall = run_space(name, args, dataset)
        seconds = [s.seconds for s in scores]
        timing.append(
            f"| {name} | {len(scores) / wall:.1f} | {np.median(seconds):.3f} | "
            f"{int(np.median([s.relu_units for s in scores])):,} |"
        )
        if not args.train:  # `rows` are the phase times.
            timing[-1] += " | ".join(f" {rows[k]:.0f}" for k in ("build", "forward", "kernel"))
            timing[-1] += " |"
            continue
        corr, acc = correlations(rows)
        for proxy, (tau, p_tau, rho, p_rho) in corr.items():
            lines.append(
                f"| {name} | {len(rows)} | {acc.min():.3f}-{acc.max():.3f} | {proxy} | "
                f"{tau:+.3f} ({p_tau:.1g}) | {rho:+.3f} ({p_rho:.1g}) |"
            )
    text = "\n".join((lines if args.train else lines[:5]) + timing) + "\n"
    tag = "_".join(spaces)
    out = args.out / (f"proxy_correlation_{tag}.md" if args.train else f"naswot_speed_{tag}.md")
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
