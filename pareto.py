"""The exact Pareto front of accuracy against a cost, and a search held against it.

Accuracy is maximized, a cost minimized. A point is on the front when no other point
has a cost as low and an accuracy as high, one of the two strictly; the front, sorted
by cost, rises in accuracy. Three measures of a search against the front of a table
that holds every architecture (NAS-Bench-201 with HW-NAS-Bench's costs):

- `best_within(front, budget)`: the best accuracy any architecture reaches at a cost of
  at most `budget` (the constrained optimum);
- `distance(front, cost, accuracy)`: how far a pick falls below the front at its own
  cost, in accuracy (0 on the front): the accuracy a search left at that cost;
- `hypervolume(costs, accuracies, reference)`: the area of the (cost, accuracy) plane the
  points dominate, bounded by a reference point of the worst cost and the worst
  accuracy; the queries' hypervolume over the front's is the share of the best
  trade-off a run found (1 when its queries hold the whole front).

Pure NumPy.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Front:
    """The Pareto front of a set of points.

    Attributes:
      index: the points on the front (indices into the arrays it was made of), by
        increasing cost; of points equal in both, the first.
      cost, accuracy: theirs, by increasing cost (the accuracies increase too).
    """

    index: np.ndarray
    cost: np.ndarray
    accuracy: np.ndarray

    def __len__(self):
        return len(self.index)


def front(costs, accuracies):
    """The `Front` of the points (costs[i], accuracies[i]); a point whose cost or
    accuracy is not finite (NaN: not measured) is never on it.

    Raises:
      ValueError: arrays of different lengths.
    """
    costs, accuracies = np.asarray(costs, dtype=float), np.asarray(accuracies, dtype=float)
    if costs.shape != accuracies.shape:
        raise ValueError(f"{costs.size} costs and {accuracies.size} accuracies")
    valid = np.flatnonzero(np.isfinite(costs) & np.isfinite(accuracies))
    # By cost, then by accuracy from the highest; np.lexsort is stable (first index first).
    order = valid[np.lexsort((-accuracies[valid], costs[valid]))]
    a = accuracies[order]
    before = np.concatenate([[-np.inf], np.maximum.accumulate(a)[:-1]]) if a.size else a
    keep = order[a > before]
    return Front(keep, costs[keep], accuracies[keep])


def best_within(front_, budget):
    """The highest accuracy at a cost of at most `budget` (None: nothing costs so little)."""
    at = int(np.searchsorted(front_.cost, budget, side="right")) - 1
    return None if at < 0 else float(front_.accuracy[at])


def distance(front_, cost, accuracy):
    """How much accuracy the front holds above (cost, accuracy) at that cost: 0 for a point
    on the front (or above it: a point the front was not made of). None where the cost is
    not finite or below every point of the front."""
    if not np.isfinite(cost):
        return None
    best = best_within(front_, cost)
    return None if best is None else max(0.0, best - float(accuracy))


def hypervolume(costs, accuracies, reference):
    """The area of the points' dominated region within the reference point (worst cost,
    worst accuracy): the union over points of [cost, reference cost] x [reference
    accuracy, accuracy]. Points beyond the reference (or not finite) add nothing."""
    ref_cost, ref_accuracy = reference
    costs, accuracies = np.asarray(costs, dtype=float), np.asarray(accuracies, dtype=float)
    inside = np.isfinite(costs) & np.isfinite(accuracies) & (costs <= ref_cost) & (accuracies >= ref_accuracy)
    f = front(costs[inside], accuracies[inside])
    widths = np.diff(np.concatenate([f.cost, [ref_cost]]))
    return float(np.sum(widths * (f.accuracy - ref_accuracy)))
