"""The settings of a search: `SearchConfig`, its defaults and its checks.

Pure Python, so that `train.py` can check every flag before it imports TensorFlow:
a bad value then gets its one line at once, with nothing else on stderr.
"""

import dataclasses
import json
import math
import numbers
import os

import budget
import data
import nb201
import state_space

SPACES = ("toy", "macro", "nb201")
STRATEGIES = (
    "controller",
    "random",
    "evolution",
    "naswot",
    "tpe",
    "budget_controller",
    "memory_controller",
    "embedding",
    "reinforce_table",
)
CONTROLLERS = ("controller", "budget_controller", "memory_controller")
# --strategy=memory_controller is the controller with a memory buffer of this many
# architectures unless --controller_memory says otherwise (Adam & Lorraine: 10,000).
MEMORY_SIZE = 10_000
EARLY_STOP = ("none", "median")
# Training-free scores of an untrained child: NASWOT (naswot.py) and the zero-cost
# proxies (zero_cost.py). Each is an --evaluation (the score is the fitness every
# strategy sees) and a --proxy (what --strategy=naswot ranks its candidates by).
PROXIES = ("synflow", "snip", "grad_norm", "params", "flops")
SCORES = ("naswot", *PROXIES)
EVALUATIONS = ("train", "shared", "benchmark", *SCORES)
# Evaluations that build each child in the process that evaluates it: a child that
# kills that process is one failed child (crash_guard.py).
BUILT = ("train", *SCORES)
REWARD_MODES = ("inference", "training")
SHARED_BN = ("moving", "batch")


# Settings of how a run executes, not of what it computes: a resumed run may change them.
EXECUTION_FIELDS = (
    "workers",
    "cpus_per_child",
    "gpus_per_child",
    "ray_address",
    "worker_children",
    "worker_growth_mb",
)
# A search that trains more children than this runs them in a worker process by
# default: in one process TensorFlow's memory grows with every child (REFERENCES §10).
AUTO_WORKER_TRIALS = 100


class ConfigError(ValueError):
    """A bad search setting; the message names the value and what is allowed."""


# The controller's settings (controller.py) and their defaults, with their source.
# ENAS = the released code of Pham et al. (2018), NAS = Zoph & Le (2016); see
# ../shared/REFERENCES.md.
CONTROLLER_DEFAULTS = dict(
    lstm_units=64,  # ENAS: 64 units (NAS: 35).
    lstm_layers=1,  # ENAS: 1 layer (NAS: 2).
    embedding_size=64,  # ENAS: the embedding is as wide as the LSTM.
    learning_rate=5e-3,  # ENAS: 1e-3 over ~15k steps; raised for budgets of tens of steps (bench/).
    entropy_weight=1e-4,  # ENAS code: 1e-4 (paper: 0.1).
    temperature=1.0,  # ENAS paper: 5 with tanh constant 2.5; 1.0 leaves logits unchanged.
    tanh_constant=2.5,  # ENAS paper: 2.5 (code: 1.5); None disables the cap.
    exploration=0.0,  # Probability mass mixed in uniformly while sampling; 0 = on-policy.
    grad_clip=5.0,  # Global gradient-norm clip (ENAS clips too).
    skip_weight=0.0,  # ENAS: 0.8. Weight of the skip penalty KL(skip probability || skip_target).
    skip_target=0.4,  # ENAS: 0.4, the skip rate the penalty pulls towards.
    reward_entropy=0.0,  # ENAS: 1e-4. The sample's entropy times this is added to its reward.
    init_range=0.1,  # Weights ~ U(-0.1, 0.1) (ENAS; NAS: 0.08).
    # Memory buffer (Adam & Lorraine 2019; REFERENCES §12): every update adds a
    # teacher-forced reconstruction loss on a batch of earlier architectures.
    memory_size=0,  # Architectures kept (the paper: 10,000); 0 turns the buffer off.
    memory_batch=100,  # Architectures drawn from the buffer per update (the paper: 100).
    memory_weight=1.0,  # Weight of the reconstruction loss (the paper: 1).
    memory_start=0,  # Updates made before the loss is added (the paper: a later epoch).
)
# Flags whose controller setting has another name; the rest are named as the setting.
CONTROLLER_FLAGS = {"learning_rate": "controller_lr", "memory_size": "controller_memory"}


def score_title(name):
    """How reports name a training-free score's fitness (zero_cost.fitness)."""
    return "NASWOT score" if name == "naswot" else f"{name} score, log(1 + {name})"


