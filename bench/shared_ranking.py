"""Does the supernet rank architectures as training them does? Kendall tau, per BN mode.

  python bench/shared_ranking.py                      # seeds 0,1; BN moving and batch
  python bench/shared_ranking.py --epochs=10,30 --seeds=0,1,2

The stand-alone accuracies are those of bench/proxy_correlation.py's macro run
(bench/results/proxy_macro.csv: 100 random 6-layer macro architectures, 12
channels, each trained from scratch for 2 epochs on 2,000 mnist5k images, validated
on the same 500 images). For each supernet seed and batch-normalization mode, a
supernet of that space (12 channels) is trained on the same 2,000 images with one
uniformly sampled architecture per minibatch (random search with weight sharing,
Li & Talwalkar 2019), and at each of `--epochs` every one of the 100 architectures
is scored with the shared weights: on the whole validation split, and on one
validation minibatch (the reward a search sees). Reported: Kendall tau and Spearman
rho of each against the stand-alone accuracy, beside NASWOT's and the parameter
count's on the same architectures (from the same CSV).

Writes bench/results/shared_ranking.md and shared_ranking.csv (one row per
architecture, seed, mode and epoch). Needs scipy (bench/requirements.txt).
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

import keras  # noqa: E402
import numpy as np  # noqa: E402

import data  # noqa: E402
import state_space  # noqa: E402
import weight_sharing  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def parse_architecture(space, text):
    """`op=conv3x3 | op=maxpool3x3 in=0 | ...` (StateSpace.format) -> architecture."""
    values = []
    for layer, part in enumerate(text.split(" | ")):
        fields = dict(item.split("=", 1) for item in part.split())
        sources = {int(j) for j in fields.get("in", "").split("+") if j}
        values.append(fields["op"])
        values.extend(int(j in sources) for j in range(layer))
    architecture = tuple(values)
    assert space.format(architecture) == text, (text, space.format(architecture))
    return architecture


def correlations(x, y):
    from scipy import stats  # pylint: disable=import-outside-toplevel

    return float(stats.kendalltau(x, y)[0]), float(stats.spearmanr(x, y)[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--standalone", type=pathlib.Path, default=RESULTS / "proxy_macro.csv")
    parser.add_argument("--seeds", default="0,1", help="Supernet seeds.")
    parser.add_argument("--modes", default="moving,batch", help="BN modes of the rewards.")
    parser.add_argument("--epochs", default="10,30", help="Epochs at which to score.")
    parser.add_argument("--filters", type=int, default=12)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--eval_batch", type=int, default=128)
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        tf.config.experimental.enable_op_determinism()  # As train.py: runs repeat.
    seeds = [int(s) for s in args.seeds.split(",")]
    modes = args.modes.split(",")
    checkpoints = sorted(int(e) for e in args.epochs.split(","))

    space = state_space.macro_space(6)
    with open(args.standalone, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["failed"] == "0"]
    architectures = [parse_architecture(space, r["architecture"]) for r in rows]
    standalone = np.array([float(r["val_accuracy"]) for r in rows])
    baselines = {
        "NASWOT score (untrained)": correlations([float(r["naswot"]) for r in rows], standalone),
        "parameter count": correlations([float(r["params"]) for r in rows], standalone),
    }
    # The split of proxy_correlation.py: 2,000 training images, 500 validation, seed 0.
    dataset = data.load_dataset("mnist5k", train_size=2000, val_size=500, seed=0)
    args.out.mkdir(parents=True, exist_ok=True)
    table, per_arch = [], []
    for mode in modes:
        for seed in seeds:
            ev = weight_sharing.SharedEvaluator(
                dataset,
                space,
                filters=args.filters,
                batch_size=args.batch_size,
                eval_batch=args.eval_batch,
                bn=mode,
                seed=seed,
            )
            rng = np.random.default_rng(seed)
            train_seconds = 0.0
            for epoch in range(1, checkpoints[-1] + 1):
                logs = ev.train_epoch(lambda n: space.sample(rng, n))
                train_seconds += logs["supernet/seconds"]
                if epoch not in checkpoints:
                    continue
                started = time.perf_counter()
                whole = np.array([ev.accuracy(a) for a in architectures])
                whole_seconds = (time.perf_counter() - started) / len(architectures)
                ev.step = epoch
                started = time.perf_counter()
                minibatch = np.array([ev.score(a, i) for i, a in enumerate(architectures)])
                minibatch_seconds = (time.perf_counter() - started) / len(architectures)
                tau, rho = correlations(whole, standalone)
                tau_mb, rho_mb = correlations(minibatch, standalone)
                line = dict(
                    mode=mode,
                    seed=seed,
                    epoch=epoch,
                    tau=tau,
                    rho=rho,
                    tau_minibatch=tau_mb,
                    rho_minibatch=rho_mb,
                    mean_shared=float(whole.mean()),
                    supernet_accuracy=logs["supernet/accuracy"],
                    train_seconds=train_seconds,
                    whole_ms=1000 * whole_seconds,
                    minibatch_ms=1000 * minibatch_seconds,
                )
                table.append(line)
                print(
                    f"bn={mode} seed={seed} epoch={epoch}: tau {tau:+.3f} (one minibatch "
                    f"{tau_mb:+.3f}), mean shared accuracy {whole.mean():.3f}, "
                    f"{train_seconds:.0f}s of training",
                    flush=True,
                )
                for a, s_whole, s_mb, acc in zip(architectures, whole, minibatch, standalone):
                    per_arch.append(
                        [mode, seed, epoch, space.format(a), f"{s_whole:.4f}", f"{s_mb:.4f}"]
                        + [f"{acc:.4f}"]
                    )
            del ev
            keras.backend.clear_session()
    with open(args.out / "shared_ranking.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["bn", "seed", "epoch", "architecture", "shared_val_accuracy"])
        w.writerows(per_arch)
    write_markdown(args, table, baselines, len(architectures))


def write_markdown(args, table, baselines, n):
    lines = [
        f"# Shared-weight ranking against stand-alone training ({n} macro architectures)",
        "",
        f"Command: `python bench/shared_ranking.py --seeds={args.seeds} --modes={args.modes} "
        f"--epochs={args.epochs}` (keras {keras.__version__}, backend "
        f"{keras.backend.backend()}, {os.cpu_count()} CPUs, {platform.machine()}).",
        "",
        "Stand-alone accuracy: bench/results/proxy_macro.csv (each architecture trained from "
        "scratch, 2 epochs, 2,000 mnist5k images, 12 channels). Supernet: 12 channels, the same "
        "2,000 images, one uniform architecture per minibatch of "
        f"{args.batch_size}, Nesterov SGD with cosine restarts (0.05 -> 0.0005), L2 2.5e-4. "
        f"Scores: accuracy with the shared weights on the whole validation split (500 images) and "
        f"on one validation minibatch of {args.eval_batch}.",
        "",
        "| BN statistics of the score | seed | supernet epochs | Kendall tau (whole split) | "
        "Spearman rho | Kendall tau (one minibatch) | mean shared accuracy | training s | "
        "ms per architecture (whole / minibatch) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in table:
        lines.append(
            f"| {t['mode']} | {t['seed']} | {t['epoch']} | {t['tau']:+.3f} | {t['rho']:+.3f} | "
            f"{t['tau_minibatch']:+.3f} | {t['mean_shared']:.3f} | {t['train_seconds']:.0f} | "
            f"{t['whole_ms']:.0f} / {t['minibatch_ms']:.0f} |"
        )
    lines += ["", "Mean over seeds:", "", "| BN | epochs | Kendall tau (whole) | tau (minibatch) |"]
    lines.append("| --- | --- | --- | --- |")
    keys = sorted({(t["mode"], t["epoch"]) for t in table})
    for mode, epoch in keys:
        group = [t for t in table if t["mode"] == mode and t["epoch"] == epoch]
        taus = [t["tau"] for t in group]
        taus_mb = [t["tau_minibatch"] for t in group]
        lines.append(
            f"| {mode} | {epoch} | {np.mean(taus):+.3f} ± {np.std(taus, ddof=1) if len(taus) > 1 else 0:.3f} "
            f"| {np.mean(taus_mb):+.3f} ± {np.std(taus_mb, ddof=1) if len(taus_mb) > 1 else 0:.3f} |"
        )
    lines += ["", "Baselines on the same architectures (no supernet):", ""]
    lines += ["| proxy | Kendall tau | Spearman rho |", "| --- | --- | --- |"]
    for name, (tau, rho) in baselines.items():
        lines.append(f"| {name} | {tau:+.3f} | {rho:+.3f} |")
    path = args.out / "shared_ranking.md"
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
