"""A search strategy of your own: local search (first-improvement hill climbing).

It proposes one-decision mutations of the best architecture found so far, and starts
again from a uniform sample after `patience` proposals without improvement. Assessed
against random search and the controller on NAS-Bench-201 (table lookups, 10 seeds):

  python assess.py --space=nb201 --evaluation=benchmark --trials=300 --budgets=100,300 \
      --strategies=random,controller,examples/my_strategy.py:LocalSearch --seeds=0,1,2,3,4,5,6,7,8,9 \
      --out=logs/assess-local-search

The loop makes it as LocalSearch(space, seed) and calls its six methods (docs/EXTENDING.md).
"""

import numpy as np


class LocalSearch:
    def __init__(self, space, seed, patience=20):
        self.space, self.patience = space, patience
        self.rng = np.random.default_rng(seed)
        self.best, self.best_fitness, self.since = None, -np.inf, 0

    def propose(self, n):
        if self.best is None:
            return self.space.sample(self.rng, n)
        return [self.neighbour(self.best) for _ in range(n)]

    def neighbour(self, architecture):
        indices = list(self.space.encode(architecture))
        d = int(self.rng.integers(len(indices)))
        size = len(self.space.decisions[d].choices)
        indices[d] = (indices[d] + int(self.rng.integers(1, size))) % size if size > 1 else 0
        return self.space.decode(indices)

    def learn(self, architectures, results):
        for architecture, result in zip(architectures, results):
            self.since += 1
            if not result.failed and result.fitness > self.best_fitness:
                self.best, self.best_fitness, self.since = tuple(architecture), result.fitness, 0
        if self.since >= self.patience:  # A local optimum: restart from a random point.
            self.best, self.best_fitness, self.since = None, -np.inf, 0
        return {"local_search/best": float(max(self.best_fitness, 0.0))}

    def get_state(self):
        fitness = None if self.best is None else self.best_fitness  # JSON has no -inf.
        return {"rng": self.rng.bit_generator.state, "best": self.best, "fitness": fitness, "since": self.since}

    def set_state(self, state):
        self.rng.bit_generator.state = state["rng"]
        self.best = None if state["best"] is None else tuple(state["best"])
        self.best_fitness = -np.inf if state["fitness"] is None else state["fitness"]
        self.since = state["since"]

    def save(self, directory):  # Everything is in get_state's dict (state.json) ...
        pass

    def load(self, directory):  # ... so there is nothing to load.
        pass
