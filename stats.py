"""The statistics of an assessment over seeds: mean and spread, a bootstrap interval
of the mean, and a two-sided test of one method against another (scipy).

Pure NumPy and SciPy; seeded, so a report is the same every time it is written.
"""

import numpy as np

BOOTSTRAP_RESAMPLES = 10_000
LEVEL = 0.95


def mean_std(values):
    """(mean, sample standard deviation) of `values`; std 0 for one value."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def bootstrap_interval(values, level=LEVEL, resamples=BOOTSTRAP_RESAMPLES, seed=0):
    """The percentile bootstrap interval of the mean of `values` at `level`: the
    (1-level)/2 and (1+level)/2 quantiles of the means of `resamples` resamples
    (with replacement, same size), drawn with `seed`.

    Raises:
      ValueError: no values.
    """
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        raise ValueError("a bootstrap interval needs at least one value")
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, a.size, size=(resamples, a.size))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def mann_whitney(a, b):
    """Two-sided Mann-Whitney U test of `a` against `b` (SciPy: exact for small
    samples without ties, else the normal approximation with a tie correction).

    Returns:
      (U of `a`, p-value). p is 1.0 when every value of both is the same.
    """
    from scipy.stats import mannwhitneyu  # pylint: disable=import-outside-toplevel

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if np.all(a == a[0]) and np.all(b == a[0]):
        return float(a.size * b.size / 2), 1.0
    result = mannwhitneyu(a, b, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def bootstrap_difference(a, b, level=LEVEL, resamples=BOOTSTRAP_RESAMPLES, seed=0):
    """The percentile bootstrap interval of mean(a) - mean(b), `a` and `b` resampled
    independently (two independent samples: two strategies' seeds)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("a bootstrap interval needs at least one value on each side")
    rng = np.random.default_rng(seed)
    diffs = (
        a[rng.integers(0, a.size, size=(resamples, a.size))].mean(axis=1)
        - b[rng.integers(0, b.size, size=(resamples, b.size))].mean(axis=1)
    )
    low, high = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def expected_pick(rewards, judged, probability, n):
    """E[the `judged` value of the best-rewarded of n independent draws], exactly, for
    draws that take item i with `probability[i]` (summing to 1), from the order
    statistics of the rewards.

    The draws of equal reward form one group g. With F the cumulative probability of
    the groups sorted by reward, the best reward lies in g with probability
    F_g^n - F_(g-1)^n; the pick is then the first of the n draws in g (a search keeps
    the first of equal rewards), an item of g in proportion to its probability, so g
    contributes its probability-weighted mean judged value. A reward of -inf (an item
    that may never be picked, an infeasible one) is the lowest group: give such items
    the judged value a search without a valid pick reports.
    """
    rewards, judged = np.asarray(rewards, dtype=float), np.asarray(judged, dtype=float)
    p = np.asarray(probability, dtype=float)
    values, group = np.unique(rewards, return_inverse=True)
    mass = np.bincount(group, weights=p, minlength=len(values))
    weighted = np.bincount(group, weights=p * judged, minlength=len(values))
    mean = np.divide(weighted, mass, out=np.zeros_like(mass), where=mass > 0)
    cumulative = np.cumsum(mass)
    cumulative /= cumulative[-1]  # Exactly 1 at the top: a sum's rounding would weigh on F^n.
    below = np.concatenate([[0.0], cumulative[:-1]])
    return float(np.sum(mean * (cumulative**n - below**n)))