def check_controller(settings, flags=False):
    """The controller's settings: CONTROLLER_DEFAULTS updated with `settings`, checked.

    Raises:
      ConfigError: an unknown setting, or a value out of range, named as the setting
        (as its train.py flag with `flags`: --controller_lr for learning_rate).
    """
    unknown = set(settings) - set(CONTROLLER_DEFAULTS)
    _check(
        not unknown,
        f"unknown controller setting(s) {sorted(unknown)}; allowed: {sorted(CONTROLLER_DEFAULTS)}",
    )
    h = {**CONTROLLER_DEFAULTS, **settings}

    def check(name, condition, allowed):
        shown = f"--{CONTROLLER_FLAGS.get(name, name)}" if flags else name
        _check(condition, f"{shown} must be {allowed}, got {h[name]!r}")

    for name in ("lstm_units", "lstm_layers", "embedding_size", "memory_batch"):
        check(name, _integer(h[name]) and h[name] >= 1, "an integer >= 1")
    for name in ("learning_rate", "temperature", "grad_clip", "init_range"):
        check(name, _number(h[name]) and h[name] > 0, "a number > 0")
    for name in ("entropy_weight", "skip_weight", "reward_entropy", "memory_weight"):
        check(name, _number(h[name]) and h[name] >= 0, ">= 0")
    tanh = h["tanh_constant"]
    check("tanh_constant", tanh is None or (_number(tanh) and tanh > 0), "> 0 or None")
    check("skip_target", _number(h["skip_target"]) and 0 < h["skip_target"] < 1, "in (0, 1)")
    for name in ("memory_size", "memory_start"):
        check(name, _integer(h[name]) and h[name] >= 0, "an integer >= 0")
    check("exploration", _number(h["exploration"]) and 0 <= h["exploration"] < 1, "in [0, 1)")
    return h


def _integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


