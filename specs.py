"""What each built-in space, evaluation and strategy needs of the others, and the
checks that belong to it: one entry per built-in, keyed by the name its registry uses
(state_space.SPACES, manager.NetworkManager's evaluations, strategies.STRATEGIES).

Pure Python: config.py runs these checks on a command line before any framework
loads, and the registries of objects (which import Keras) stay where they are. A check
is a function of the SearchConfig that returns the one-line error of the first thing
wrong with it, or None. A user's space or strategy (extensions.py) gets USER_SPACE or
USER_STRATEGY: it needs nothing of the others and has no settings of its own.
"""

import dataclasses

import data
import state_space

PROXIES = ("synflow", "snip", "grad_norm", "params", "flops")
# Training-free scores of an untrained child: NASWOT (naswot.py) and the zero-cost
# proxies (zero_cost.py). Each is an --evaluation (the score is the fitness every
# strategy sees) and a --proxy (what --strategy=proxy_ranking ranks its candidates by).
SCORES = ("naswot", *PROXIES)


@dataclasses.dataclass(frozen=True)
class Space:
    """A built-in space as the settings see it.

    Attributes:
      layers: its --num_layers when the flag is left out (None: the space sets its own).
      layers_fixed: why --num_layers cannot change its depth ("" where it can).
      ops: whether it has an op decision to poison or remove ops from.
      supernet: whether weight sharing has a supernet of it (--evaluation=shared).
      device_costs: whether HW-NAS-Bench holds its cells' device costs (hardware.py).
    """

    layers: int = None
    layers_fixed: str = ""
    ops: bool = True
    supernet: bool = False
    device_costs: bool = False


SPACES = {
    "toy": Space(layers=4, ops=False),
    "macro": Space(layers=6, supernet=True),
    "nb201": Space(
        layers=6,
        layers_fixed="an NB201 cell has 6 edges (--nb201_cells sets the cells per stage)",
        supernet=True,
        device_costs=True,
    ),
}
USER_SPACE = Space(layers_fixed="a space of your own sets its own layers")


def space(name):
    return SPACES.get(name, USER_SPACE)


def check_layers(c):
    """--num_layers against the space's depth."""
    s = space(c.space)
    if not s.layers_fixed or c.num_layers in (None, s.layers):
        return None
    free = " and ".join(n for n, e in SPACES.items() if not e.layers_fixed)
    return (
        f"--num_layers is for the built-in {free} spaces; {s.layers_fixed} (--space={c.space}), "
        f"got --num_layers={c.num_layers}"
    )


def check_ops(c):
    """--poison and --remove_ops need an op decision."""
    if space(c.space).ops or not (c.poison or c.remove_ops):
        return None
    with_ops = ", ".join(f"--space={n}" for n, e in SPACES.items() if e.ops)
    return (
        f"--{'poison' if c.poison else 'remove_ops'} needs a space with an op decision; "
        f"the {c.space} space chooses kernels and filters only: use {with_ops}"
    )


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """How a child gets its fitness, as the settings see it.

    Attributes:
      images: it needs the dataset's images (all but a table of results do).
      builds: it builds each child with the space's network builder (--template).
      trains: it trains each child (early stopping; a worker by default for long runs).
      score: it is a training-free score of the untrained child (SCORES).
      title: how reports name a score's fitness (zero_cost.fitness); "" for the others.
      table: it looks each child up in a table of results (--benchmark).
      supernet: it scores each child on one supernet of shared weights.
      cached: a repeated architecture gets its first result again (a result that
        cannot change and cost something to get).
      in_process: why its children cannot go to worker processes ("" where they can).
      check: its own checks of the settings (None: none).
    """

    images: bool = True
    builds: bool = True
    trains: bool = False
    score: bool = False
    title: str = ""
    table: bool = False
    supernet: bool = False
    cached: bool = True
    in_process: str = ""
    check: object = None

    @property
    def guarded(self):
        """Whether it builds each child in the process that evaluates it, so that a child
        that kills that process is one failed child (crash_guard.py)."""
        return self.builds and not self.in_process


