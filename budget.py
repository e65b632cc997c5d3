"""Search budgets: a number of children, a wall-clock limit, or both.

`parse_duration("1h30m")` reads the durations users write; `Budget` tells the loop
whether another step fits and how much of the budget is spent (what the
budget-aware controller follows).

What a time budget counts: the search's own wall time over every process that
worked on the run (a resumed run goes on with the time its earlier processes used),
from the start of the search to the end of its last child: proposing, training or
scoring children, supernet passes with shared weights, the strategy's learning.
Not counted: starting Python and loading the data, and the final retraining of the
best architecture, which runs after the budget (`--final_epochs` sets its cost).

A budget of simulated seconds (`--benchmark_seconds`, a table's training times) counts
what each query's training would have cost: the loop charges every query its cost and
stops before the query that would pass the budget, as the NAS-Bench-201 paper's code does.

Pure Python: `train.py` checks flags with it before TensorFlow is imported.
"""

import math
import re

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smhd])")
DURATION_HELP = "a duration like 90s, 45m, 2h, 1h30m or 1.5h (a bare number is seconds)"


def parse_duration(value):
    """Seconds in `value`: a number (seconds) or a text like `2h`, `45m`, `1h30m`, `90s`.

    Raises:
      ValueError: not a duration, or not more than 0 seconds.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_HELP}, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            parts = _PART.findall(text)
            if not parts or _PART.sub("", text).strip():
                raise ValueError(f"expected {DURATION_HELP}, got {value!r}") from None
            seconds = sum(float(n) * _UNITS[unit] for n, unit in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"expected {DURATION_HELP} of more than 0 seconds, got {value!r}")
    return seconds


def format_duration(seconds):
    """`4000` -> `1h06m`, `75` -> `1m15s`, `42` -> `42s`."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Budget:
    """How many children a search may still train, and for how long.

    Args:
      trials: children in all, or None for no limit (then `seconds` is the budget).
      seconds: wall-clock seconds of search, or None for no limit.
      simulated: seconds of simulated training (a table's), or None for no limit.

    The loop calls `observe` before every step; `fraction` is then the share of the
    budget spent, the larger of the trials' share and the time's share.
    """

    def __init__(self, trials=None, seconds=None, simulated=None):
        if trials is None and seconds is None and simulated is None:
            raise ValueError("a budget needs trials, seconds, simulated seconds or some of them")
        self.trials = trials
        self.seconds = seconds
        self.simulated = simulated
        self.trial = 0
        self.elapsed = 0.0
        self.charged = 0.0  # Simulated seconds of the queries so far.

    def charge(self, seconds):
        """A query of `seconds` simulated seconds was made (counted whatever the budget)."""
        self.charged += seconds or 0.0

    def affordable(self, costs):
        """How many of the queries of `costs` (simulated seconds each, in order) fit in the
        simulated budget one after another: the search stops before the first that would
        pass it."""
        if self.simulated is None:
            return len(costs)
        total = self.charged
        for i, cost in enumerate(costs):
            total += cost or 0.0
            if total > self.simulated:
                return i
        return len(costs)

    def observe(self, trial, elapsed):
        """The search has done `trial` children in `elapsed` seconds."""
        self.trial, self.elapsed = trial, elapsed

    def fraction(self):
        """Share of the budget spent, in [0, 1]."""
        spent = 0.0
        if self.trials:
            spent = self.trial / self.trials
        if self.seconds:
            spent = max(spent, self.elapsed / self.seconds)
        if self.simulated:
            spent = max(spent, self.charged / self.simulated)
        return min(1.0, spent)

    def children_left(self):
        """Children the trial budget still allows (math.inf without one)."""
        return math.inf if self.trials is None else self.trials - self.trial

    def exhausted(self, steps_done):
        """Why no further step may start, or None if one may.

        A step may start while its expected duration, the mean duration of the
        `steps_done` steps so far (supernet passes included), still fits in the time
        left: a search stops before a step it expects to overrun the budget, not
        after. The first step of a run always starts unless the time is up.

        Returns:
          None, "trials", "time_budget" or "benchmark_seconds".
        """
        if self.children_left() <= 0:
            return "trials"
        if self.simulated is not None and self.charged >= self.simulated:
            return "benchmark_seconds"
        if self.seconds is not None:
            expected = self.elapsed / steps_done if steps_done else 0.0
            if self.elapsed >= self.seconds or self.elapsed + expected > self.seconds:
                return "time_budget"
        return None
