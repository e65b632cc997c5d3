"""Tables and plots of finished searches: results.csv, summary.md, PNG curves.

Reads only what the runs wrote (history.csv, best.json); pure Python, NumPy and
matplotlib (Agg backend: no display needed).
"""

import collections
import csv
import os

import numpy as np

from run_log import accuracy_column, atomic_write


def write_results(path, rows, columns):
    """Writes one CSV row per run, atomically."""
    with atomic_write(path, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k, "")) for k in columns})


def _cell(value):
    if isinstance(value, float):
        return f"{value:.6f}"
    return value


def read_history(path):
    """history.csv -> per step: (mean fitness, mean poisoned layers) of its children; the
    fitness is the validation accuracy (a table's reward), or the training-free score (the `<score>_score`
    column: naswot_score, synflow_score, ...) of children scored untrained."""
    steps = collections.defaultdict(lambda: ([], []))
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        score = next((c for c in reader.fieldnames or () if c.endswith("_score")), None)
        column = accuracy_column(reader.fieldnames)  # val_accuracy, or a table's metric.
        for row in reader:
            accuracies, poisoned = steps[int(row["step"])]
            accuracies.append(float(row[column] or (score and row[score]) or "nan"))
            poisoned.append(int(row.get("poisoned_layers") or 0))
    return {s: (float(np.mean(a)), float(np.mean(p))) for s, (a, p) in sorted(steps.items())}


def mean_std(values):
    values = [float(v) for v in values if v not in ("", None)]
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


def _reached(values):
    """'k/n: mean ± std' of the runs that reached the accuracy (blank values did not)."""
    reached = [float(v) for v in values if v != ""]
    if not reached:
        return f"0/{len(values)}"
    spread = f" ± {np.std(reached, ddof=1):.1f}" if len(reached) > 1 else ""
    return f"{len(reached)}/{len(values)}: {np.mean(reached):.1f}{spread}"


def write_summary(path, rows, total_runs, columns):
    """summary.md: per setting and strategy, mean ± std over seeds; poison verdicts.

    Args:
      rows: results.csv rows (dicts) of the finished runs.
      total_runs: runs in the grid, finished or not.
      columns: (row key, header) pairs to report.
    """
    groups = collections.OrderedDict()
    for row in rows:
        groups.setdefault((row["setting"], row["strategy"]), []).append(row)
    header = ["setting", "strategy", "seeds"] + [h for _, h in columns] + ["uniform prior"]
    lines = [
        "# Controller assessment",
        "",
        f"{len(rows)} of {total_runs} runs finished. Mean ± sample std over seeds; "
        "the poison rate is the fraction of poisoned layers among the children sampled, "
        "the prior that of a uniform sampler.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for (setting, strategy), group in groups.items():
        cells = [setting, strategy, ",".join(str(r["seed"]) for r in group)]
        cells += [
            _reached([r[key] for r in group]) if key == "trials_to_reach"
            else mean_std([r[key] for r in group])
            for key, _ in columns
        ]
        prior = group[0].get("poison_prior", "")
        cells.append(f"{float(prior):.3f}" if prior != "" else "")
        lines.append("| " + " | ".join(cells) + " |")
    verdicts = poison_verdicts(rows)
    if verdicts:
        lines += ["", "## Does the controller avoid the poison?", ""]
        lines += [f"- {v}" for v in verdicts]
    with atomic_write(path) as f:
        f.write("\n".join(lines) + "\n")


def poison_verdicts(rows):
    """One sentence per poisoned setting with controller and random runs."""
    rates = collections.defaultdict(list)
    for row in rows:
        if row.get("last_quarter_poison_rate", "") != "":
            rates[(row["setting"], row["strategy"])].append(float(row["last_quarter_poison_rate"]))
    verdicts = []
    for setting in dict.fromkeys(s for s, _ in rates):
        controller, random = rates.get((setting, "controller")), rates.get((setting, "random"))
        if not controller or not random:
            continue
        c, r = float(np.mean(controller)), float(np.mean(random))
        if c < r / 2:
            outcome = "below half of random's."
        elif r > 0:
            outcome = f"NOT below half of random's ({c / r:.2f} of it)."
        else:
            outcome = "random picked no poison."
        verdicts.append(
            f"{setting}: last-quarter poison rate {c:.3f} (controller, {len(controller)} seeds) "
            f"against {r:.3f} (random, {len(random)} seeds): {outcome}"
        )
    return verdicts


def plot_per_step(histories, out, priors=None, fitness="validation accuracy"):
    """poison_rate.png and accuracy.png: per step, mean over seeds, a line per strategy.

    Args:
      histories: {(setting, strategy, seed): (per-step dict of read_history, num_layers)}.
      out: the folder to write into.
      priors: {setting: uniform poison rate}, drawn as a dashed line.
      fitness: what read_history's fitness is, for the axis label.
    """
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    from matplotlib.ticker import MaxNLocator  # pylint: disable=import-outside-toplevel

    priors = priors or {}
    settings = list(dict.fromkeys(s for s, _, _ in histories))
    for name, index, ylabel, wanted in (
        ("accuracy.png", 0, f"mean {fitness} of the step's children", settings),
        ("poison_rate.png", 1, "poisoned layers / layers", [s for s in settings if s in priors]),
    ):
        if not wanted:
            continue
        fig, axes = plt.subplots(
            1, len(wanted), figsize=(5 * len(wanted), 3.6), squeeze=False, sharey=True
        )
        for ax, setting in zip(axes[0], wanted):
            strategies = list(dict.fromkeys(st for s, st, _ in histories if s == setting))
            for strategy in strategies:
                curves = [
                    _curve(h, index, layers)
                    for (s, st, _), (h, layers) in histories.items()
                    if s == setting and st == strategy
                ]
                steps = min(len(c) for c in curves)
                if steps == 0:
                    continue
                stacked = np.array([c[:steps] for c in curves])
                mean = stacked.mean(axis=0)
                x = np.arange(steps)
                (line,) = ax.plot(x, mean, label=f"{strategy} ({len(curves)} seeds)")
                if len(curves) > 1:
                    ax.fill_between(
                        x,
                        stacked.min(axis=0),
                        stacked.max(axis=0),
                        alpha=0.15,
                        color=line.get_color(),
                    )
            if index == 1:
                ax.axhline(priors[setting], color="gray", linestyle="--", label="uniform prior")
                ax.set_ylim(0, 1)
            ax.set_title(setting, fontsize=9)
            ax.set_xlabel("controller step")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        axes[0][0].set_ylabel(ylabel, fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, name + ".tmp.png"), dpi=110)
        plt.close(fig)
        os.replace(os.path.join(out, name + ".tmp.png"), os.path.join(out, name))


def _curve(history, index, layers):
    values = [v[index] for _, v in sorted(history.items())]
    if index == 1:
        values = [v / layers for v in values]
    return values
