"""Search strategies: how the loop's children are proposed and what is learned from them.

Every strategy has the same small protocol, which `search.py`'s loop calls:

  propose(n)                  -> n architectures (tuples of values) for the next step
  learn(architectures, results) -> dict of scalars to log (results: `manager.ChildResult`)
  get_state() / set_state(s)  JSON-serializable state kept in the run's state.json
  save(directory) / load(directory)  anything too large for state.json (weights)

A strategy that wants to know how much of the search budget is spent takes a
`progress` function (`budget.Budget.fraction`), as `BudgetControllerStrategy` does.
`STRATEGIES` holds the built-in ones by name; `make_strategy` builds the one a
`SearchConfig` names, or a user's (extensions.py), and the loop calls it through
`Guarded`, which checks every proposal against the space.
"""

import csv
import dataclasses
import os
import time
import traceback

import numpy as np

import controller as controller_lib
import extensions
from config import ConfigError
from run_log import atomic_write


class RandomStrategy:
    """Uniform sampling from the space: the baseline every controller must beat."""

    def __init__(self, space, seed):
        self.space = space
        self.rng = np.random.default_rng(seed)

    def propose(self, n):
        return self.space.sample(self.rng, n)

    def learn(self, architectures, results):
        return {}

    def get_state(self):
        return {"rng": self.rng.bit_generator.state}

    def set_state(self, state):
        self.rng.bit_generator.state = state["rng"]

    def save(self, directory):
        """Random search keeps nothing beyond its generator state."""

    def load(self, directory):
        """Nothing to load; see `save`."""


class EvolutionStrategy:
    """Regularized evolution (Real et al., 2019).

    The first `population_size` children are uniform samples. After that, each child
    is a mutation of a parent: the fittest of `sample_size` members drawn at random
    from the population; the mutation changes exactly one decision to another of its
    values. Every child joins the population and the oldest member leaves, however
    fit it is ("aging"). The children of one step are proposed together, from the
    population as it stood before the step.
    """

    def __init__(self, space, seed, population_size=20, sample_size=5):
        if not 1 <= sample_size <= population_size:
            raise ValueError(
                f"sample_size must be in [1, population_size={population_size}], "
                f"got {sample_size}"
            )
        self.space = space
        self.population_size = population_size
        self.sample_size = sample_size
        self.rng = np.random.default_rng(seed)
        self.population = []  # [architecture, fitness], oldest first.
        self.mutable = [i for i, d in enumerate(space.decisions) if len(d.choices) > 1]

    def propose(self, n):
        children = []
        for _ in range(n):
            if len(self.population) + len(children) < self.population_size:
                children.append(self.space.sample(self.rng))
            else:
                children.append(self.mutate(self.parent()))
        return children

    def parent(self):
        """The fittest of `sample_size` distinct members drawn uniformly (ties: the older)."""
        drawn = sorted(self.rng.choice(len(self.population), self.sample_size, replace=False))
        best = max(drawn, key=lambda i: self.population[i][1])
        return tuple(self.population[best][0])

    def mutate(self, architecture):
        """`architecture` with one decision, drawn uniformly, set to another value."""
        if not self.mutable:
            return tuple(architecture)  # A space of one architecture.
        indices = list(self.space.encode(architecture))
        d = self.mutable[self.rng.integers(len(self.mutable))]
        other = self.rng.integers(len(self.space.decisions[d].choices) - 1)
        indices[d] = int(other + (other >= indices[d]))
        return self.space.decode(indices)

    def learn(self, architectures, results):
        for architecture, result in zip(architectures, results):
            self.population.append([list(architecture), result.fitness])
        del self.population[: max(0, len(self.population) - self.population_size)]
        fitness = [f for _, f in self.population]
        return {
            "evolution/population_best": max(fitness),
            "evolution/population_mean": float(np.mean(fitness)),
        }

    def get_state(self):
        return {"rng": self.rng.bit_generator.state, "population": self.population}

    def set_state(self, state):
        self.rng.bit_generator.state = state["rng"]
        self.population = [[list(a), f] for a, f in state["population"]]

    def save(self, directory):
        """The population lives in state.json."""

    def load(self, directory):
        """Nothing to load; see `save`."""


