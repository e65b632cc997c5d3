"""A benchmark of your own: a table of results you already have, searched like NAS-Bench-201.

my_table.csv holds the validation accuracy of all 64 MLPs of `space()` (two layers, each
with units {32, 128}, activation {relu, tanh} and dropout {0, 0.5}), each trained for 2
epochs on the embedded MNIST subset by examples/make_my_table.py. Any built-in strategy
searches it, nothing is trained, and best.json reports the pick's rank and regret:

  python train.py --space=examples/my_table.py:space --evaluation=benchmark \
      --benchmark=examples/my_table.py:table --strategy=evolution --trials=32

`benchmarks.Table` makes a benchmark of any {architecture: fitness} (here from a CSV with
a column per decision, named as history.csv names them); a class of your own with the
protocol's methods works as well (docs/EXTENDING.md).
"""

import os

import benchmarks
from state_space import StateSpace

TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "my_table.csv")


def space():
    """Two dense layers: units, activation and dropout per layer (64 architectures)."""
    mlp = StateSpace(2)
    mlp.add_state("units", [32, 128])
    mlp.add_state("activation", ["relu", "tanh"])
    mlp.add_state("dropout", [0.0, 0.5])
    return mlp


def table():
    """The benchmark: my_table.csv's validation accuracies."""
    return benchmarks.Table.from_csv(
        TABLE, space(), "val_accuracy", metric="validation accuracy after 2 epochs (mnist5k)",
        name="my_table",
    )
