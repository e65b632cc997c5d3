"""The hidden-state probe: does a trained controller's LSTM state encode its choices?

  python probe.py --run=logs/toy-controller-seed0            # 100 samples, 999 permutations
  python probe.py --run=logs/macro-memory_controller-seed0 --samples=200

After Adam & Lorraine (2019): sample architectures from the run's
trained controller (its last checkpoint), take the LSTM's hidden state after the last
decision (teacher-forced), and rank-correlate (Spearman) the pairwise hidden-state
distances with

- the Hamming distance between the architectures (decisions that differ);
- for spaces with skip connections, a graph distance: the size of the symmetric
  difference of the two networks' path sets (each path from the stem to the last
  layer, written as the sequence of ops it passes through; the path encoding of
  White et al., BANANAS);
- the difference in fitness, over the run's children whose validation accuracy (or
  shared-weights score) is known, from history.csv.

As the reference, the same on the run's controller before its first update (same
settings and seed): an LSTM's final state is a function of its inputs from the start,
so what training changes is the question, not whether the correlation is above 0.

Pairs of one sample are not independent, so the p-value is a Mantel test: the share
of `permutations` random relabellings of the architectures whose correlation is at
least as large. Written to `<run>/probe.json` and as TensorBoard scalars in
`<run>/probe/`. Works on any run folder of a controller strategy (controller,
budget_controller, memory_controller), trained or shared-weights evaluation.
"""

import csv
import itertools
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from scipy.spatial.distance import pdist, squareform  # noqa: E402
from scipy.stats import rankdata  # noqa: E402

import config as config_lib  # noqa: E402
import poisoning  # noqa: E402
import run_log  # noqa: E402
import run_state  # noqa: E402
import specs  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("run", None, "The run folder of a controller search.")
flags.DEFINE_integer("samples", 100, "Architectures sampled from the controller.")
flags.DEFINE_integer("permutations", 999, "Relabellings of the Mantel test.")
flags.DEFINE_integer("seed", 0, "Seeds the samples and the permutations.")

CONTROLLER_STRATEGIES = config_lib.CONTROLLERS


class ProbeError(ValueError):
    """A run folder the probe cannot read; the message says why."""


# ---------------------------------------------------------------------- distances


def hamming(space, architectures):
    """Condensed pairwise Hamming distances (decisions that differ)."""

    codes = np.array([space.encode(a) for a in architectures])
    return pdist(codes, metric="hamming") * codes.shape[1]


def paths(space, architecture):
    """The set of paths from the stem to the last layer, each the tuple of the ops
    it passes through (a skip connection into layer i bypasses layer i's op)."""
    layers = space.layers(architecture)
    label = [str(layer.get("op", tuple(sorted(layer.items())))) for layer in layers]
    # into[i]: the paths reaching the output of layer i; layer -1 is the stem.
    into = {-1: {()}}
    for i, layer in enumerate(layers):
        reached = {p + (label[i],) for p in into[i - 1]}
        for j in layer.get("inputs", ()):
            reached |= into[j]
        into[i] = reached
    return frozenset(into[len(layers) - 1])


def path_distance(space, architectures):
    """Condensed pairwise sizes of the symmetric difference of the path sets."""

    sets = [paths(space, a) for a in architectures]
    return np.array([len(a ^ b) for a, b in itertools.combinations(sets, 2)], dtype=float)


def mantel(x, y, permutations=999, seed=0):
    """Spearman correlation of two condensed distance vectors over the same items,
    and its one-sided Mantel p-value (relabelling the items of `y`).

    Returns:
      (rho, p); rho is nan when either vector is constant.
    """

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) != len(y) or len(x) < 3:
        raise ValueError(f"need two distance vectors of the same length >= 3, got {len(x)}, {len(y)}")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    rx, ry = rankdata(x), rankdata(y)
    rx = (rx - rx.mean()) / np.linalg.norm(rx - rx.mean())
    ry = (ry - ry.mean()) / np.linalg.norm(ry - ry.mean())
    rho = float(rx @ ry)
    square = squareform(ry)
    upper = np.triu_indices(square.shape[0], 1)
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(permutations):
        order = rng.permutation(square.shape[0])
        hits += float(rx @ square[order][:, order][upper]) >= rho - 1e-12
    return rho, (hits + 1) / (permutations + 1)


def correlate(hidden, architectures, space, fitness=None, permutations=999, seed=0):
    """The probe's table for hidden states of `architectures` (one row each).

    Returns:
      dict: for each architecture distance ("hamming", "paths" with skip
      connections, "fitness" when `fitness` is given), {"spearman", "p", "pairs"}
      against the Euclidean distance of the hidden states, and the same against
      their cosine distance under "<name>_cosine".
    """

    hidden = np.asarray(hidden, float)
    distances = {"euclidean": pdist(hidden), "cosine": pdist(hidden, metric="cosine")}
    targets = {"hamming": hamming(space, architectures)}
    if space.skip_connections:
        targets["paths"] = path_distance(space, architectures)
    if fitness is not None:
        targets["fitness"] = pdist(np.asarray(fitness, float).reshape(-1, 1), metric="cityblock")
    table = {}
    for name, target in targets.items():
        for kind, d in distances.items():
            rho, p = mantel(d, target, permutations, seed)
            key = name if kind == "euclidean" else f"{name}_cosine"
            table[key] = {"spearman": rho, "p": p, "pairs": len(target)}
    return table