class ProxyRankingStrategy:
    """--strategy=proxy_ranking (its old name: naswot): score `candidates` distinct random
    architectures untrained, then propose them best score first, so that the search's
    `trials` trains the top of the ranking (NASWOT's search, Mellor et al., 2021, with
    its score). The score is the manager's `proxy` (--proxy): NASWOT's, or a zero-cost
    proxy's.

    Scoring happens on the first `propose`; the ranking is kept in the run state and
    written to `naswot.csv` in the run folder (a search interrupted while scoring
    scores again when resumed).
    """

    def __init__(self, space, seed, candidates, manager, run_dir, out=print):
        self.space = space
        self.rng = np.random.default_rng(seed)
        self.candidates = candidates
        self.manager = manager
        self.run_dir = run_dir
        self.out = out
        self.ranking = None  # [architecture, score], best first.
        self.position = 0
        self.scores = {}

    def propose(self, n):
        if self.ranking is None:
            self._score_candidates()
        chosen = self.ranking[self.position : self.position + n]
        self.position += len(chosen)
        return [tuple(a) for a, _ in chosen]

    def _score_candidates(self):
        architectures, seen = [], set()
        # Distinct architectures; `candidates` <= the size of the space (run_search).
        while len(architectures) < self.candidates:
            a = self.space.sample(self.rng)
            if a not in seen:
                seen.add(a)
                architectures.append(a)
        self.out(f"scoring {self.candidates} untrained candidates ({self.manager.proxy}) ...")
        started = time.perf_counter()
        scored = []
        for i, (a, score) in enumerate(zip(architectures, self.manager.score_all(architectures))):
            scored.append((a, score))
            if (i + 1) % 100 == 0 or i + 1 == len(architectures):
                rate = (i + 1) / (time.perf_counter() - started)
                self.out(f"scored {i + 1}/{len(architectures)} ({rate:.1f} architectures/s)")
        # Best first; sorted() is stable, so equal scores keep their sampling order.
        order = sorted(range(len(scored)), key=lambda i: -scored[i][1].score)
        path = os.path.join(self.run_dir, "naswot.csv")
        _write_naswot_csv(path, self.space, scored, order, self.manager.proxy)
        self.ranking = [[list(scored[i][0]), scored[i][1].score] for i in order]
        self.scores = {tuple(a): s for a, s in self.ranking}

    def learn(self, architectures, results):
        return {}

    def get_state(self):
        return {"ranking": self.ranking, "position": self.position}

    def set_state(self, state):
        self.ranking, self.position = state["ranking"], state["position"]
        self.scores = {tuple(a): s for a, s in self.ranking or ()}

    def save(self, directory):
        """The ranking lives in state.json."""

    def load(self, directory):
        """Nothing to load; see `save`."""


NASWOT_FIELDS = ("rank", "sampled", "architecture", "naswot_score", "relu_units", "params")
NASWOT_FIELDS += ("seconds", "failed", "reason")


def _write_naswot_csv(path, space, scored, order, proxy):
    """naswot.csv: every scored candidate, best first (`sampled`: its sampling order);
    the score's column is named after it (`naswot_score`, `synflow_score`, ...)."""
    with atomic_write(path, newline="") as f:
        w = csv.writer(f)
        w.writerow([f"{proxy}_score" if n == "naswot_score" else n for n in NASWOT_FIELDS])
        for rank, i in enumerate(order, 1):
            a, s = scored[i]
            w.writerow(
                [rank, i + 1, space.format(a), f"{s.score:.4f}", s.relu_units, s.params]
                + [f"{s.seconds:.3f}", int(s.failed), s.reason]
            )


class ControllerStrategy:
    """The RL controller: sample from the policy, REINFORCE on the rewards."""

    def __init__(self, space, seed, hparams):
        self.space = space
        self.controller = controller_lib.Controller(space, seed=seed, **hparams)

    def propose(self, n):
        return self.controller.sample(n)

    def learn(self, architectures, results):
        # One forward pass gives the update's statistics and the logged probabilities.
        stats = self.controller.update(architectures, [r.reward for r in results])
        scalars = {"controller/loss": stats["loss"], "controller/entropy": stats["entropy"]}
        if stats["skip_rate"] is not None:
            scalars["controller/skip_rate"] = stats["skip_rate"]
        if stats["memory_loss"] is not None:
            scalars["controller/memory_loss"] = stats["memory_loss"]
            scalars["controller/memory_size"] = len(self.controller.memory)
        for decision, probs in zip(self.space.decisions, stats["probabilities"]):
            for choice, p in zip(decision.choices, probs):
                scalars[f"probs/{decision.key}/{choice}"] = p
        return scalars

    def get_state(self):
        return self.controller.get_state()

    def set_state(self, state):
        self.controller.set_state(state)

    def save(self, directory):
        """Weights and optimizer state (the generator state lives in state.json)."""
        self.controller.save(directory)

    def load(self, directory):
        self.controller = controller_lib.Controller.load(
            directory, self.space, hparams=self.controller.hparams
        )


