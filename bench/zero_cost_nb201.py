"""How well do the zero-cost proxies rank NAS-Bench-201 cells, beside the published values?

  python bench/zero_cost_nb201.py --cells=1000                 # synflow, params, flops
  python bench/zero_cost_nb201.py --cells=200 --proxies=naswot,snip,grad_norm,params \
      --name=zero_cost_nb201_data                              # the scores that read images
  python bench/zero_cost_nb201.py --cells=300 --proxies=naswot,synflow,snip,grad_norm,params \
      --images=cifar10 --naslib_cells --name=zero_cost_nb201_cifar10   # CIFAR-10, vs NASLib

Samples `--cells` distinct cells of the 15,625 (seeded), builds each as the benchmark's
Keras network (`templates.build_nb201`: C=16, N=5 unless --channels/--cells_per_stage say
otherwise, 32x32x3 inputs, 10 classes), initialized from the cell's table row as seed,
scores it untrained with each proxy (zero_cost.py; `naswot`: naswot.score_model on 128
images), and reports Spearman rho and Kendall tau of each proxy against the table's
CIFAR-10 test accuracy (200 epochs), with 95% bootstrap intervals, beside Abdelfattah et
al.'s values over all 15,625 cells and NASWOT's published tau (Mellor et al. 2021). synflow,
params and flops need no data, so they compare with the paper exactly (up to the
initialization's random draw). naswot, snip and grad_norm need images and CIFAR-10 is not
on this machine: with --images=mnist they get images of the embedded MNIST subset (--batch
for snip and grad_norm, with their labels; 128 for NASWOT), padded to 32x32 and repeated
over 3 channels; with --images=cifar10 (the default) real CIFAR-10 training images of the
embedded subset (`--dataset=cifar10_5k`), un-augmented, as the papers used.

Against NASLib: bench/data/nb201_zero_cost_naslib.csv.gz holds NASLib's own scores of 9,445
cells (its PyTorch network and initialisation, one CIFAR-10 minibatch); for every scored
cell it has, the Spearman rho of our score against NASLib's of the same formula (naswot:
NASLib's nwot), and NASLib's score's own rho against the table on the same cells.

Then the NASWOT-style search with each proxy (score N random cells, keep the best-scored,
look up its accuracy): the scored cells, in their sampling order, cut into disjoint groups
of N = 10, 100, 1000; the first group is seed 0, and the mean over every group says how
much one seed says.

One row per cell goes to bench/results/<name>.csv as soon as it is scored (a rerun with
the same settings continues); the tables go to bench/results/<name>.md. Needs scipy
(bench/requirements.txt).
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
import naswot  # noqa: E402
import nb201  # noqa: E402
import state_space  # noqa: E402
import templates  # noqa: E402
import zero_cost  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# Spearman rho over all 15,625 cells on CIFAR-10 (Abdelfattah et al. 2021).
PUBLISHED = {"synflow": 0.737, "snip": 0.596, "grad_norm": 0.594}
# Kendall tau of NASWOT on CIFAR-10 (Mellor et al. 2021), and its search with N = 100:
# the pick's CIFAR-10 test accuracy, mean ± sd over their runs (Mellor et al. 2021; Dong & Yang 2020).
PUBLISHED_TAU = {"naswot": 0.574}
PUBLISHED_SEARCH = {("naswot", 100): "92.81 ± 0.99"}
SEARCH_SIZES = (10, 100, 1000)


NASLIB = ROOT / "bench" / "data" / "nb201_zero_cost_naslib.csv.gz"
# Our proxy -> NASLib's column of the same formula.
NASLIB_NAMES = {"naswot": "nwot", "synflow": "synflow", "snip": "snip", "grad_norm": "grad_norm",
                "params": "params", "flops": "flops"}


def image_batch(images, n, seed):
    """n training images as 32x32x3 with their labels: CIFAR-10's (the embedded subset), or
    MNIST's zero-padded with the channel repeated."""
    if images == "cifar10":
        ds = data.load_dataset("cifar10_5k", val_size=100, train_size=max(n, 100), seed=seed)
        return ds.x_train[:n], ds.y_train[:n]
    ds = data.load_dataset("mnist5k", val_size=100, train_size=max(n, 100), seed=seed)
    x = np.pad(ds.x_train[:n], ((0, 0), (2, 2), (2, 2), (0, 0)))
    return np.repeat(x, 3, axis=-1).astype("float32"), ds.y_train[:n]


def naslib_scores():
    """{NATS-Bench index: {NASLib score name: value}} of the cells NASLib scored."""
    import gzip  # pylint: disable=import-outside-toplevel

    with gzip.open(NASLIB, "rt", newline="") as f:
        return {int(r["Index"]): r for r in csv.DictReader(f)}


