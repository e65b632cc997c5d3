"""NAS-Bench-201's table as an evaluation: a cell's accuracy by lookup, its rank, its regret.

The table (`embedded/nb201_accuracies.csv.gz`, attribution in `embedded/README.md`)
holds, for each of the benchmark's 15,625 cells, the test accuracy after 200 epochs
of training (mean over the benchmark's seeds) on CIFAR-10, CIFAR-100 and
ImageNet16-120. A search that rewards these numbers searches against an oracle:
the published protocols reward the 12-epoch validation accuracy of one seed and
report the pick's 200-epoch test accuracy (Dong & Yang 2020). Say so beside any result.

The other fidelities (`embedded/nb201_fidelities.csv.gz`) make the reward another
metric (`Benchmark(metric=...)`, `--benchmark_metric`): `valid12`, the 12-epoch
validation accuracy (on CIFAR-10 the `cifar10-valid` protocol's: trained on 25k of
the training images, validated on the other 25k; the paper's search reward), or
`valid200`, the 200-epoch validation accuracy. Whatever the reward, a pick is judged
by its 200-epoch test accuracy (`fitness`, `rank`, `best`).

`TimeModel` gives every cell a simulated training time (what `--benchmark_seconds`
charges a query): a linear model in the counts of each op over the six edges, fitted
to the benchmark's times of the 1,000 cells that are known
(`embedded/nb201_train_seconds_1000.csv.gz`, CIFAR-10, all 50k training images),
scaled by the images and the epochs of the reward's run.

`Benchmark(dataset).query(architecture)` answers by index: the cell's six ops give
a number in base 5, an array maps it to the table's row (the NATS-Bench index).
The parameter counts are arithmetic on the benchmark's network (C = 16, N = 5).

Pure Python and NumPy: no Keras, no TensorFlow. It knows nothing about searching.
"""

import csv
import dataclasses
import functools
import gzip
import io
import os

import numpy as np

import stats
from state_space import NB201_EDGES, NB201_OPS, op_of

DATASETS = ("cifar10", "cifar100", "imagenet16-120")
DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet16-120": "ImageNet16-120"}
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet16-120": 120}
_COLUMNS = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "imagenet16-120": "ImageNetTestAccuracy200Epochs",
}
CELLS = len(NB201_OPS) ** len(NB201_EDGES)  # 15,625
TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "embedded", "nb201_accuracies.csv.gz")
WHAT = (
    "200-epoch test accuracies (mean over the benchmark's seeds): a search against an oracle, "
    "unlike the published protocols (12-epoch validation accuracy of one seed)"
)
_EMBEDDED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "embedded")
FIDELITIES = os.path.join(_EMBEDDED, "nb201_fidelities.csv.gz")
TRAIN_SECONDS = os.path.join(_EMBEDDED, "nb201_train_seconds_1000.csv.gz")
# The metrics a search can be rewarded with (--benchmark_metric), what each is, and the
# epochs of the run behind it.
METRICS = ("test200", "valid12", "valid200")
METRIC_WHAT = {
    "test200": "200-epoch test accuracy",
    "valid12": "12-epoch validation accuracy",
    "valid200": "200-epoch validation accuracy",
}
EPOCHS = {"test200": 200, "valid12": 12, "valid200": 200}
_FIDELITY_COLUMNS = {
    ("valid12", "cifar10"): "Cifar10ValidValidationAccuracy12Epochs",
    ("valid12", "cifar100"): "Cifar100ValidationAccuracy12Epochs",
    ("valid12", "imagenet16-120"): "ImageNetValidationAccuracy12Epochs",
    ("valid200", "cifar10"): "Cifar10ValidValidationAccuracy200Epochs",
    ("valid200", "cifar100"): "Cifar100ValidationAccuracy200Epochs",
    ("valid200", "imagenet16-120"): "ImageNetValidationAccuracy200Epochs",
}
# The training images of the run behind each metric, where the time model applies: the
# known times are CIFAR-10's on all 50k training images; CIFAR-10's validation metrics
# are the `cifar10-valid` protocol's (25k of them), CIFAR-100's runs train on its 50k
# images of the same size. ImageNet16-120 (151.7k images of 16x16) has no known time.
TRAINING_IMAGES = {
    ("test200", "cifar10"): 50_000, ("valid12", "cifar10"): 25_000, ("valid200", "cifar10"): 25_000,
    ("test200", "cifar100"): 50_000, ("valid12", "cifar100"): 50_000, ("valid200", "cifar100"): 50_000,
}
TIMED_IMAGES = 50_000  # The training images behind the known times.
TIMED_EPOCHS = 12
_OP_INDEX = {op: i for i, op in enumerate(NB201_OPS)}
_PLACE = [len(NB201_OPS) ** (len(NB201_EDGES) - 1 - e) for e in range(len(NB201_EDGES))]