class BudgetControllerStrategy(ControllerStrategy):
    """The budget-aware controller: this project's design after NASIB (arXiv:1910.08665).

    The controller and its REINFORCE update are the plain controller's; what changes
    is how it samples as the budget is spent. At the spent fraction f of the budget
    (`budget.Budget.fraction`: the larger of trials done / trials and seconds spent /
    time budget), each decision samples from

        (1 - explore * (1 - f)) * softmax((1 + (sharpen - 1) * f) * logits)
            + explore * (1 - f) * uniform

    so the search starts with `explore` of uniform mass on every decision (wide
    exploration while the policy knows little), the mix falls linearly to 0, and the
    policy's own preferences are sharpened up to `sharpen` times by the end of the
    budget (exploitation). The update uses the policy's own log-probabilities of the
    sampled architectures, as the plain controller's `--exploration` does: off-policy
    while f < 1, to the extent of the mix and the sharpening. With a trial budget f
    depends on trials only and runs repeat exactly; with a time budget it depends on
    the wall clock too.
    """

    def __init__(self, space, seed, hparams, progress, explore=0.5, sharpen=2.0):
        super().__init__(space, seed, hparams)
        self.progress = progress
        self.explore = explore
        self.sharpen = sharpen
        self.schedule = (explore, 1.0, 0.0)

    def get_state(self):
        # The step in flight's schedule: a run resumed inside a step reports what it sampled with.
        return {**super().get_state(), "schedule": list(self.schedule)}

    def set_state(self, state):
        super().set_state(state)
        self.schedule = tuple(state.get("schedule", (self.explore, 1.0, 0.0)))

    def schedule_at(self, fraction):
        """(uniform mix, logit factor) at the spent fraction of the budget."""
        return self.explore * (1.0 - fraction), 1.0 + (self.sharpen - 1.0) * fraction

    def propose(self, n):
        fraction = self.progress()
        mix, sharpen = self.schedule_at(fraction)
        self.schedule = (mix, sharpen, fraction)
        return self.controller.sample(n, exploration=mix, sharpen=sharpen)

    def learn(self, architectures, results):
        scalars = super().learn(architectures, results)
        mix, sharpen, fraction = self.schedule
        scalars.update(
            {"budget/fraction": fraction, "budget/exploration": mix, "budget/sharpen": sharpen}
        )
        return scalars