def read_rows(path):
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--proxies", default="synflow,params,flops")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells_per_stage", type=int, default=5)
    parser.add_argument("--batch", type=int, default=zero_cost.BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", choices=("cifar10", "mnist"), default="cifar10",
                        help="The images of naswot, snip and grad_norm.")
    parser.add_argument("--naslib_cells", action="store_true",
                        help="Sample among the 9,445 cells NASLib scored (every cell compared).")
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--name", default="zero_cost_nb201", help="bench/results/<name>.csv and .md")
    args = parser.parse_args()
    proxies = args.proxies.split(",")
    allowed = ("naswot", *zero_cost.PROXIES)
    unknown = [p for p in proxies if p not in allowed]
    if unknown or not 1 <= args.cells <= nb201.CELLS:
        parser.error(f"--proxies from {','.join(allowed)} and 1 <= --cells <= {nb201.CELLS}")

    table = nb201.load_table()
    space = state_space.nb201_space()
    pool = np.array(sorted(naslib_scores())) if args.naslib_cells else np.arange(nb201.CELLS)
    rows_to_score = np.random.default_rng(args.seed).permutation(pool)[: args.cells]
    x, y = image_batch(args.images, args.batch, args.seed) if set(proxies) & set(zero_cost.NEEDS_LABELS) \
        else (None, None)
    images = image_batch(args.images, naswot.BATCH_SIZE, args.seed)[0] if "naswot" in proxies else None
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{args.name}.csv"
    fields = ["row", "cell", "cifar10", *proxies, *[f"{p}_seconds" for p in proxies], "build_seconds"]
    settings = f"channels={args.channels} cells={args.cells_per_stage} batch={args.batch} seed={args.seed}"
    if args.images != "mnist":  # The rows written before the flag existed are MNIST's.
        settings += f" images={args.images}"
    settings += " naslib_cells" if args.naslib_cells else ""
    done = [r for r in read_rows(path) if r.get("settings") == settings and all(p in r for p in proxies)]
    seen = {int(r["row"]) for r in done}
    new = not path.exists() or not done
    with open(path, "w" if new else "a", newline="") as f:
        writer = csv.DictWriter(f, fields + ["settings"], extrasaction="ignore")
        if new:
            writer.writeheader()
        for n, row in enumerate(rows_to_score):
            if int(row) in seen:
                continue
            cell = table.strings[row]
            start = time.perf_counter()
            keras.utils.set_random_seed(int(row))
            model = templates.build_nb201(space, space.from_string(cell), (32, 32, 3), 10,
                                        channels=args.channels, cells=args.cells_per_stage)
            result = {"row": int(row), "cell": cell, "cifar10": table.accuracy["cifar10"][row],
                      "build_seconds": round(time.perf_counter() - start, 3), "settings": settings}
            for proxy in proxies:
                start = time.perf_counter()
                if proxy == "naswot":
                    result[proxy] = naswot.score_model(model, images)
                else:
                    result[proxy] = zero_cost.score(proxy, model, x, y)
                result[f"{proxy}_seconds"] = round(time.perf_counter() - start, 3)
            writer.writerow(result)
            f.flush()
            done.append({k: str(v) for k, v in result.items()})
            del model
            keras.backend.clear_session()
            if (n + 1) % 25 == 0:
                print(f"{n + 1}/{args.cells} cells scored", flush=True)
    report(done[: args.cells], proxies, args, settings)


def report(rows, proxies, args, settings):
    from scipy import stats as sp  # pylint: disable=import-outside-toplevel

    accuracy = np.array([float(r["cifar10"]) for r in rows])
    lines = [
        f"# Zero-cost proxies on NAS-Bench-201 (CIFAR-10), {len(rows)} random cells",
        "",
        f"`python bench/zero_cost_nb201.py --cells={args.cells} --proxies={','.join(proxies)} "
        f"--images={args.images}{' --naslib_cells' if args.naslib_cells else ''} --name={args.name}` "
        f"({settings}; {platform.processor() or platform.machine()}, Keras {keras.__version__} on "
        f"{keras.backend.backend()}, {time.strftime('%Y-%m-%d')}). Accuracy: the table's CIFAR-10 "
        f"test accuracy at 200 epochs. Intervals: 95% bootstrap over cells ({args.bootstrap} "
        f"resamples). Published: Spearman rho over all 15,625 cells (Abdelfattah et al. 2021).",
        "",
        "| proxy | Spearman rho [95% CI] | Kendall tau [95% CI] | published rho | seconds per cell (median) |",
        "|---|---|---|---|---|",
    ]
    for proxy in proxies:
        values = np.array([float(r[proxy]) for r in rows])
        cells = []
        for fn in (lambda a, b: sp.spearmanr(a, b).statistic, lambda a, b: sp.kendalltau(a, b).statistic):
            point = fn(values, accuracy)
            ci = sp.bootstrap((values, accuracy), fn, paired=True, vectorized=False, n_resamples=args.bootstrap,
                              method="percentile", random_state=np.random.default_rng(args.seed)).confidence_interval
            cells.append(f"{point:.3f} [{ci.low:.3f}, {ci.high:.3f}]")
        seconds = np.median([float(r[f"{proxy}_seconds"]) for r in rows])
        published = PUBLISHED.get(proxy, f"tau {PUBLISHED_TAU[proxy]}" if proxy in PUBLISHED_TAU else "")
        lines.append(f"| {proxy} | {cells[0]} | {cells[1]} | {published} | {seconds:.3f} |")
    build = np.median([float(r["build_seconds"]) for r in rows])
    lines += ["", f"Building a network: {build:.2f} s per cell (median), not counted above."]
    what = ("CIFAR-10 training images (the embedded subset, un-augmented)" if args.images == "cifar10"
            else "MNIST images (32x32x3, padded and repeated), not CIFAR-10")
    if set(proxies) & set(zero_cost.NEEDS_LABELS):
        lines.append(f"snip and grad_norm: one batch of {args.batch} {what}, with their labels.")
    if "naswot" in proxies:
        lines.append(f"naswot: one batch of {naswot.BATCH_SIZE} {what}; the network has 10 classes "
                     f"(the paper's: 1).")
    lines += naslib_table(rows, proxies, accuracy, args)
    lines += search_table(rows, proxies, accuracy)
    text = "\n".join(lines) + "\n"
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