@dataclasses.dataclass
class SearchConfig:
    """Every setting of a search, with its default. See train.py for the help texts."""

    # Data.
    dataset: str = "mnist5k"
    data_dir: str = None
    download: bool = False  # Let tensorflow-datasets download a missing dataset.
    train_size: int = None
    val_size: int = 500
    # Search space.
    space: str = "toy"
    num_layers: int = None  # None: 4 for toy, 6 for macro (an NB201 cell has 6 edges).
    filters: int = 24  # Width of the macro network (the toy space chooses its own).
    # The NB201 network trained or scored with --evaluation=train or naswot: channels
    # of its first stage and cells per stage (the benchmark's: 16 and 5).
    nb201_channels: int = 16
    nb201_cells: int = 5
    # Poisoning (poisoning.py): comma-separated op names; "" for none.
    poison: str = ""
    poison_instances: int = 1
    remove_ops: str = ""
    # Search.
    strategy: str = "controller"
    trials: int = 64  # None: no limit, with a time_budget.
    time_budget: float = None  # Seconds of search (train.py reads 45m, 2h, ...); None: no limit.
    children_per_step: int = 8
    seed: int = 0
    # How a proposed architecture gets its fitness: trained from scratch (validation
    # accuracy), scored with the weights of one supernet (accuracy on one validation
    # minibatch; weight_sharing.py), scored untrained (one of SCORES: NASWOT, or a
    # zero-cost proxy), or looked up in NAS-Bench-201's table (`benchmark`,
    # --space=nb201: the 200-epoch test accuracy on `benchmark_dataset`; nb201.py).
    # Only the final pick is trained with `shared` and a score; nothing is trained
    # with `benchmark`.
    evaluation: str = "train"
    benchmark_dataset: str = "cifar10"
    # Wrong rewards on purpose (nb201.RewardErrors, fractions): fresh noise per query, a
    # persistent error per cell, a bonus per edge that uses an op ("op:bonus,...").
    benchmark_noise: float = 0.0
    benchmark_cell_noise: float = 0.0
    benchmark_bias: str = ""
    # Regularized evolution (Real et al. 2019; REFERENCES §6).
    population_size: int = 20
    sample_size: int = 5
    # TPE (Optuna's TPESampler; tpe.py): random children before the model takes over.
    tpe_startup: int = 10
    # Budget-aware controller (strategies.BudgetControllerStrategy): uniform mix at the
    # start of the budget, falling to 0 at its end; logits multiplied by up to
    # budget_sharpen at its end.
    budget_explore: float = 0.5
    budget_sharpen: float = 2.0
    # Search in an embedding space (embedding.py): the autoencoder's pre-training
    # (random architectures, epochs), its latent size (None: one per decision, at most
    # 24) and the Gaussian policy's Adam learning rate.
    embedding_pretrain: int = 2000
    embedding_epochs: int = 60
    embedding_latent: int = None
    embedding_lr: float = 0.1
    # REINFORCE on a table of logits (strategies.TableStrategy): its Adam learning rate
    # (NATS-Bench's REINFORCE: 0.01).
    table_lr: float = 0.01
    # NASWOT (Mellor et al. 2021; REFERENCES §5).
    naswot_candidates: int = None  # None: 10 x trials (1,000 without a trial limit).
    naswot_batch: int = 128  # Images of the minibatch of every score that reads images.
    proxy: str = "naswot"  # The score --strategy=naswot ranks by (one of SCORES).
    # Weight sharing (--evaluation=shared; ENAS, REFERENCES §3, §9): a pass of the
    # training split trains the supernet, then `shared_steps_per_epoch` strategy
    # steps score their children on one validation minibatch of `eval_batch` each.
    shared_steps_per_epoch: int = 50
    eval_batch: int = 128
    reward_mode: str = "inference"  # Rewards with dropout and noise off (ENAS) or on.
    shared_bn: str = "batch"  # Statistics the rewards normalize with (bench/shared_ranking.py).
    shared_lr: float = 0.05  # Nesterov SGD, cosine restarts from shared_lr ...
    shared_lr_min: float = 0.0005  # ... down to this, ...
    shared_lr_t0: int = 10  # ... the first period this many epochs, doubling after.
    shared_l2: float = 2.5e-4
    shared_grad_clip: float = 5.0
    derive_candidates: int = 100  # Architectures scored on the whole validation split.
    # Child training.
    epochs: int = 3
    batch_size: int = 128
    child_lr: float = 3e-3
    final_epochs: int = None  # None: same as epochs.
    cache: bool = True
    max_failures: int = 5
    # Early stopping of weak children (early_stopping.py): "median" stops a child whose
    # validation accuracy after an epoch is below the median of the run's complete
    # children at that epoch, once early_stop_after children are complete.
    early_stop: str = "none"
    early_stop_after: int = 5
    # Reward.
    acc_beta: float = 0.8
    clip_rewards: float = 0.0
    # Controller (CONTROLLER_DEFAULTS, with their sources): only the settings given.
    controller: dict = dataclasses.field(default_factory=dict)
    # Where children run (workers.py): `workers` worker processes on Ray, each child
    # with `cpus_per_child` CPUs and `gpus_per_child` GPUs; 0 workers: in this process.
    # These say how a run executes, not what it computes: a resumed run may change them.
    workers: int = None  # None: automatic (see resolved()).
    cpus_per_child: float = 1.0
    gpus_per_child: float = None  # None: 1 where the Ray cluster has GPUs, else 0.
    ray_address: str = None  # None: a local Ray started by the search.
    worker_children: int = 50  # Children per worker process before a fresh one replaces it ...
    worker_growth_mb: int = 250  # ... or once its memory grew this much after its first child.
    # Output.
    logdir: str = "logs"
    run_name: str = None  # None: <space>[-poisoned|-removed]-<strategy>[-<evaluation>]-seed<seed>.
    tensorboard: bool = True

    @property
    def score_name(self):
        """The training-free score of the run: the evaluation's, or --strategy=naswot's
        ranking's (`proxy`)."""
        return self.evaluation if self.evaluation in SCORES else self.proxy

    def resolved(self):
        """A copy with the None defaults filled in, after checking every value."""
        c = dataclasses.replace(self, controller=dict(self.controller))
        _check(c.space in SPACES, f"--space must be one of {list(SPACES)}, got {c.space!r}")
        _check(
            c.strategy in STRATEGIES,
            f"--strategy must be one of {list(STRATEGIES)}, got {c.strategy!r}",
        )
        _check(
            c.evaluation in EVALUATIONS,
            f"--evaluation must be one of {list(EVALUATIONS)}, got {c.evaluation!r}",
        )
        _check(
            c.proxy in SCORES, f"--proxy must be one of {list(SCORES)}, got {c.proxy!r}"
        )
        _check(
            c.proxy == "naswot" or c.strategy == "naswot",
            f"--proxy={c.proxy} is the score --strategy=naswot ranks by; to make it every "
            f"child's fitness use --evaluation={c.proxy}",
        )
        _check(
            c.evaluation != "benchmark" or c.space == "nb201",
            f"--evaluation=benchmark needs --space=nb201 (the one space with a table of "
            f"trained accuracies), got --space={c.space}",
        )
        for name in ("benchmark_noise", "benchmark_cell_noise"):
            value = getattr(c, name)
            _check(value >= 0 and math.isfinite(value), f"--{name} must be a standard deviation >= 0, got {value}")
        errors = c.benchmark_noise or c.benchmark_cell_noise or c.benchmark_bias
        _check(
            not errors or c.evaluation == "benchmark",
            "--benchmark_noise, --benchmark_cell_noise and --benchmark_bias perturb the table's "
            f"rewards: they need --evaluation=benchmark, got --evaluation={c.evaluation}",
        )
        try:
            nb201.parse_bias(c.benchmark_bias)
        except nb201.BenchmarkError as e:
            raise ConfigError(str(e)) from None
        _check(
            c.benchmark_dataset in nb201.DATASETS,
            f"--benchmark_dataset must be one of {list(nb201.DATASETS)}, got {c.benchmark_dataset!r}",
        )
        _check(
            not (c.strategy == "naswot" and c.evaluation != "train"),
            f"--evaluation={c.evaluation} is for --strategy=controller, random or evolution; "
            f"--strategy=naswot ranks by a score (--proxy) and trains the top --trials",
        )
        _check(
            not (c.strategy == "tpe" and c.evaluation == "shared"),
            "--strategy=tpe is for --evaluation=train or a score: with shared weights the "
            "supernet trains on hundreds of the strategy's proposals per pass, which TPE would "
            "count as trials never told",
        )
        _check(
            not (c.evaluation == "shared" and c.space != "macro"),
            f"--evaluation=shared needs --space=macro: the {c.space} space's template has no "
            f"supernet yet (weight sharing holds the ENAS macro space and its poisonings)",
        )
        _check(
            c.reward_mode in REWARD_MODES,
            f"--reward_mode must be one of {list(REWARD_MODES)}, got {c.reward_mode!r}",
        )
        _check(
            c.shared_bn in SHARED_BN,
            f"--shared_bn must be one of {list(SHARED_BN)}, got {c.shared_bn!r}",
        )
        _check(
            c.dataset in data.DATASETS,
            f"--dataset must be one of {list(data.DATASETS)}, got {c.dataset!r}",
        )
        if c.strategy == "memory_controller" and not c.controller.get("memory_size"):
            c.controller["memory_size"] = MEMORY_SIZE
        _check(
            not c.controller.get("memory_size") or c.strategy in CONTROLLERS,
            f"--controller_memory is a setting of the controller (--strategy="
            f"{', '.join(CONTROLLERS)}), got --strategy={c.strategy}",
        )
        check_controller(c.controller, flags=True)
        _check(
            c.space != "nb201" or c.num_layers in (None, 6),
            f"--num_layers is for the toy and macro spaces; an NB201 cell has 6 edges "
            f"(--nb201_cells sets the cells per stage), got --num_layers={c.num_layers}",
        )
        if c.num_layers is None:
            c.num_layers = 4 if c.space == "toy" else 6
        if c.time_budget is not None:
            try:
                c.time_budget = budget.parse_duration(c.time_budget)
            except ValueError as e:
                raise ConfigError(f"--time_budget: {e}") from None
        _check(
            c.trials is not None or c.time_budget is not None,
            "--trials must be an integer >= 1 (it may be left out only with --time_budget)",
        )
        _check(
            c.early_stop in EARLY_STOP,
            f"--early_stop must be one of {list(EARLY_STOP)}, got {c.early_stop!r}",
        )
        _check(
            c.early_stop == "none" or (c.evaluation == "train" and c.epochs >= 2),
            f"--early_stop={c.early_stop} stops trained children between epochs: it needs "
            f"--evaluation=train and --epochs >= 2 (got --evaluation={c.evaluation}, "
            f"--epochs={c.epochs})",
        )
        _check(
            0 <= c.budget_explore < 1,
            f"--budget_explore must be in [0, 1), got {c.budget_explore}",
        )
        _check(c.budget_sharpen > 0, f"--budget_sharpen must be > 0, got {c.budget_sharpen}")
        for name in (
            "num_layers",
            *(["trials"] if c.trials is not None else []),
            "children_per_step",
            "epochs",
            "batch_size",
            "filters",
            "nb201_channels",
            "nb201_cells",
            "max_failures",
            "population_size",
            "sample_size",
            "naswot_batch",
            "shared_steps_per_epoch",
            "eval_batch",
            "shared_lr_t0",
            "derive_candidates",
            "early_stop_after",
            "tpe_startup",
            "embedding_epochs",
            *(["embedding_latent"] if c.embedding_latent is not None else []),
        ):
            value = getattr(c, name)
            _check(
                isinstance(value, int) and value >= 1,
                f"--{name} must be an integer >= 1, got {value!r}",
            )
        c.poison = _op_list(c.poison, "poison")
        c.remove_ops = _op_list(c.remove_ops, "remove_ops")
        if c.evaluation == "benchmark":
            unknown = [
                op
                for op in c.poison.split(",") + c.remove_ops.split(",")
                if op and op not in state_space.NB201_OPS
            ]
            _check(
                not unknown,
                f"--evaluation=benchmark looks ops up in NAS-Bench-201's table, which knows "
                f"{', '.join(state_space.NB201_OPS)}; {unknown[0] if unknown else ''!r} is not one "
                f"of them (degraded ops train with --evaluation=train)",
            )
        _check(
            isinstance(c.poison_instances, int)
            and not isinstance(c.poison_instances, bool)
            and c.poison_instances >= 1,
            f"--poison_instances must be an integer >= 1, got {c.poison_instances!r}",
        )
        _check(
            c.poison or c.poison_instances == 1,
            f"--poison_instances={c.poison_instances} needs --poison (the ops to inject)",
        )
        _check(
            c.space != "toy" or not (c.poison or c.remove_ops),
            f"--{'poison' if c.poison else 'remove_ops'} needs a space with an op decision; "
            f"the toy space chooses kernels and filters only: use --space=macro",
        )
        _check(
            c.sample_size <= c.population_size,
            f"--sample_size={c.sample_size} must be <= --population_size={c.population_size} "
            f"(parents are the best of sample_size members of the population)",
        )
        _check(
            isinstance(c.embedding_pretrain, int) and c.embedding_pretrain >= 2,
            f"--embedding_pretrain must be an integer >= 2, got {c.embedding_pretrain!r}",
        )
        _check(c.embedding_lr > 0, f"--embedding_lr must be > 0, got {c.embedding_lr}")
        _check(c.table_lr > 0, f"--table_lr must be > 0, got {c.table_lr}")
        _check(c.naswot_batch >= 2, f"--naswot_batch must be >= 2, got {c.naswot_batch}")
        if c.naswot_candidates is None:
            c.naswot_candidates = 10 * c.trials if c.trials else 1000
        _check(
            isinstance(c.naswot_candidates, int) and c.naswot_candidates >= (c.trials or 1),
            f"--naswot_candidates must be an integer >= --trials={c.trials} (the top --trials "
            f"candidates are trained), got {c.naswot_candidates!r}",
        )
        if c.final_epochs is None:
            c.final_epochs = c.epochs
        _check(c.final_epochs >= 1, f"--final_epochs must be >= 1, got {c.final_epochs}")
        _check(c.child_lr > 0, f"--child_lr must be > 0, got {c.child_lr}")
        _check(0 <= c.acc_beta < 1, f"--acc_beta must be in [0, 1), got {c.acc_beta}")
        _check(c.clip_rewards >= 0, f"--clip_rewards must be >= 0 (0 = off), got {c.clip_rewards}")
        _check(c.seed >= 0, f"--seed must be >= 0, got {c.seed}")
        _check(
            0 < c.shared_lr_min <= c.shared_lr,
            f"--shared_lr_min and --shared_lr must satisfy 0 < min <= max, got "
            f"{c.shared_lr_min} and {c.shared_lr}",
        )
        _check(c.shared_l2 >= 0, f"--shared_l2 must be >= 0, got {c.shared_l2}")
        _check(
            c.shared_grad_clip > 0, f"--shared_grad_clip must be > 0, got {c.shared_grad_clip}"
        )
        c.workers = _resolve_workers(c)
        if c.evaluation != "benchmark":  # The only evaluation without images.
            _check_images(c)
        _check(
            c.cpus_per_child > 0, f"--cpus_per_child must be > 0, got {c.cpus_per_child}"
        )
        _check(
            c.gpus_per_child is None or c.gpus_per_child >= 0,
            f"--gpus_per_child must be >= 0, got {c.gpus_per_child}",
        )
        for name in ("worker_children", "worker_growth_mb"):
            value = getattr(c, name)
            _check(
                isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                f"--{name} must be an integer >= 1, got {value!r}",
            )
        if c.run_name is None:
            attack = "-poisoned" if c.poison else ("-removed" if c.remove_ops else "")
            evaluation = "" if c.evaluation == "train" else f"-{c.evaluation}"
            if c.proxy != "naswot":  # --strategy=naswot ranking by another score.
                evaluation += f"-{c.proxy}"
            if c.evaluation == "benchmark" and c.benchmark_dataset != "cifar10":
                evaluation += f"-{c.benchmark_dataset}"
            c.run_name = f"{c.space}{attack}-{c.strategy}{evaluation}-seed{c.seed}"
        _check(
            bool(c.run_name) and os.sep not in c.run_name and c.run_name not in (".", ".."),
            f"--run_name must be a plain folder name, got {c.run_name!r}",
        )
        return c


