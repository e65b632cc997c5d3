"""Benchmarks: tables of precomputed results that `--evaluation=benchmark` looks up.

A benchmark answers, for an architecture of its space, the fitness the loop rewards;
nothing is built or trained (extensions.Benchmark is the protocol). `BENCHMARKS`
holds the built-in ones by their `--benchmark` names (NAS-Bench-201's table); a
reference `--benchmark=PATH.py:NAME` names a user's, which takes the same path.
`Table` makes a benchmark of any {architecture: fitness} mapping, a CSV of a sweep
of your own for example (examples/my_table.py).

Pure Python and NumPy: nothing here needs Keras.
"""

import csv

import numpy as np

import extensions
import hardware
import nb201
from config import ConfigError


class Table:
    """A benchmark of a mapping {architecture: fitness} over a space.

    Args:
      space: the StateSpace the architectures come from (each key is checked).
      fitness: {architecture tuple: fitness}; an architecture of the space that is
        not a key fails as a child would (its reward is the failed child's).
      metric: what the fitness is, in words ("validation accuracy after 1 epoch").
      name: the table's name in reports.
      params: optional {architecture tuple: parameters} (history.csv's params column).
      costs: optional {cost name: {architecture tuple: value}}: what --max_cost and
        --cost_target read (objectives.COSTS names them: `params`, `latency`, ...).

    Raises:
      ValueError: an empty table, a key that is not an architecture of the space,
        or a fitness that is not a finite number.
    """

    def __init__(self, space, fitness, metric, name="table", params=None, costs=None):
        if not fitness:
            raise ValueError(f"the table {name!r} holds no architectures")
        self.space, self.metric, self.name = space, metric, name
        self._params = {tuple(a): int(p) for a, p in (params or {}).items()}
        self._costs = {n: {tuple(a): float(v) for a, v in by.items()} for n, by in (costs or {}).items()}
        self.values = {}
        for architecture, value in fitness.items():
            space.validate(tuple(architecture))
            value = float(value)
            if not np.isfinite(value):
                raise ValueError(f"the fitness of {architecture!r} in {name!r} is {value}")
            self.values[tuple(architecture)] = value
        self.sorted = np.sort(np.fromiter(self.values.values(), float))  # Ascending.
        self.size = len(self.values)

    @classmethod
    def from_csv(cls, path, space, column, metric=None, name=None):
        """The table of a CSV file with a column per decision of `space` (named by the
        decision's key, as history.csv names it: `layer0_units`, ...) and a column of
        fitness `column`.

        Raises:
          ValueError: a missing column, or a value that is not a choice of its decision.
        """
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        keys = [d.key for d in space.decisions]
        missing = [k for k in (*keys, column) if rows and k not in rows[0]]
        if missing:
            raise ValueError(f"{path} has no column {missing[0]!r}; its columns: {list(rows[0])}")
        by_text = [{str(c): c for c in d.choices} for d in space.decisions]
        fitness, params = {}, {}
        for i, row in enumerate(rows, 2):
            try:
                architecture = tuple(choices[row[k]] for choices, k in zip(by_text, keys))
            except KeyError as e:
                raise ValueError(f"{path}, line {i}: {e.args[0]!r} is not a choice of its decision") from None
            fitness[architecture] = float(row[column])
            if row.get("params"):
                params[architecture] = int(row["params"])
        return cls(space, fitness, metric or column, name or path, params)

    def fitness(self, architecture):
        """The table's fitness of `architecture`.

        Raises:
          KeyError: an architecture the table does not hold.
        """
        try:
            return self.values[tuple(architecture)]
        except KeyError:
            raise KeyError(f"{self.space.format(architecture)} is not in the table {self.name!r}") from None

    def params(self, architecture):
        """The architecture's parameters, where the table has them (else 0)."""
        return self._params.get(tuple(architecture), 0)

    def costs(self, architecture):
        """{cost: value} of `architecture` where the table has it."""
        a = tuple(architecture)
        return {n: by[a] for n, by in self._costs.items() if a in by}

    def reward(self, architecture, query=0):
        """The reward of a query: the table's fitness (no errors added)."""
        return self.fitness(architecture)

    def rank(self, fitness):
        """1 + the number of architectures of the table strictly fitter than `fitness`."""
        return int(self.size - np.searchsorted(self.sorted, fitness, side="right")) + 1

    def best(self):
        return float(self.sorted[-1])

    def describe(self):
        return (
            f"benchmark {self.name}: {self.size:,} architectures, rewards are their {self.metric}; "
            f"best {self.best():.4f}"
        )


def _nb201(config):
    """NAS-Bench-201's table on `--benchmark_dataset`, rewarding `--benchmark_metric`,
    with the run's reward errors."""
    errors = nb201.RewardErrors(
        noise=config.benchmark_noise,
        cell_noise=config.benchmark_cell_noise,
        bias=tuple(sorted(nb201.parse_bias(config.benchmark_bias).items())),
        seed=config.seed,
    )
    # HW-NAS-Bench's costs are of the CIFAR-10 network (config.py refuses them elsewhere).
    costs = hardware.costs_by_row() if config.benchmark_dataset == hardware.DATASET else None
    return nb201.Benchmark(
        config.benchmark_dataset, errors=errors, metric=config.benchmark_metric, hardware=costs
    )


# The built-in benchmarks by their --benchmark names (config.BENCHMARKS): each a
# function of the search's settings.
BENCHMARKS = {"nb201": _nb201}
REGISTRY = extensions.Registry("benchmark", "--benchmark", BENCHMARKS)


def make_benchmark(config, given=None):
    """The benchmark `config.benchmark` names (built-in, or a user's that a reference
    names: an object, or a function of no arguments returning one), or `given`.

    Raises:
      ConfigError: a table that cannot be read, a reference that cannot be loaded, or
        an object that is not a benchmark.
    """
    name = config.benchmark
    try:
        if given is None and REGISTRY.is_builtin(name):
            return BENCHMARKS[name](config)
        where = f"the benchmark {name}" if given is not None else f"--benchmark={name}"
        return extensions.check_benchmark(given if given is not None else REGISTRY.get(name), where)
    except (nb201.BenchmarkError, extensions.ExtensionError) as e:
        raise ConfigError(str(e)) from None
