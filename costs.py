"""The costs of an architecture, known before it trains: what a budget or a trade-off
(objectives.py) is checked against.

- `params`: the built network's trainable parameters (`count_params`).
- `flops`: multiply-accumulates of one image through its convolution and dense layers
  (`zero_cost.flops`).
- `latency`: this machine's inference latency of the untrained network in milliseconds:
  one image (batch 1), `LATENCY_WARMUP` calls of the compiled prediction function first
  (the first traces it), then the median of `LATENCY_CALLS` timed calls. It is measured
  in the search process, while nothing else of the search runs, and varies with the
  machine's load like any timing (a budget near a child's latency can flip between runs).
- A table's costs (NAS-Bench-201 with HW-NAS-Bench's device latencies and energies, and its
  parameters and FLOPs by arithmetic): looked up, nothing built (`table.costs`).

`CostMeter(names, build, input_shape, table)` answers a run's costs of an architecture,
each architecture measured once per process.
"""

import statistics
import time

import numpy as np

import zero_cost

LATENCY_WARMUP = 3
LATENCY_CALLS = 20


def latency_ms(model, input_shape, calls=LATENCY_CALLS, warmup=LATENCY_WARMUP):
    """The median milliseconds of `calls` predictions of one image by `model`, after
    `warmup` untimed ones (the first traces the prediction function)."""
    x = np.zeros((1, *input_shape), dtype="float32")
    for _ in range(warmup):
        model.predict_on_batch(x)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        model.predict_on_batch(x)
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def model_costs(model, names, input_shape):
    """{name: value} of the model costs among `names` (params, flops, latency)."""
    costs = {}
    if "params" in names:
        costs["params"] = float(model.count_params())
    if "flops" in names:
        costs["flops"] = float(zero_cost.flops(model))
    if "latency" in names:
        costs["latency"] = latency_ms(model, input_shape)
    return costs


class CostMeter:
    """A run's costs of an architecture.

    Args:
      names: the costs to give (objectives.COSTS).
      build: architecture -> an untrained keras.Model (None: no network is built; the
        table gives every cost).
      input_shape: one image's shape (latency).
      table: a benchmark with `costs(architecture) -> {name: value}` (None: none); what
        it gives is looked up, not measured.
    """

    def __init__(self, names, build=None, input_shape=None, table=None):
        self.names = tuple(names)
        self.build, self.input_shape, self.table = build, input_shape, table
        self._known = {}

    def measure(self, architecture):
        """{name: value} of `architecture` (NaN: unknown where the table has no value).

        Raises:
          Exception: whatever building the network raises (the child then fails).
        """
        architecture = tuple(architecture)
        if architecture not in self._known:
            looked_up = dict(self.table.costs(architecture)) if self.table is not None else {}
            costs = {n: float(looked_up[n]) for n in self.names if n in looked_up}
            left = [n for n in self.names if n not in costs]
            if left:
                model = self.build(architecture)
                costs.update(model_costs(model, left, self.input_shape))
                del model
            self._known[architecture] = {n: costs.get(n, float("nan")) for n in self.names}
        return dict(self._known[architecture])