def naslib_table(rows, proxies, accuracy, args):
    """Our score against NASLib's of the same formula, cell by cell, and both against the
    table, on the scored cells NASLib has."""
    from scipy import stats as sp  # pylint: disable=import-outside-toplevel

    reference = naslib_scores()
    shared = [i for i, r in enumerate(rows) if int(r["row"]) in reference]
    compared = [p for p in proxies if p in NASLIB_NAMES]
    if not shared or not compared:
        return []
    lines = [
        "",
        f"## Against NASLib's scores of the same cells ({len(shared)} of the {len(rows)} scored "
        f"cells are among NASLib's 9,445)",
        "",
        "Spearman rho [95% bootstrap CI] of our score against NASLib's (its PyTorch network, "
        "initialisation and CIFAR-10 minibatch), and of each against the table's CIFAR-10 test "
        "accuracy on these cells.",
        "",
        "| ours | NASLib's | ours vs NASLib's | ours vs accuracy | NASLib's vs accuracy |",
        "|---|---|---|---|---|",
    ]
    truth = accuracy[shared]

    def rho(a, b):
        point = sp.spearmanr(a, b).statistic
        ci = sp.bootstrap((a, b), lambda u, v: sp.spearmanr(u, v).statistic, paired=True,
                          vectorized=False, n_resamples=args.bootstrap, method="percentile",
                          random_state=np.random.default_rng(args.seed)).confidence_interval
        return f"{point:.3f} [{ci.low:.3f}, {ci.high:.3f}]"

    for proxy in compared:
        ours = np.array([float(rows[i][proxy]) for i in shared])
        theirs = np.array([float(reference[int(rows[i]["row"])][NASLIB_NAMES[proxy]]) for i in shared])
        lines.append(f"| {proxy} | {NASLIB_NAMES[proxy]} | {rho(ours, theirs)} | {rho(ours, truth)} | "
                     f"{rho(theirs, truth)} |")
    return lines


def search_table(rows, proxies, accuracy):
    """NASWOT-style search with each proxy: per N, the best-scored cell's accuracy (%) in
    the first group of N cells (seed 0) and over every disjoint group of N."""
    sizes = [n for n in SEARCH_SIZES if n <= len(rows)]
    if not sizes:
        return []
    lines = [
        "",
        f"## Search: score N random cells, keep the best-scored ({len(rows)} cells, cut into "
        f"disjoint groups of N)",
        "",
        "| proxy | N | seed 0: CIFAR-10 test % of the pick | mean ± sd over groups (groups) | published |",
        "|---|---|---|---|---|",
    ]
    for proxy in (*proxies, "table (best by accuracy)", "random pick (the group's first cell)"):
        for n in sizes:
            picks = []
            for start in range(0, len(rows) - n + 1, n):
                group = accuracy[start:start + n]
                if proxy.startswith("table"):
                    picks.append(group.max())
                elif proxy.startswith("random"):
                    picks.append(group[0])
                else:  # The first of the best-scored: sampling order breaks ties.
                    values = np.array([float(r[proxy]) for r in rows[start:start + n]])
                    picks.append(group[int(np.argmax(values))])
            picks = 100 * np.array(picks)
            spread = f"{picks.mean():.2f} ± {picks.std(ddof=1):.2f} ({len(picks)})" if len(picks) > 1 else "one group"
            lines.append(f"| {proxy} | {n} | {picks[0]:.2f} | {spread} | {PUBLISHED_SEARCH.get((proxy, n), '')} |")
    return lines


if __name__ == "__main__":
    main()