class BenchmarkError(ValueError):
    """The table cannot be read, or a cell or dataset it does not know."""


def cell_code(ops):
    """The six ops (benchmark names, edge order) as a number in 0..15,624: op index
    of edge 0->1 times 5**5, plus ... plus the op index of edge 2->3."""
    return sum(_OP_INDEX[op] * place for op, place in zip(ops, _PLACE))


def network_params(ops, channels=16, cells=5, num_classes=10, input_channels=3):
    """Trainable parameters of the benchmark's network of a cell (arithmetic, the
    counts of `templates.build_nb201`): 1,531,546 for the all-`nor_conv_3x3` cell and
    73,306 for a cell without convolutions at C = 16, N = 5, 3 channels, 10 classes.

    Raises:
      BenchmarkError: an op that is not one of the benchmark's.
    """
    per_channel = {"none": (0, 0), "skip_connect": (0, 0), "avg_pool_3x3": (0, 0)}
    per_channel.update({"nor_conv_1x1": (1, 2), "nor_conv_3x3": (9, 2)})  # (k*k, BN)
    for op in ops:
        if op not in per_channel:
            raise BenchmarkError(f"unknown op {op!r}; the benchmark's ops: {', '.join(NB201_OPS)}")
    c = channels
    total = 9 * input_channels * c + 2 * c  # Stem: conv 3x3 without bias, BN.
    for stage in range(3):
        width = c * 2**stage
        if stage:  # Residual block from width / 2: two ReLU-conv-BN and a 1x1 shortcut.
            half = width // 2
            total += 9 * half * width + 2 * width + 9 * width * width + 2 * width + half * width
        cell = sum(k * width * width + bn * width for k, bn in (per_channel[op] for op in ops))
        total += cells * cell
    width = 4 * c
    return total + 2 * width + width * num_classes + num_classes  # BN, dense.