def _check_images(c):
    """The split's sizes against the dataset's (data.TRAINING_EXAMPLES), and the
    minibatches drawn from them, before anything is loaded."""
    try:
        train_images = data.check_sizes(c.dataset, c.train_size, c.val_size)
    except data.DataError as e:
        raise ConfigError(str(e)) from None
    if c.evaluation == "shared":
        for flag, batch, images, split in (
            ("batch_size", c.batch_size, train_images, "training"),
            ("eval_batch", c.eval_batch, c.val_size, "validation"),
        ):
            _check(
                batch <= images,
                f"--evaluation=shared: the {'supernet' if split == 'training' else 'scoring'} "
                f"minibatch of {batch} must be between 1 and the {images} {split} images; "
                f"lower --{flag}",
            )
    if c.evaluation in SCORES or c.strategy == "naswot":
        _check(
            c.naswot_batch <= train_images,
            f"--naswot_batch={c.naswot_batch} is larger than the {train_images} training images "
            f"the scores draw their minibatch from; lower --naswot_batch",
        )


def _resolve_workers(c):
    """`--workers`, checked; None (automatic) becomes 1 for a search that trains or
    scores more than AUTO_WORKER_TRIALS children (its memory stays flat) and 0 (in
    this process, no Ray start) for shorter ones and for shared weights."""
    trains = c.evaluation not in ("shared", "benchmark")
    if c.workers is None:  # A search limited by time alone may train any number.
        long = c.trials is None or c.trials > AUTO_WORKER_TRIALS
        return 1 if trains and long else 0
    _check(
        isinstance(c.workers, int) and not isinstance(c.workers, bool) and c.workers >= 0,
        f"--workers must be an integer >= 0 (0 = children in the search process), "
        f"got {c.workers!r}",
    )
    _check(
        c.evaluation != "benchmark" or c.workers == 0,
        f"--workers={c.workers} is for trained or NASWOT-scored children; with "
        f"--evaluation=benchmark every child is a table lookup in the search process: "
        f"use --workers=0",
    )
    _check(
        trains or c.workers == 0,
        f"--workers={c.workers} is for trained or NASWOT-scored children; with "
        f"--evaluation=shared every child is scored on the one supernet in the search "
        f"process: use --workers=0",
    )
    return c.workers


def _op_list(value, flag):
    """`" a, b "` -> `"a,b"`; op names themselves are checked when the space is made."""
    _check(isinstance(value, str), f"--{flag} must be comma-separated op names, got {value!r}")
    names = [n.strip() for n in value.split(",")]
    names = [n for n in names if n]
    _check(
        len(set(names)) == len(names),
        f"--{flag} lists an op twice ({value!r}); list each op once",
    )
    return ",".join(names)


def _check(condition, message):
    if not condition:
        raise ConfigError(message)


def read_config(run_dir):
    """The SearchConfig a run folder was started with.

    Raises:
      ConfigError: no run there, or a damaged config.json.
    """
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise ConfigError(f"there is no run to resume in {run_dir} (no config.json)")
    try:
        with open(path) as f:
            saved = json.load(f)
        fields = {f.name for f in dataclasses.fields(SearchConfig)}
        if "reward" in saved and "evaluation" not in saved:  # Runs made before --evaluation.
            saved["evaluation"] = "naswot" if saved["reward"] == "naswot" else "train"
        return SearchConfig(**{k: v for k, v in saved.items() if k in fields})
    except (ValueError, TypeError, AttributeError) as e:
        raise ConfigError(f"cannot read {path}: it is damaged ({e})") from None