def _check_shared(c):
    held = [n for n, e in SPACES.items() if e.supernet]
    if not space(c.space).supernet:
        return (
            f"--evaluation=shared needs {' or '.join(f'--space={n}' for n in held)}: the "
            f"{c.space} space's network has no supernet (weight sharing holds these spaces "
            f"and their poisonings)"
        )
    if c.template not in held:
        return (
            f"--evaluation=shared trains the supernet of the built-in network "
            f"(--template={c.space}); --template={c.template} has none"
        )
    train_images = data.check_sizes(c.dataset, c.train_size, c.val_size)
    for flag, batch, images, role, split in (
        ("batch_size", c.batch_size, train_images, "supernet", "training"),
        ("eval_batch", c.eval_batch, c.val_size, "scoring", "validation"),
    ):
        if batch > images:
            return (
                f"--evaluation=shared: the {role} minibatch of {batch} must be between 1 and "
                f"the {images} {split} images; lower --{flag}"
            )
    return None


def _check_table(c):
    b = benchmark(c.benchmark)
    if b.space is not None and c.space != b.space:
        return (
            f"--evaluation=benchmark needs --space={b.space} for {b.title} "
            f"(--benchmark={c.benchmark}), got --space={c.space}; a table of your own: "
            f"--benchmark=PATH.py:NAME"
        )
    unknown = [
        op
        for op in c.poison.split(",") + c.remove_ops.split(",")
        if op and b.ops is not None and op not in b.ops
    ]
    if unknown:
        return (
            f"--evaluation=benchmark looks ops up in {b.title}, which knows "
            f"{', '.join(b.ops)}; {unknown[0]!r} is not one of them "
            f"(degraded ops train with --evaluation=train)"
        )
    return None


def check_score_batch(c):
    """The scores' minibatch against the training images they are drawn from."""
    train_images = data.check_sizes(c.dataset, c.train_size, c.val_size)
    if c.proxy_batch <= train_images:
        return None
    return (
        f"--proxy_batch={c.proxy_batch} is larger than the {train_images} training images "
        f"the scores draw their minibatch from; lower --proxy_batch"
    )


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """A built-in table of results as the settings see it.

    Attributes:
      title: what it is, in words.
      space: the space whose architectures it holds (None: any the user pairs it with).
      ops: the ops its table knows (None: no op decision to check).
      settings: {SearchConfig field: what the setting is} of the settings only it reads.
      costs: whether it gives its architectures' costs (params, flops; device costs where
        the space has them): what --max_cost and --cost_target read without a network.
    """

    title: str = "your table"
    space: str = None
    ops: tuple = None
    settings: dict = dataclasses.field(default_factory=dict)
    costs: bool = False


BENCHMARKS = {
    "nb201": Benchmark(
        title="NAS-Bench-201's table",
        space="nb201",
        ops=state_space.NB201_OPS,
        settings={
            "benchmark_noise": "is a reward error",
            "benchmark_cell_noise": "is a reward error",
            "benchmark_bias": "is a reward error",
            "benchmark_dataset": "picks one of the datasets",
            "benchmark_metric": "picks the reward",
            "benchmark_seconds": "is a budget of the simulated training times",
        },
        costs=True,
    ),
}
USER_BENCHMARK = Benchmark()


def benchmark(name):
    return BENCHMARKS.get(name, USER_BENCHMARK)


EVALUATIONS = {
    "train": Evaluation(trains=True),
    "shared": Evaluation(
        supernet=True,
        cached=False,  # The weights change between children.
        in_process="every child is scored on the one supernet in the search process",
        check=_check_shared,
    ),
    "benchmark": Evaluation(
        images=False,
        builds=False,
        table=True,
        cached=False,  # A look-up costs less than a cache.
        in_process="every child is a table lookup in the search process",
        check=_check_table,
    ),
    "naswot": Evaluation(score=True, title="NASWOT score"),
    **{name: Evaluation(score=True, title=f"{name} score, log(1 + {name})") for name in PROXIES},
}