def network_flops(ops, channels=16, cells=5, num_classes=10, input_channels=3, image_size=32):
    """Multiply-accumulates of one image through the convolution and dense layers of the
    benchmark's network of a cell (arithmetic, as `zero_cost.flops` counts a built one):
    7,783,040 for a cell without convolutions and 220,119,680 for the all-`nor_conv_3x3`
    cell at C = 16, N = 5, 32x32x3, 10 classes (the benchmark paper's 7.78 M and 220.12 M).

    Raises:
      BenchmarkError: an op that is not one of the benchmark's.
    """
    kernel = {"none": 0, "skip_connect": 0, "avg_pool_3x3": 0, "nor_conv_1x1": 1, "nor_conv_3x3": 9}
    for op in ops:
        if op not in kernel:
            raise BenchmarkError(f"unknown op {op!r}; the benchmark's ops: {', '.join(NB201_OPS)}")
    c, side = channels, image_size
    total = side * side * 9 * input_channels * c  # Stem.
    for stage in range(3):
        width, pixels = c * 2**stage, (side // 2**stage) ** 2
        if stage:  # The residual block, at the stage's size: two 3x3 convs and the 1x1 shortcut.
            half = width // 2
            total += pixels * (9 * half * width + 9 * width * width + half * width)
        total += cells * sum(pixels * kernel[op] * width * width for op in ops)
    return total + 4 * c * num_classes


class Table:
    """The 15,625 rows of the vendored table, indexed for lookups.

    Attributes:
      strings: the cell string of each row; row i is NATS-Bench index i.
      unique: each row's canonical string up to isomorphism.
      accuracy: dataset -> float array of accuracies as fractions, by row.
      row_of_code: `cell_code(ops)` -> row.
      ops: int array (rows, 6) of op indices (benchmark order), by row.
    """

    def __init__(self, path=TABLE):
        try:
            with gzip.open(path, "rt", newline="") as f:
                text = f.read()
        except OSError as e:
            raise BenchmarkError(f"cannot read the NAS-Bench-201 table {path}: {e}") from None
        reader = csv.reader(io.StringIO(text))
        header = next(reader, [])
        missing = [c for c in (*_COLUMNS.values(), "ArchitectureString", "UniqueString") if c not in header]
        if missing:
            raise BenchmarkError(f"the NAS-Bench-201 table {path} lacks the columns {missing}")
        rows = list(reader)
        if len(rows) != CELLS:
            raise BenchmarkError(f"the NAS-Bench-201 table {path} has {len(rows)} rows, expected {CELLS}")
        at = {c: header.index(c) for c in header}
        self.strings = [r[at["ArchitectureString"]] for r in rows]
        self.unique = [r[at["UniqueString"]] for r in rows]
        self.accuracy = {
            d: np.array([float(r[at[c]]) for r in rows]) / 100.0 for d, c in _COLUMNS.items()
        }
        # "|a~0|+|b~0|c~1|+|d~0|e~1|f~2|" -> a..f: the ops between the bars, in edge order.
        self.ops = np.array(
            [[_OP_INDEX[t.partition("~")[0]] for t in s.split("|") if t not in ("", "+")] for s in self.strings],
            dtype=np.int64,
        )
        codes = self.ops @ np.array(_PLACE)
        self.row_of_code = np.full(CELLS, -1, dtype=np.int64)
        self.row_of_code[codes] = np.arange(CELLS)
        if (self.row_of_code < 0).any():
            raise BenchmarkError(f"the NAS-Bench-201 table {path} repeats a cell")
        self._sorted = {d: np.sort(a) for d, a in self.accuracy.items()}

    def rank(self, dataset, accuracy):
        """1 + the number of cells with a strictly higher accuracy on `dataset`."""
        s = self._sorted[dataset]
        return int(CELLS - np.searchsorted(s, accuracy, side="right") + 1)

    def best(self, dataset):
        return float(self._sorted[dataset][-1])


    def metric(self, metric, dataset):
        """Accuracies (fractions, by row) of `metric` on `dataset`: the 200-epoch test
        accuracies of this table, or another fidelity's (`load_fidelities`)."""
        if metric == "test200":
            return self.accuracy[dataset]
        if metric not in METRICS:
            raise BenchmarkError(f"unknown benchmark metric {metric!r}; allowed: {', '.join(METRICS)}")
        strings, columns = load_fidelities()
        if strings != self.strings:
            raise BenchmarkError(f"the fidelities {FIDELITIES} do not list the table's cells in its order")
        return columns[(metric, dataset)]


@functools.lru_cache(maxsize=None)
def load_table(path=TABLE):
    """The table at `path`, read once per process (about 0.1 s)."""
    return Table(path)


def read_csv(path, what):
    """(header, rows) of the gzipped CSV at `path` (`what` names it in the error).

    Raises:
      BenchmarkError: a file that cannot be read.
    """
    try:
        with gzip.open(path, "rt", newline="") as f:
            rows = list(csv.reader(io.StringIO(f.read())))
    except OSError as e:
        raise BenchmarkError(f"cannot read {what} {path}: {e}") from None
    return (rows[0], rows[1:]) if rows else ([], [])


@functools.lru_cache(maxsize=None)
def load_fidelities(path=FIDELITIES):
    """(cell strings by row, {(metric, dataset): accuracies as fractions by row}) of the
    other fidelities, read once per process.

    Raises:
      BenchmarkError: a file that cannot be read or lacks a column or a row.
    """
    header, rows = read_csv(path, "the NAS-Bench-201 fidelities")
    missing = [c for c in ("ArchitectureString", *_FIDELITY_COLUMNS.values()) if c not in header]
    if missing or len(rows) != CELLS:
        raise BenchmarkError(f"the NAS-Bench-201 fidelities {path} lack the columns {missing} or "
                             f"have {len(rows)} rows, expected {CELLS}")
    at = {c: header.index(c) for c in header}
    strings = [r[at["ArchitectureString"]] for r in rows]
    columns = {key: np.array([float(r[at[c]]) for r in rows]) / 100.0
               for key, c in _FIDELITY_COLUMNS.items()}
    return strings, columns


def op_counts(ops):
    """(cells, 4) counts of skip_connect, nor_conv_1x1, nor_conv_3x3 and avg_pool_3x3 over
    the six edges of each row of `ops` (op indices; `none`, the rest, is the reference)."""
    ops = np.atleast_2d(ops)
    return np.stack([(ops == i).sum(axis=1) for i in range(1, len(NB201_OPS))], axis=1)


@dataclasses.dataclass(frozen=True)
class TimeModel:
    """Seconds of a cell's 12-epoch training on CIFAR-10's 50k training images:
    `intercept` plus, per edge, the seconds of its op (`per_op`: skip_connect,
    nor_conv_1x1, nor_conv_3x3, avg_pool_3x3; `none` adds nothing), least squares on
    the known cells."""

    intercept: float
    per_op: tuple

    @classmethod
    def fit(cls, ops, seconds):
        x = np.column_stack([np.ones(len(seconds)), op_counts(ops)])
        coefficients, *_ = np.linalg.lstsq(x, np.asarray(seconds, dtype=float), rcond=None)
        return cls(float(coefficients[0]), tuple(float(c) for c in coefficients[1:]))

    def predict(self, ops):
        """Seconds of each row of `ops` (op indices, (cells, 6))."""
        return self.intercept + op_counts(ops) @ np.array(self.per_op)


def load_train_seconds(path=TRAIN_SECONDS, table=None):
    """(rows, 12-epoch seconds) of the cells whose times are known (NATS-Bench indices),
    each string checked against the table's.

    Raises:
      BenchmarkError: a file that cannot be read, or a cell the table does not hold there.
    """
    table = table if table is not None else load_table()
    header, rows = read_csv(path, "the NAS-Bench-201 training times")
    try:
        index, string = header.index("Index"), header.index("ArchitectureString")
        column = header.index("Cifar10TrainSeconds12Epochs")
    except ValueError:
        raise BenchmarkError(f"the NAS-Bench-201 training times {path} lack a column") from None
    indices = np.array([int(r[index]) for r in rows])
    if any(table.strings[i] != r[string] for i, r in zip(indices, rows)):
        raise BenchmarkError(f"the training times {path} name a cell the table holds elsewhere")
    return indices, np.array([float(r[column]) for r in rows])


@functools.lru_cache(maxsize=None)
def load_time_model(path=TRAIN_SECONDS):
    """The `TimeModel` fitted to every known cell, once per process."""
    table = load_table()
    rows, seconds = load_train_seconds(path, table)
    return TimeModel.fit(table.ops[rows], seconds)


def parse_bias(text):
    """`--benchmark_bias`, "op:bonus[,op:bonus...]", as {op index: bonus per edge}.

    Raises:
      BenchmarkError: a malformed entry or an op the benchmark does not have.
    """
    bias = {}
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        op, _, bonus = part.partition(":")
        try:
            value = float(bonus)
        except ValueError:
            value = None
        if op.strip() not in _OP_INDEX or value is None or not np.isfinite(value):
            raise BenchmarkError(
                f"--benchmark_bias takes op:bonus pairs (a bonus per edge that uses the op, as a "
                f"fraction), ops one of {', '.join(NB201_OPS)}; got {part!r}"
            )
        bias[_OP_INDEX[op.strip()]] = value
    return bias


@dataclasses.dataclass(frozen=True)
class RewardErrors:
    """How a reward can be wrong, on top of the table's accuracy (all as fractions):

      noise: the standard deviation of fresh Gaussian noise on every query (it
        averages out when a cell is asked again); query i of a run gets the
        normal variate of (seed, i).
      cell_noise: the standard deviation of a persistent error per cell: the same
        offset every time that cell is asked (seeded by (seed, row)), as a supernet
        misranks cells; repetition cannot average it away.
      bias: {op index: bonus}, added once per edge that uses the op (as
        inference-mode rewards make `dropout1.0` a free identity).
    """

    noise: float = 0.0
    cell_noise: float = 0.0
    bias: tuple = ()  # ((op index, bonus), ...)
    seed: int = 0

    def __bool__(self):
        return bool(self.noise or self.cell_noise or self.bias)

    @functools.cached_property
    def _cell_offsets(self):
        return self.cell_noise * np.random.default_rng([self.seed, 1]).standard_normal(CELLS)

    def offset(self, row, ops, query):
        """The error of query number `query` (from 0) of the cell at `row` with op
        indices `ops`."""
        total = 0.0
        if self.noise:
            total += self.noise * float(np.random.default_rng([self.seed, 2, query]).standard_normal())
        if self.cell_noise:
            total += float(self._cell_offsets[row])
        for op, bonus in self.bias:
            total += bonus * int(np.count_nonzero(ops == op))
        return total


class Benchmark:
    """The table, asked about one dataset: what `--evaluation=benchmark` rewards.

    Args:
      dataset: `cifar10`, `cifar100` or `imagenet16-120`.
      table: a `Table` (default: the vendored one).
      errors: `RewardErrors` added to what `query` answers (default: none, exact).
      metric: the reward (`METRICS`).
      hardware: {cost: values by row} of the cells' hardware costs (HW-NAS-Bench's,
        hardware.py), which `costs` gives beside the parameters and FLOPs.

    Raises:
      BenchmarkError: an unknown dataset, or a table that cannot be read.
    """

    def __init__(self, dataset="cifar10", table=None, errors=None, metric="test200", hardware=None):
        if dataset not in DATASETS:
            raise BenchmarkError(f"unknown benchmark dataset {dataset!r}; allowed: {', '.join(DATASETS)}")
        self.dataset = dataset
        self.table = table if table is not None else load_table()
        self.errors = errors or RewardErrors()
        self._op_index = {}  # choice (`none#2`, ...) -> benchmark op index
        self._counts = {}  # (count, dataset) -> params or FLOPs by row, on first use
        self.hardware = dict(hardware or {})
        # What a pick is judged by; a search that rewards it too searches against an oracle.
        self.metric = f"{DATASET_NAMES[dataset]} " + (
            WHAT if metric == "test200" else "200-epoch test accuracy (mean over the benchmark's seeds)")
        self.size = CELLS
        self.fitness_title = f"{DATASET_NAMES[dataset]} 200-epoch test accuracy"  # What fitness is.
        self.reward_metric = metric
        self.rewards = self.table.metric(metric, dataset)  # BenchmarkError: an unknown metric.
        self.column = f"{metric}_accuracy"  # history.csv's column of the rewards.
        protocol = " (cifar10-valid: trained on 25k images)" if (
            dataset == "cifar10" and metric != "test200") else ""
        self.reward_title = f"{DATASET_NAMES[dataset]} {METRIC_WHAT[metric]}{protocol}"
        images = TRAINING_IMAGES.get((metric, dataset))
        # Seconds per known second: the reward run's images and epochs over the known runs'.
        self.time_scale = None if images is None else (
            images / TIMED_IMAGES * EPOCHS[metric] / TIMED_EPOCHS)

    # The benchmark protocol (extensions.Benchmark), on this dataset.

    def reward(self, architecture, query=0):
        """The reward of query number `query`: the accuracy plus the reward errors."""
        row = self.row(architecture)
        accuracy = float(self.rewards[row])
        if self.errors:
            accuracy += self.errors.offset(row, self.table.ops[row], query)
        return accuracy

    def seconds(self, architecture):
        """The simulated seconds of training behind a query of `architecture` (its
        reward's run: `TimeModel` scaled by its images and epochs), or None where no
        time is known (ImageNet16-120)."""
        if self.time_scale is None:
            return None
        return float(self._seconds[self.row(architecture)])

    @functools.cached_property
    def _seconds(self):
        """Every row's simulated seconds, predicted once (the loop asks twice per query)."""
        return load_time_model().predict(self.table.ops) * self.time_scale

    def fitness(self, architecture):
        return self.accuracy(architecture)

    def rank(self, fitness):
        return self.table.rank(self.dataset, fitness)

    def best(self):
        return self.table.best(self.dataset)

    def params(self, architecture):
        """Trainable parameters of the benchmark's network of `architecture`."""
        return self.params_by_row()[self.row(architecture)]

    def costs(self, architecture):
        """{cost: value} of the cell's network: its parameters and FLOPs (arithmetic) and
        the hardware costs given (NaN where a device has no measurement)."""
        row = self.row(architecture)
        return {
            "params": float(self.params_by_row()[row]),
            "flops": float(self.flops_by_row()[row]),
            **{name: float(values[row]) for name, values in self.hardware.items()},
        }

    def cost_by_row(self, name):
        """Every row's cost `name` (a float array; `costs` of one row)."""
        if name == "params":
            return np.asarray(self.params_by_row(), dtype=float)
        if name == "flops":
            return self.flops_by_row()
        if name not in self.hardware:
            raise BenchmarkError(f"the benchmark has no cost {name!r}; it has params, flops"
                                 + "".join(f", {n}" for n in self.hardware))
        return self.hardware[name]

    def flops_by_row(self, dataset=None):
        """Multiply-accumulates of one image through every row's network (`network_flops`,
        vectorized), as floats."""
        return self._by_row(network_flops, dataset, lambda a: a.astype(float))

    def best_in_space(self, space):
        """The best accuracy among the cells `space` can build."""
        rows, _ = self.reachable_rows(space)
        return float(self.table.accuracy[self.dataset][rows].max())

    def report(self, architecture, space=None):
        """best.json's entries of a pick (`summary`), its test accuracy on this dataset
        among them."""
        return {"test_accuracy": self.accuracy(architecture), **self.summary(architecture, space)}

    def report_lines(self, entries, first_trial):
        """The final lines of a search's report from its best.json `entries`."""
        accuracies = ", ".join(
            f"{DATASET_NAMES[d]} {100 * a:.2f}% (rank {entries['benchmark_rank'][d]:,})"
            for d, a in entries["benchmark_test_accuracy"].items()
        )
        within = ""
        if entries.get("cells_in_space", CELLS) != CELLS:
            within = (f" ({100 * entries['regret_in_space']:.2f} to the best of the "
                      f"{entries['cells_in_space']:,} cells this space can build)")
        return [
            f"best cell: {entries['nb201_string']} (NATS-Bench index {entries['nb201_index']}), "
            f"found at query {first_trial}",
            f"its test accuracy: {accuracies} of {CELLS:,} cells",
            f"regret to the best cell: {100 * entries['benchmark_regret'][self.dataset]:.2f} points "
            f"on {DATASET_NAMES[self.dataset]}{within}",
            (f"note: the table holds {WHAT}; see docs/NB201.md" if self.reward_metric == "test200"
             else f"note: the rewards were the {self.reward_title}; the pick is judged by its "
                  f"200-epoch test accuracy; see docs/NB201.md"),
        ]

    def row(self, architecture):
        """The cell's row in the table, which is its NATS-Bench index.

        Raises:
          BenchmarkError: a choice whose op the benchmark does not know.
        """
        code = 0
        for value, place in zip(architecture, _PLACE):
            index = self._op_index.get(value)
            if index is None:
                op = op_of(value)
                if op not in _OP_INDEX:
                    raise BenchmarkError(
                        f"the benchmark has no op {op!r}; it knows {', '.join(NB201_OPS)}"
                    )
                index = self._op_index[value] = _OP_INDEX[op]
            code += index * place
        return int(self.table.row_of_code[code])

    def query(self, architecture, query=0):
        """(reward, trainable parameters of its network) on this dataset: the accuracy as
        a fraction, plus `errors`' offset for query number `query` of the run."""
        return self.reward(architecture, query), self.params(architecture)

    def accuracy(self, architecture, dataset=None):
        return float(self.table.accuracy[dataset or self.dataset][self.row(architecture)])

    def params_by_row(self, dataset=None):
        """Trainable parameters of every row's network (`network_params`, vectorized)."""
        return self._by_row(network_params, dataset, lambda a: a.tolist())

    def _by_row(self, count, dataset, form):
        """Every row's `count` (`network_params` or `network_flops`) in the `form` a function
        of the integer array gives it: both counts are a fixed part plus a part per edge and
        op, the same in every cell, so six cells of one op each give every row's by
        addition. Computed once per count and dataset (the lookups ask per query)."""
        dataset = dataset or self.dataset
        key = (count.__name__, dataset)
        if key not in self._counts:
            fixed = count(["none"] * len(NB201_EDGES), num_classes=NUM_CLASSES[dataset])
            sample = np.array([count([op] * len(NB201_EDGES)) for op in NB201_OPS])
            per_edge = (sample - sample[0]) // len(NB201_EDGES)  # Per op, all stages.
            self._counts[key] = form(fixed + per_edge[self.table.ops].sum(axis=1))
        return self._counts[key]

    def reachable_rows(self, space):
        """The rows of the cells `space` can build, with the probability a uniform
        sampler of `space` gives each (poisoned copies weigh more; removed ops none).

        Raises:
          BenchmarkError: a choice whose op the benchmark does not know.
        """
        weights = np.zeros((len(NB201_EDGES), len(NB201_OPS)))
        for e, decision in enumerate(space.decisions):
            for choice in decision.choices:
                op = op_of(choice)
                if op not in _OP_INDEX:
                    raise BenchmarkError(f"the benchmark has no op {op!r}; it knows {', '.join(NB201_OPS)}")
                weights[e, _OP_INDEX[op]] += 1.0 / len(decision.choices)
        probability = np.prod(weights[np.arange(len(NB201_EDGES)), self.table.ops], axis=1)
        rows = np.flatnonzero(probability > 0)
        return rows, probability[rows]

    def expected_best_of_random(self, n, space=None, dataset=None, reward=None, feasible=None):
        """E[test accuracy of the best-rewarded of n cells drawn independently by a
        uniform sampler of `space` (default: the whole benchmark)], exactly, from the
        order statistics of the rewards (`stats.expected_pick`).

        `reward` is the metric that picks (default: the test accuracy itself, so the
        pick is the best of the n). `feasible` (booleans by row) restricts the pick to
        the cells within a budget: the others are drawn (each costs a query) and never
        picked, and n draws without a feasible cell count as a pick of accuracy 0 (no
        architecture meets the budget); `(1 - P(feasible))**n` is how likely that is.
        """
        dataset = dataset or self.dataset
        accuracy = self.table.accuracy[dataset]
        rewards = accuracy if reward is None else self.table.metric(reward, dataset)
        if space is None:
            rows, p = np.arange(CELLS), np.full(CELLS, 1.0 / CELLS)
        else:
            rows, p = self.reachable_rows(space)
        rewards, judged = rewards[rows], accuracy[rows]
        if feasible is not None:
            ok = np.asarray(feasible, dtype=bool)[rows]
            rewards, judged = np.where(ok, rewards, -np.inf), np.where(ok, judged, 0.0)
        return stats.expected_pick(rewards, judged, p, n)

    def summary(self, architecture, space=None):
        """The best.json entries of a pick: its string, NATS-Bench index, accuracy,
        rank among the 15,625 cells and regret to the best cell on every dataset,
        and (with `space`) its regret to the best cell that space can build."""
        row = self.row(architecture)
        entries = {
            "benchmark": "NAS-Bench-201",
            "benchmark_dataset": self.dataset,
            "benchmark_metric": WHAT,
            "reward_metric": self.reward_metric,
            "reward_metric_title": self.reward_title,
            "nb201_string": self.table.strings[row],
            "nb201_index": row,
            "benchmark_test_accuracy": {},
            "benchmark_rank": {},
            "benchmark_regret": {},
        }
        for d in DATASETS:
            accuracy = float(self.table.accuracy[d][row])
            entries["benchmark_test_accuracy"][d] = accuracy
            entries["benchmark_rank"][d] = self.table.rank(d, accuracy)
            entries["benchmark_regret"][d] = self.table.best(d) - accuracy
        if space is not None:
            rows, _ = self.reachable_rows(space)
            best = float(self.table.accuracy[self.dataset][rows].max())
            entries["cells_in_space"] = len(rows)
            entries["best_in_space"] = best
            entries["regret_in_space"] = best - float(self.table.accuracy[self.dataset][row])
        return entries

    def describe(self):
        """One line for the start of a search."""
        if self.reward_metric == "test200":
            return (
                f"NAS-Bench-201 table: {CELLS:,} cells, rewards are {DATASET_NAMES[self.dataset]} "
                f"{WHAT}; best cell {100 * self.table.best(self.dataset):.2f}%"
            )
        return (
            f"NAS-Bench-201 table: {CELLS:,} cells, rewards are the {self.reward_title}; picks "
            f"judged by their 200-epoch test accuracy (best cell {100 * self.table.best(self.dataset):.2f}%)"
        )