# ---------------------------------------------------------------------- run folders


def load_controller(run_dir):
    """(config, space, controller) of a run folder's last controller checkpoint."""
    config = config_lib.read_config(run_dir)
    if not specs.strategy(config.strategy).controller:
        raise ProbeError(
            f"{run_dir} is a --strategy={config.strategy} run; the probe reads a controller "
            f"(--strategy={', '.join(CONTROLLER_STRATEGIES)})"
        )
    import controller as controller_lib  # pylint: disable=import-outside-toplevel

    checkpoint = run_state.read_state(run_dir).strategy["checkpoint"]
    if not checkpoint:
        raise ProbeError(f"{run_dir} has no controller checkpoint yet (no step finished)")
    space, _ = poisoning.make_space(config)
    try:
        controller = controller_lib.Controller.load(os.path.join(run_dir, checkpoint), space)
    except controller_lib.ControllerError as e:
        raise ProbeError(str(e)) from None
    return config, space, controller


def known_fitness(run_dir, space, limit):
    """(architectures, fitness) of the run's last `limit` distinct children with a
    known validation accuracy or score (history.csv; failed children left out)."""
    by_value = [{str(c): c for c in d.choices} for d in space.decisions]
    seen = {}
    with open(os.path.join(run_dir, "history.csv"), newline="") as f:
        reader = csv.DictReader(f)
        column = run_log.accuracy_column(reader.fieldnames)  # val_accuracy, or a table's.
        for row in reader:
            if row.get("failed") == "1" or not row.get(column):
                continue
            try:
                architecture = tuple(
                    by_value[i][row[d.key]] for i, d in enumerate(space.decisions)
                )
            except KeyError:
                continue
            seen.pop(architecture, None)
            seen[architecture] = float(row[column])
    items = list(seen.items())[-limit:]
    return [a for a, _ in items], [v for _, v in items]


def probe(run_dir, samples=100, permutations=999, seed=0):
    """Runs the probe on a run folder; returns the report (also written to
    `<run>/probe.json` and TensorBoard scalars in `<run>/probe/`)."""
    if samples < 3:
        raise ProbeError(f"--samples must be >= 3, got {samples}")
    if permutations < 1:
        raise ProbeError(f"--permutations must be >= 1, got {permutations}")
    config, space, controller = load_controller(run_dir)
    controller.rng = np.random.default_rng(seed)  # The run's own generator is left alone.
    sampled = controller.sample(samples)
    report = {
        "run": run_dir,
        "strategy": config.strategy,
        "memory_size": controller.hparams["memory_size"],
        "updates": controller.updates,
        "samples": samples,
        "distinct_samples": len(set(map(tuple, sampled))),
        "permutations": permutations,
        "sampled": correlate(
            controller.hidden_states(sampled), sampled, space, None, permutations, seed
        ),
    }
    # The reference: the same probe on the run's controller before its first update
    # (same settings and seed): an LSTM's state is a function of its inputs from the start.
    untrained = type(controller)(space, seed=controller.seed, **controller.hparams)
    untrained.rng = np.random.default_rng(seed)
    first = untrained.sample(samples)
    report["untrained"] = correlate(
        untrained.hidden_states(first), first, space, None, permutations, seed
    )
    architectures, fitness = known_fitness(run_dir, space, samples)
    if len(architectures) >= 3:
        report["children"] = correlate(
            controller.hidden_states(architectures), architectures, space, fitness,
            permutations, seed,
        )
        report["children_count"] = len(architectures)
    run_log.write_json(os.path.join(run_dir, "probe.json"), report)
    scalars = {
        f"probe/{group}/{name}": row["spearman"]
        for group in ("sampled", "untrained", "children")
        for name, row in report.get(group, {}).items()
        if np.isfinite(row["spearman"])
    }
    run_log.write_tensorboard_scalars(os.path.join(run_dir, "probe"), controller.updates, scalars)
    return report


def format_report(report):
    lines = [
        f"probe of {report['run']} ({report['strategy']}, {report['updates']} updates, "
        f"memory {report['memory_size']}): {report['samples']} samples "
        f"({report['distinct_samples']} distinct), Mantel test with {report['permutations']} "
        f"permutations",
        f"{'hidden distance vs':32} {'spearman':>9} {'p':>7} {'pairs':>7}",
    ]
    groups = (("sampled", "sampled"), ("untrained", "untrained"), ("children", "run's children"))
    for group, title in groups:
        for name, row in report.get(group, {}).items():
            lines.append(
                f"{title + ': ' + name:32} {row['spearman']:9.3f} {row['p']:7.3f} {row['pairs']:7d}"
            )
    return "\n".join(lines)


def main(argv):
    del argv
    if not FLAGS.run:
        print("probe.py: --run is required: the folder of a controller search", file=sys.stderr)
        sys.exit(2)
    if not os.path.isdir(FLAGS.run):
        print(f"probe.py: --run={FLAGS.run} is not a folder", file=sys.stderr)
        sys.exit(2)
    try:
        report = probe(FLAGS.run, FLAGS.samples, FLAGS.permutations, FLAGS.seed)
    except (ProbeError, config_lib.ConfigError) as e:
        print(f"probe.py: {e}", file=sys.stderr)
        sys.exit(2)
    print(format_report(report))
    print(f"written: {os.path.join(FLAGS.run, 'probe.json')}")


if __name__ == "__main__":
    app.run(main)