class TableStrategy:
    """REINFORCE on a table of independent logits, one row per decision: the NB201
    paper's REINFORCE (Dong & Yang 2020), the ablation of the controller's LSTM.

    Each decision's value is drawn from the softmax of its own row, independently of
    the others (no autoregression, no shared state). Logits start at
    `init_std` x N(0, 1); the update is Adam (Kingma & Ba; the same arithmetic as
    `keras.optimizers.Adam`) on the REINFORCE loss
    -(1/m) sum_k reward_k sum_t log p_t(a_kt), whose gradient on row t is
    -(1/m) sum_k reward_k (onehot(a_kt) - p_t). Rewards are the manager's (accuracy
    minus its moving-average baseline), as the controller's are.
    """

    def __init__(self, space, seed, learning_rate=0.01, init_std=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.space = space
        self.rng = np.random.default_rng(seed)
        self.sizes = [len(d.choices) for d in space.decisions]
        self.logits = [init_std * self.rng.standard_normal(n) for n in self.sizes]
        self.m = [np.zeros(n) for n in self.sizes]
        self.v = [np.zeros(n) for n in self.sizes]
        self.t = 0
        self.learning_rate, self.beta_1, self.beta_2, self.epsilon = learning_rate, beta_1, beta_2, epsilon

    def probabilities(self):
        out = []
        for row in self.logits:
            e = np.exp(row - row.max())
            out.append(e / e.sum())
        return out

    def propose(self, n):
        p = self.probabilities()
        return [
            self.space.decode([int(self.rng.choice(len(q), p=q)) for q in p]) for _ in range(n)
        ]

    def gradients(self, architectures, rewards):
        """The gradient of the REINFORCE loss on each row of logits."""
        p = self.probabilities()
        grads = [np.zeros(n) for n in self.sizes]
        for architecture, reward in zip(architectures, rewards):
            for t, index in enumerate(self.space.encode(architecture)):
                onehot = np.zeros(self.sizes[t])
                onehot[index] = 1.0
                grads[t] -= reward * (onehot - p[t]) / len(architectures)
        return grads

    def learn(self, architectures, results):
        grads = self.gradients(architectures, [r.reward for r in results])
        self.t += 1
        lr = self.learning_rate * np.sqrt(1 - self.beta_2**self.t) / (1 - self.beta_1**self.t)
        for i, g in enumerate(grads):
            self.m[i] = self.beta_1 * self.m[i] + (1 - self.beta_1) * g
            self.v[i] = self.beta_2 * self.v[i] + (1 - self.beta_2) * g * g
            self.logits[i] = self.logits[i] - lr * self.m[i] / (np.sqrt(self.v[i]) + self.epsilon)
        p = self.probabilities()
        entropy = float(np.mean([-(q * np.log(q + 1e-12)).sum() for q in p]))
        return {"table/entropy": entropy, "table/max_probability": float(np.mean([q.max() for q in p]))}

    def get_state(self):
        return {
            "rng": self.rng.bit_generator.state,
            "logits": [row.tolist() for row in self.logits],
            "m": [row.tolist() for row in self.m],
            "v": [row.tolist() for row in self.v],
            "t": self.t,
        }

    def set_state(self, state):
        self.rng.bit_generator.state = state["rng"]
        self.logits, self.m, self.v = ([np.array(r) for r in state[k]] for k in ("logits", "m", "v"))
        self.t = state["t"]

    def save(self, directory):
        """The table lives in state.json."""

    def load(self, directory):
        """Nothing to load; see `save`."""


@dataclasses.dataclass
class Setup:
    """What a built-in strategy may need besides (space, seed): the search's settings,
    its manager (NASWOT scores with it), the run folder, where lines go, and the spent
    fraction of the budget (`budget.Budget.fraction`)."""

    config: object
    manager: object
    run_dir: str
    out: object = print
    progress: object = lambda: 0.0


def _tpe(space, seed, setup):
    try:
        import tpe  # pylint: disable=import-outside-toplevel  (Optuna, only here)

        return tpe.TpeStrategy(space, seed, setup.run_dir, startup=setup.config.tpe_startup)
    except ImportError as e:  # Optuna missing: tpe.py says how to install it.
        raise ConfigError(str(e)) from None


def _embedding(space, seed, setup):
    import embedding  # pylint: disable=import-outside-toplevel

    c = setup.config
    try:
        return embedding.EmbeddingStrategy(
            space,
            seed,
            setup.run_dir,
            setup.out,
            latent=c.embedding_latent,
            pretrain_samples=c.embedding_pretrain,
            pretrain_epochs=c.embedding_epochs,
            learning_rate=c.embedding_lr,
        )
    except embedding.EmbeddingError as e:
        raise ConfigError(str(e)) from None


def _differentiable(method):
    def make(space, seed, setup):
        import differentiable  # pylint: disable=import-outside-toplevel  (Keras, only here)

        try:
            return differentiable.METHODS[method](space, seed, progress=setup.progress)
        except differentiable.DifferentiableError as e:
            raise ConfigError(str(e)) from None

    return make


def _budget_controller(space, seed, s):
    c = s.config
    return BudgetControllerStrategy(
        space, seed, c.controller, s.progress, c.budget_explore, c.budget_sharpen
    )


# The built-in strategies by their --strategy names (config.STRATEGIES): each a
# function (space, seed, Setup) -> strategy. A user's strategy is a factory of
# (space, seed) that a reference names (extensions.py); `make_strategy` makes either.
# An old name (config.RENAMED_VALUES) is resolved with the settings, before this.
STRATEGIES = {
    "controller": lambda space, seed, s: ControllerStrategy(space, seed, s.config.controller),
    "random": lambda space, seed, s: RandomStrategy(space, seed),
    "evolution": lambda space, seed, s: EvolutionStrategy(
        space, seed, s.config.population_size, s.config.sample_size
    ),
    "proxy_ranking": lambda space, seed, s: ProxyRankingStrategy(
        space, seed, s.config.proxy_candidates, s.manager, s.run_dir, s.out
    ),
    "tpe": _tpe,
    "budget_controller": _budget_controller,
    "memory_controller": lambda space, seed, s: ControllerStrategy(space, seed, s.config.controller),
    "embedding": _embedding,
    "reinforce_table": lambda space, seed, s: TableStrategy(space, seed, s.config.table_lr),
    "darts": _differentiable("darts"),
    "gdas": _differentiable("gdas"),
}
REGISTRY = extensions.Registry("strategy", "--strategy", STRATEGIES)


def make_strategy(config, space, manager, run_dir, out=print, progress=None, given=None):
    """The strategy `config.strategy` names (a built-in one, or a user's factory that a
    reference names; `given`: a factory passed in Python), guarded (`Guarded`).
    `progress()` is the spent fraction of the search budget, which the budget-aware
    controller follows.

    Raises:
      ConfigError: a factory that cannot be loaded, or an object that is not a strategy.
    """
    name = config.strategy
    if given is None and REGISTRY.is_builtin(name):
        setup = Setup(config, manager, run_dir, out, progress or (lambda: 0.0))
        strategy = STRATEGIES[name](space, config.seed, setup)
    else:
        where = f"the strategy {name}" if given is not None else f"--strategy={name}"
        try:
            factory = given if given is not None else REGISTRY.get(name)
            strategy = extensions.make_strategy(factory, space, config.seed, where)
        except extensions.ExtensionError as e:
            raise ConfigError(str(e)) from None
    return Guarded(strategy, space, extensions.label(name), run_dir)


class StrategyError(RuntimeError):
    """A strategy raised inside one of the loop's calls: the search stops at its last
    commit; the traceback is in the run folder (`Guarded.ERROR_FILE`)."""


class StrategyProposalError(ValueError):
    """A strategy proposed something that is not an architecture of the space."""


class Guarded:
    """A strategy as the loop calls it: every proposal checked against the space (one
    outside it stops the search before it is evaluated), and an exception inside the
    strategy's own code turned into a `StrategyError` whose traceback is written to
    the run folder. Everything else is the strategy's (`inner`)."""

    ERROR_FILE = "strategy-error.txt"

    def __init__(self, inner, space, name, run_dir):
        self.inner, self.space, self.name, self.run_dir = inner, space, name, run_dir

    def __getattr__(self, attribute):  # scores, controller, ...: the strategy's own.
        return getattr(self.inner, attribute)

    def _call(self, method, *args):
        try:
            return getattr(self.inner, method)(*args)
        except (ConfigError, controller_lib.ControllerError, StrategyError, StrategyProposalError):
            raise  # The project's own errors, each one line already (a damaged checkpoint).
        except OSError as e:
            if method in ("save", "load"):
                raise  # The run folder's (a full disk, a read-only folder): run_search says so.
            raise self._failed(method, e) from None
        except Exception as e:  # pylint: disable=broad-except  (a user's code, at any step)
            raise self._failed(method, e) from None

    def _failed(self, method, error):
        """The StrategyError of `error` raised in `method`, its traceback written to the
        run folder (where it can be)."""
        path = os.path.join(self.run_dir, self.ERROR_FILE)
        try:
            with atomic_write(path) as f:
                f.write(f"strategy {self.name}, in {method}:\n")
                f.write("".join(traceback.format_exception(error)))
            where = f"; its traceback is in {path}"
        except OSError:
            where = ""
        return StrategyError(
            f"the strategy {self.name} raised {extensions.error_at(error)} in {method}{where}"
        )

    def propose(self, n):
        proposed = self._call("propose", n)
        try:
            architectures = [tuple(a) for a in proposed]
        except TypeError:
            raise StrategyProposalError(
                f"the strategy {self.name}'s propose({n}) returned {proposed!r}, not a list "
                f"of architectures"
            ) from None
        if len(architectures) > n:
            raise StrategyProposalError(
                f"the strategy {self.name}'s propose({n}) returned {len(architectures)} "
                f"architectures; at most {n}"
            )
        for a in architectures:
            try:
                self.space.validate(a)
            except ValueError as e:
                raise StrategyProposalError(
                    f"the strategy {self.name} proposed {a!r}, which is not an architecture of "
                    f"the space: {e}"
                ) from None
        return architectures

    def learn(self, architectures, results):
        scalars = self._call("learn", architectures, results)
        return dict(scalars or {})

    def trains_supernet(self):
        """Whether the strategy trains the supernet itself (`supernet_step`: DARTS, GDAS)."""
        return callable(getattr(self.inner, "supernet_step", None))

    def supernet_step(self, *args):
        return self._call("supernet_step", *args)

    def derived(self):
        """The architecture the strategy would pick now (`derived()`: DARTS's argmax
        cell), or None where it has no such notion."""
        if not callable(getattr(self.inner, "derived", None)):
            return None
        return tuple(self._call("derived"))

    def get_state(self):
        return self._call("get_state")

    def set_state(self, state):
        return self._call("set_state", state)

    def save(self, directory):
        return self._call("save", directory)

    def load(self, directory):
        return self._call("load", directory)


NaswotStrategy = ProxyRankingStrategy  # Its name before --strategy=naswot became proxy_ranking.