@dataclasses.dataclass(frozen=True)
class Strategy:
    """A built-in strategy as the settings see it.

    Attributes:
      evaluations: the evaluations it works with (None: every one).
      refused: why it does not work with the others.
      controller: it is the controller RNN (its settings, --memory_size among them).
      memory_size: its memory buffer's size where --memory_size is left out (0: none).
      candidates: it scores --proxy_candidates untrained candidates and trains the best
        (the scores' minibatch is its).
      proxy: it ranks by --proxy.
      spaces: the spaces it works with (None: every one).
      derived: why a budget on costs cannot steer its pick ("" where it can).
    """

    evaluations: tuple = None
    refused: str = ""
    controller: bool = False
    memory_size: int = 0
    candidates: bool = False
    proxy: bool = False
    spaces: tuple = None
    derived: str = ""


# --strategy=memory_controller is the controller with a memory buffer of this many
# architectures unless --memory_size says otherwise (Adam & Lorraine: 10,000).
MEMORY_SIZE = 10_000

STRATEGIES = {
    "controller": Strategy(controller=True),
    "random": Strategy(),
    "evolution": Strategy(),
    "proxy_ranking": Strategy(  # Its old name, naswot: config.RENAMED_VALUES.
        evaluations=("train",),
        refused="--strategy=proxy_ranking ranks by a score (--proxy) and trains the top --trials",
        candidates=True,
        proxy=True,
    ),
    "tpe": Strategy(
        evaluations=("train", "benchmark", *SCORES),
        refused="with shared weights the supernet trains on hundreds of the strategy's "
        "proposals per pass, which TPE would count as trials never told",
    ),
    "budget_controller": Strategy(controller=True),
    "memory_controller": Strategy(controller=True, memory_size=MEMORY_SIZE),
    "embedding": Strategy(),
    "reinforce_table": Strategy(),
    **{
        name: Strategy(
            evaluations=("shared",),
            refused=f"{title} learns architecture parameters with the supernet's weights",
            spaces=("nb201",),
            derived=f"{title}'s pick is the argmax of its architecture parameters, which a "
            f"budget does not steer (a cost in its loss, as FBNet's, is not built); use "
            f"--strategy=random or controller with --evaluation=shared",
        )
        for name, title in (("darts", "DARTS"), ("gdas", "GDAS"))
    },
}
USER_STRATEGY = Strategy()


def strategy(name):
    return STRATEGIES.get(name, USER_STRATEGY)


def check_strategy(c):
    """The strategy against the evaluation and the settings that are another's."""
    s = strategy(c.strategy)
    if c.proxy != "naswot" and not s.proxy:
        rankers = ", ".join(f"--strategy={n}" for n, e in STRATEGIES.items() if e.proxy)
        return (
            f"--proxy={c.proxy} is the score {rankers} ranks by; to make it every child's "
            f"fitness use --evaluation={c.proxy}"
        )
    if s.evaluations is not None and c.evaluation not in s.evaluations:
        allowed = ", ".join(f"--evaluation={e}" for e in s.evaluations)
        return f"--strategy={c.strategy} is for {allowed}, got --evaluation={c.evaluation}: {s.refused}"
    if s.spaces is not None and c.space not in s.spaces:
        allowed = ", ".join(f"--space={n}" for n in s.spaces)
        return (
            f"--strategy={c.strategy} needs a supernet with mixed ops: {allowed}, got "
            f"--space={c.space}"
        )
    if c.controller.get("memory_size") and not s.controller:
        controllers = ", ".join(n for n, e in STRATEGIES.items() if e.controller)
        return (
            f"--memory_size is a setting of the controller (--strategy={controllers}), got "
            f"--strategy={c.strategy}"
        )
    return None


def check_space_size(c, space):
    """A strategy that scores candidates cannot score more than the space holds (`space`:
    the search's, poisoning applied)."""
    if strategy(c.strategy).candidates and c.proxy_candidates > space.num_architectures:
        return (
            f"--proxy_candidates={c.proxy_candidates} is more than the "
            f"{space.num_architectures:,} architectures of the space"
        )
    return None


def uses_scores(c):
    """Whether the run scores untrained children: a score is its evaluation, or its
    strategy scores candidates."""
    return EVALUATIONS[c.evaluation].score or strategy(c.strategy).candidates
