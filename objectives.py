"""Objectives beyond accuracy: hard budgets on an architecture's costs, and MnasNet's
soft trade-off.

- A hard budget, `--max_cost=NAME:LIMIT[,NAME:LIMIT...]`: a child with any cost above
  its limit (or a cost that is unknown: not measured on that device) is infeasible. It
  is never the pick; its fitness is a failed child's (accuracy 0, or the failed score),
  so its reward is the failed child's; and it is not trained, scored or looked up,
  since every cost here is known before training (counted or measured on the untrained
  network, or read from a table). Infeasible children are not failures: they do not
  count toward --max_failures.
- A soft one, `--cost_target=NAME:TARGET[,...]` with `--cost_weight=W`: the fitness a
  strategy maximizes is accuracy x prod over the targets of (cost / target)^W (Tan et
  al., "MnasNet: Platform-Aware Neural Architecture Search for Mobile", CVPR 2019:
  W = -0.07 for their soft constraint; W = 0 ignores the cost). A cost at its target
  leaves the accuracy as it is; every doubling of the cost multiplies it by 2^W.

The costs a run can name (`COSTS`): the network's `params` and `flops` (counted on the
built network or, for NAS-Bench-201's table, by arithmetic), `latency` (this machine's,
measured: costs.py) and HW-NAS-Bench's device costs of a NAS-Bench-201 cell
(hardware.COSTS). Pure Python: config.py checks the flags before any framework loads.
"""

import dataclasses
import math

import hardware

# Costs of any network the project builds: {name: (unit, what)}.
MODEL_COSTS = {
    "params": ("", "trainable parameters"),
    "flops": ("", "multiply-accumulates of one image (convolution and dense layers)"),
    "latency": ("ms", "this machine's inference latency, batch 1 (median of 20 calls after 3)"),
}
COSTS = {**MODEL_COSTS, **hardware.COSTS}
MNASNET_WEIGHT = -0.07  # MnasNet's soft constraint (alpha = beta = -0.07).


class ObjectiveError(ValueError):
    """A --max_cost or --cost_target that cannot be read."""


def parse_costs(text, flag):
    """"name:value[,name:value...]" as ((name, value), ...) in the order given.

    Raises:
      ObjectiveError: a malformed entry, an unknown cost, a value that is not a positive
        finite number, or a cost named twice.
    """
    pairs, seen = [], set()
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        name, _, value = part.partition(":")
        name = name.strip()
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if name not in COSTS or not (math.isfinite(number) and number > 0):
            raise ObjectiveError(
                f"--{flag} takes cost:value pairs (a positive number, in the cost's unit), the "
                f"cost one of {', '.join(COSTS)}; got {part!r}"
            )
        if name in seen:
            raise ObjectiveError(f"--{flag} names {name} twice")
        seen.add(name)
        pairs.append((name, number))
    return tuple(pairs)


def describe_cost(name, value):
    """A cost's value in words: `6.42 ms`, `1,234,567 params`."""
    unit = COSTS[name][0]
    if not math.isfinite(value):
        return f"{name} unknown"
    if unit:
        return f"{name} {value:.4g} {unit}"
    return f"{name} {value:,.0f}"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """An architecture's costs judged: `over` names each budget it breaks (empty: it
    is feasible); `factor` multiplies its fitness (the soft objective; 1 without one)."""

    costs: dict
    over: tuple = ()
    factor: float = 1.0

    @property
    def feasible(self):
        return not self.over


@dataclasses.dataclass(frozen=True)
class Objective:
    """Budgets (`limits`) and targets of a search's costs.

    Attributes:
      limits: ((cost, limit), ...): the hard budgets.
      targets: ((cost, target), ...): the soft objective's targets.
      weight: the soft objective's exponent W.
    """

    limits: tuple = ()
    targets: tuple = ()
    weight: float = MNASNET_WEIGHT

    @classmethod
    def from_flags(cls, max_cost="", cost_target="", cost_weight=MNASNET_WEIGHT):
        """The objective of the flags (empty: none).

        Raises:
          ObjectiveError: a flag that cannot be read.
        """
        if not math.isfinite(cost_weight) or cost_weight > 0:
            raise ObjectiveError(
                f"--cost_weight is the exponent W of (cost / target)^W: 0 or below (MnasNet: "
                f"{MNASNET_WEIGHT}), got {cost_weight}"
            )
        return cls(parse_costs(max_cost, "max_cost"), parse_costs(cost_target, "cost_target"), cost_weight)

    def __bool__(self):
        return bool(self.limits or self.targets)

    @property
    def names(self):
        """The costs it needs, each once, budgets first."""
        return tuple(dict.fromkeys(n for n, _ in (*self.limits, *self.targets)))

    def judge(self, costs):
        """The `Verdict` of an architecture's `costs` ({name: value}; a missing or NaN
        cost is unknown: over its budget, and a target's factor cannot be had)."""
        over = []
        for name, limit in self.limits:
            value = costs.get(name, math.nan)
            if not value <= limit:  # NaN too.
                over.append(f"{describe_cost(name, value)} over the budget {limit:g}")
        factor = 1.0
        for name, target in self.targets:
            value = costs.get(name, math.nan)
            if not (math.isfinite(value) and value > 0):
                over.append(f"{describe_cost(name, value)}: no trade-off against the target {target:g}")
                continue
            factor *= (value / target) ** self.weight
        return Verdict(dict(costs), tuple(over), 1.0 if over else factor)

    def describe(self):
        """One line for the start of a search."""
        parts = [f"{n} <= {v:g}" for n, v in self.limits]
        if self.targets:
            terms = " x ".join(f"({n} / {v:g})^{self.weight:g}" for n, v in self.targets)
            parts.append(f"fitness = accuracy x {terms}")
        return "objective: " + "; ".join(parts) + " (an architecture over a budget is infeasible: not evaluated, the failed child's reward)"
