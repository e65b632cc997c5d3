"""The settings of a search: `SearchConfig`, its defaults and its checks.

Pure Python, so that `train.py` can check every flag before it imports TensorFlow:
a bad value then gets its one line at once, with nothing else on stderr.
"""

import dataclasses
import functools
import json
import math
import numbers
import os

import budget
import data
import extensions
import hardware
import nb201
import objectives
import specs
import state_space

# The built-in spaces, templates, strategies, benchmarks and evaluations by name:
# entries of their registries (state_space.SPACES, templates.TEMPLATES,
# strategies.STRATEGIES, benchmarks.BENCHMARKS) and of specs.py, which says what each
# needs; any other value of --space, --template, --strategy or --benchmark is a
# reference to a user's object (extensions.py).
SPACES = tuple(state_space.SPACES)
TEMPLATES = tuple(specs.SPACES)
BENCHMARKS = tuple(specs.BENCHMARKS)
STRATEGIES = tuple(specs.STRATEGIES)
CONTROLLERS = tuple(name for name, s in specs.STRATEGIES.items() if s.controller)
EARLY_STOP = ("none", "median")
PROXIES, SCORES = specs.PROXIES, specs.SCORES
EVALUATIONS = tuple(specs.EVALUATIONS)
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
# default: in one process TensorFlow's memory grows with every child (measured: docs/WORKERS.md).
AUTO_WORKER_TRIALS = 100


class ConfigError(ValueError):
    """A bad search setting; the message names the value and what is allowed."""


# The controller's settings (controller.py) and their defaults, with their source.
# ENAS = the released code of Pham et al. (2018), NAS = Zoph & Le (2016); see
# docs/REFERENCES.md.
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
    # Memory buffer (Adam & Lorraine 2019): every update adds a
    # teacher-forced reconstruction loss on a batch of earlier architectures.
    memory_size=0,  # Architectures kept (the paper: 10,000); 0 turns the buffer off.
    memory_batch=100,  # Architectures drawn from the buffer per update (the paper: 100).
    memory_weight=1.0,  # Weight of the reconstruction loss (the paper: 1).
    memory_start=0,  # Updates made before the loss is added (the paper: a later epoch).
)
# A controller setting's flag is named as the setting, except its learning rate's: like
# every learning rate's flag (--child_lr, --table_lr, --embedding_lr, --shared_lr), it
# says whose it is.
CONTROLLER_FLAGS = {"learning_rate": "controller_lr"}
# Flags renamed since runs were made with them: old name -> new. train.py keeps each old
# name as an alias of the new one (absl's: silent, the flag's value is the new one's);
# where the flag is a SearchConfig field, SearchConfig(...) takes the old name as a
# keyword too, and a run folder's config.json written with it reads back (`read_config`).
RENAMED_FLAGS = {
    "controller_memory": "memory_size",
    "naswot_batch": "proxy_batch",  # It feeds every training-free score, not NASWOT's alone.
    "naswot_candidates": "proxy_candidates",
}
# Values renamed since runs were made with them: {setting: {old value: new}}. The old
# value is taken as the new one wherever the setting is read (train.py's flags,
# SearchConfig.resolved, assess.py's --strategies, a run folder's config.json), as
# silently as a renamed flag; a default run folder named after the old value still
# resumes (`earlier_run_names`).
RENAMED_VALUES = {
    # "Rank untrained candidates by a training-free score, train the best": NASWOT
    # (Mellor et al.) is its default score, not the strategy (--evaluation=naswot is the score).
    "strategy": {"naswot": "proxy_ranking"},
}


def renamed_value(setting, value):
    """`value` of `setting` under its current name (RENAMED_VALUES): an old one renamed,
    any other as it is."""
    return RENAMED_VALUES.get(setting, {}).get(value, value) if isinstance(value, str) else value


def old_values(setting, value):
    """The names `value` of `setting` had before (RENAMED_VALUES), oldest first."""
    return [old for old, new in RENAMED_VALUES.get(setting, {}).items() if new == value]


def renamed_fields(values):
    """{SearchConfig field: value} with the old names of renamed fields (RENAMED_FLAGS)
    replaced by the new ones.

    Raises:
      TypeError: a setting given under both its names.
    """
    values = dict(values)
    for old, new in RENAMED_FLAGS.items():
        if old in values and new in _FIELD_NAMES:
            if new in values:
                raise TypeError(f"{old} is the old name of {new}: give one of them")
            values[new] = values.pop(old)
    return values


# The help of each controller setting's flag, in the order of the flags (init_range
# has none: it is not a flag).
CONTROLLER_HELP = dict(
    lstm_units="Controller LSTM units per layer.",
    lstm_layers="Controller LSTM layers.",
    embedding_size="Controller embedding size.",
    learning_rate="Controller Adam learning rate.",
    entropy_weight="Weight of the entropy bonus in the controller loss.",
    temperature="Controller logits are divided by this.",
    tanh_constant="Controller logits are capped to C*tanh(logits/T); 0 turns the cap off.",
    exploration="Uniform probability mixed into each decision while sampling.",
    grad_clip="Global gradient-norm clip of the controller update.",
    skip_weight="Weight of the skip penalty KL(skip probability || --skip_target) (ENAS: 0.8).",
    skip_target="Skip rate the skip penalty pulls towards (ENAS: 0.4).",
    reward_entropy="The sample's entropy times this is added to its reward (ENAS: 1e-4).",
    memory_size=(
        "Memory buffer of the controller (Adam & Lorraine 2019): architectures kept; every update "
        "adds a teacher-forced reconstruction loss on --memory_batch of them. 0: off; "
        "--strategy=memory_controller: 10000 unless given."
    ),
    memory_batch="Architectures drawn from the memory buffer per update.",
    memory_weight="Weight of the memory buffer's reconstruction loss.",
    memory_start="Controller updates made before the reconstruction loss is added.",
)


def score_title(name):
    """How reports name a training-free score's fitness (zero_cost.fitness)."""
    return specs.EVALUATIONS[name].title


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


def _setting(default, help_text, *, allowed=None, flag=None, group=None):
    """A SearchConfig field with what its train.py flag needs: its help, its allowed
    values (an enum flag), its flag type where the value's differs (`string`: a
    duration such as 45m), and the heading of the group of flags it starts. A
    callable default (dict) is the field's default factory."""
    metadata = {"help": help_text, "allowed": allowed, "flag": flag, "group": group}
    if callable(default):
        return dataclasses.field(default_factory=default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class SearchConfig:
    """Every setting of a search: its default, and what its train.py flag says and
    allows (`flag_settings`: train.py defines the flags from these fields, and
    docs/FLAGS.md is written from those flags)."""

    dataset: str = _setting(
        "mnist5k",
        "Dataset: mnist5k or cifar10_5k (embedded, no network: 5,000 MNIST digits, 5,000 real "
        "CIFAR-10 images), mnist, fashion_mnist or cifar10 (tensorflow-datasets, prepared in "
        "--data_dir).",
        group="Data.",
    )
    data_dir: str = _setting(
        None,
        "tensorflow-datasets data directory (default ~/tensorflow_datasets).",
    )
    download: bool = _setting(
        False,
        "Let tensorflow-datasets download a dataset that is not prepared.",
    )
    train_size: int = _setting(
        None,
        "Training images used (default: all that remain after the validation split).",
    )
    val_size: int = _setting(500, "Validation images, split off the training data with --seed.")
    space: str = _setting(
        "toy",
        "Search space: toy (kernel x filters per layer, 1,296 architectures), macro (ENAS ops plus "
        "skip connections), nb201 (the NAS-Bench-201 cell: one of 5 ops on each of 6 edges, "
        "15,625 cells), or your own: PATH.py:NAME or package.module:NAME, a "
        "state_space.StateSpace or a function of no arguments returning one (docs/EXTENDING.md).",
        group="Search space.",
    )
    template: str = _setting(
        None,
        "Network builder of the children: toy, macro, nb201, or your own, PATH.py:NAME or "
        "package.module:NAME, a function build(space, architecture, input_shape, num_classes) -> "
        "keras.Model (docs/EXTENDING.md). Default: the built-in space's own; a space of your own "
        "needs one (but with --evaluation=benchmark).",
    )
    num_layers: int = _setting(
        None,
        "Layers of the child network (default 4 for toy, 6 for macro; ENAS used 12).",
    )
    filters: int = _setting(24, "Channels of every layer of a macro child.")
    nb201_channels: int = _setting(
        16,
        "NB201 network trained or scored here: channels of the first stage (the benchmark's: 16; "
        "the stages have C, 2C, 4C).",
    )
    nb201_cells: int = _setting(
        5,
        "NB201 network trained or scored here: cells per stage (the benchmark's: 5).",
    )
    poison: str = _setting(
        "",
        "Degraded ops to inject into the op decision, comma-separated: identity, zero, noise2, "
        "noise10, dropout0.9, dropout1.0, tconv3x3, tconv5x5, stretched3x3; or ops the space "
        "already has, counted as poison (nb201: none, avg_pool_3x3, ...).",
        group="Search-space poisoning (poisoning.py; needs a space with an op decision: macro).",
    )
    poison_instances: int = _setting(
        1,
        "Choices k each poisoned op holds (macro: uniform poison rate k/(6+k) per op; an op the "
        "space already has is copied up to k).",
    )
    remove_ops: str = _setting(
        "",
        "Ops to remove from the op decision, comma-separated (removal poisoning).",
    )
    strategy: str = _setting(
        "controller",
        "How children are chosen: the RL controller; uniform random sampling; regularized "
        "evolution; proxy_ranking (score --proxy_candidates untrained random architectures with "
        "the training-free score --proxy, NASWOT's by default, and train the top --trials; its "
        "old name naswot still works); tpe (Bayesian optimization, Optuna's TPE sampler); "
        "budget_controller (the controller, exploring early in the budget and exploiting late); memory_controller (the "
        "controller with a memory buffer, --memory_size); embedding (a Gaussian policy in "
        "the latent space of an architecture autoencoder); or reinforce_table (REINFORCE on "
        "independent logits per decision, Adam at --table_lr: the NB201 paper's REINFORCE, the "
        "controller without its LSTM); darts or gdas (DARTS, first order, and GDAS: architecture "
        "parameters trained with the supernet's weights, --evaluation=shared --space=nb201); or "
        "your own, PATH.py:NAME or package.module:NAME, a class "
        "or factory called with (space, seed) (docs/EXTENDING.md).",
        group="Search.",
    )
    evaluation: str = _setting(
        "train",
        "How a proposed architecture gets its fitness: train (a child trained from scratch, its "
        "validation accuracy), shared (its accuracy on one validation minibatch with the weights "
        "of one supernet, ENAS; --space=macro or nb201), a training-free score of the untrained child "
        "(naswot: its NASWOT score; synflow, snip, grad_norm: a zero-cost proxy, as log(1 + "
        "value); params, flops: the naive baselines), or benchmark (--space=nb201: the cell's "
        "200-epoch test accuracy in NAS-Bench-201's table, an oracle; nothing is trained). With "
        "shared and a score only the final pick is trained.",
        allowed=EVALUATIONS,
    )
    benchmark: str = _setting(
        "nb201",
        "--evaluation=benchmark: the table of precomputed results: nb201 (NAS-Bench-201, "
        "--space=nb201), or your own, PATH.py:NAME or package.module:NAME, a benchmark or a "
        "function of no arguments returning one, e.g. benchmarks.Table of a CSV "
        "(docs/EXTENDING.md).",
    )
    benchmark_dataset: str = _setting(
        "cifar10",
        "--evaluation=benchmark with nb201: the dataset whose table accuracies are the fitness.",
        allowed=nb201.DATASETS,
    )
    benchmark_metric: str = _setting(
        "test200",
        "--evaluation=benchmark with nb201: the reward: test200 (the 200-epoch test accuracy, an "
        "oracle), valid12 (the 12-epoch validation accuracy; on CIFAR-10 the cifar10-valid "
        "protocol's, the NAS-Bench-201 paper's search reward) or valid200 (the 200-epoch "
        "validation accuracy). The pick is judged by its 200-epoch test accuracy whatever the "
        "reward (docs/NB201.md).",
        allowed=nb201.METRICS,
    )
    benchmark_seconds: float = _setting(
        None,
        "--evaluation=benchmark with nb201: a budget of simulated training seconds (the paper's: "
        "12000 with valid12): each query costs its cell's modelled training time for the reward's "
        "run, and the search stops before the query that would pass the budget; --trials stays "
        "an upper bound. CIFAR-10 and CIFAR-100 (docs/NB201.md).",
    )
    benchmark_noise: float = _setting(
        0.0,
        "--evaluation=benchmark: standard deviation (as a fraction: 0.01 is 1 point) of fresh "
        "Gaussian noise added to every query's reward (seeded by the run's seed and the query).",
    )
    benchmark_cell_noise: float = _setting(
        0.0,
        "--evaluation=benchmark: standard deviation of a persistent error per cell, the same "
        "whenever that cell is asked (seeded by the run's seed and the cell): a misranking reward.",
    )
    benchmark_bias: str = _setting(
        "",
        "--evaluation=benchmark: op:bonus[,op:bonus] added to the reward once per edge that uses "
        "the op (a biased reward, e.g. none:0.01).",
    )
    max_cost: str = _setting(
        "",
        "Hard budgets, cost:limit[,cost:limit]: a child over any is infeasible (never the pick, "
        "the failed child's reward, not evaluated). Costs: params, flops, latency (this machine's, "
        "ms) and, for --space=nb201, HW-NAS-Bench's device costs (pixel3_latency, "
        "edgegpu_energy, ...; docs/HARDWARE.md), e.g. pixel3_latency:6.4 or params:1e6.",
    )
    cost_target: str = _setting(
        "",
        "MnasNet's soft objective, cost:target[,cost:target]: the fitness is accuracy x "
        "(cost / target)^--cost_weight for each (docs/HARDWARE.md).",
    )
    cost_weight: float = _setting(
        objectives.MNASNET_WEIGHT,
        "The exponent W of --cost_target's (cost / target)^W: 0 or below (MnasNet: -0.07).",
    )
    population_size: int = _setting(
        20,
        "Evolution: population size P (e.g. 100 with sample 25 in Real et al.).",
    )
    sample_size: int = _setting(
        5,
        "Evolution: a parent is the fittest of this many random members (S).",
    )
    proxy_candidates: int = _setting(
        None,
        "proxy_ranking: untrained random architectures (candidates) to score (default 10 x "
        "--trials).",
    )
    proxy: str = _setting(
        "naswot",
        "proxy_ranking: the training-free score it ranks the candidates by (NASWOT's, or a "
        "zero-cost proxy: see --evaluation).",
        allowed=SCORES,
    )
    proxy_batch: int = _setting(
        128,
        "Training-free scores (a score's --evaluation, or proxy_ranking's --proxy): images of the "
        "minibatch (from the training split) that naswot, snip and grad_norm read.",
    )
    trials: int = _setting(
        64,
        "Child architectures in total (cached repeats count); with --time_budget or "
        "--benchmark_seconds and no --trials, no limit but the time.",
    )
    time_budget: float = _setting(
        None,
        "Wall-clock budget of the search (90s, 45m, 2h, 1h30m): no step starts that is expected to "
        "end after it; the step in flight finishes; the final retraining is not counted.",
        flag="string",
    )
    tpe_startup: int = _setting(
        10,
        "TPE: random children before the TPE model proposes (Optuna's default).",
    )
    budget_explore: float = _setting(
        0.5,
        "Budget-aware controller: uniform probability mixed into each decision at the start of the "
        "budget, falling linearly to 0 at its end.",
    )
    budget_sharpen: float = _setting(
        2.0,
        "Budget-aware controller: sampling logits are multiplied by a factor rising linearly from "
        "1 at the start of the budget to this at its end (1 = never sharpen).",
    )
    children_per_step: int = _setting(8, "Children per controller update (m in the paper: 8).")
    seed: int = _setting(0, "Seeds the data split, the controller, the sampler and every child.")
    shared_steps_per_epoch: int = _setting(
        50,
        "Strategy steps (of --children_per_step architectures) after each pass of the training "
        "split that trains the supernet (ENAS: 50 steps of 20).",
        group="Weight sharing (--evaluation=shared; weight_sharing.py, supernet.py, nb201_supernet.py).",
    )
    eval_batch: int = _setting(
        128,
        "Validation images that score one architecture with shared weights.",
    )
    reward_mode: str = _setting(
        "inference",
        "Shared-weight rewards in inference mode (dropout and noise off, ENAS) or in training mode "
        "(on, so rewards see what dropout and noise ops do; moving statistics untouched).",
        allowed=REWARD_MODES,
    )
    shared_bn: str = _setting(
        "batch",
        "Batch-normalization statistics of shared-weight rewards: the scored minibatch's own (ENAS "
        "PyTorch ports; ranks architectures better here, bench/shared_ranking.py) or each op's "
        "moving averages (the released ENAS code).",
        allowed=SHARED_BN,
    )
    shared_lr: float = _setting(0.05, "Supernet: Nesterov SGD learning rate at each restart.")
    shared_lr_min: float = _setting(0.0005, "Supernet: the cosine schedule's lowest rate.")
    shared_lr_t0: int = _setting(
        10,
        "Supernet: epochs of the first cosine period (each next one doubles).",
    )
    shared_l2: float = _setting(0.00025, "Supernet: L2 weight on every kernel.")
    shared_grad_clip: float = _setting(5.0, "Supernet: global gradient-norm clip.")
    derive_candidates: int = _setting(
        100,
        "Shared evaluation: architectures (from the final policy, or uniform) scored on the whole "
        "validation split at the end; the best is retrained from scratch.",
    )
    epochs: int = _setting(3, "Training epochs per child.", group="Child training.")
    batch_size: int = _setting(128, "Child minibatch size.")
    child_lr: float = _setting(0.003, "Adam learning rate of the children.")
    final_epochs: int = _setting(
        None,
        "Epochs for retraining the best architecture (default --epochs); 0: no retraining "
        "(best.json has the search's result, no test accuracy).",
    )
    cache: bool = _setting(
        True,
        "Answer a repeated architecture from the cache instead of retraining it.",
    )
    max_failures: int = _setting(5, "Stop after this many failed children in a row.")
    early_stop: str = _setting(
        "none",
        "Early stopping of weak children: median stops a child whose validation accuracy after an "
        "epoch is below the median of the run's complete children at that epoch (needs --epochs >= "
        "2).",
        allowed=EARLY_STOP,
    )
    early_stop_after: int = _setting(
        5,
        "Early stopping: complete children (trained every epoch) needed before any child is "
        "stopped.",
    )
    embedding_pretrain: int = _setting(
        2000,
        "Embedding: random architectures the autoencoder is trained on.",
        group="Search in an embedding space (--strategy=embedding; embedding.py).",
    )
    embedding_epochs: int = _setting(60, "Embedding: epochs of the autoencoder's training.")
    embedding_latent: int = _setting(
        None,
        "Embedding: latent dimensions (default: one per decision, at most 24).",
    )
    embedding_lr: float = _setting(0.1, "Embedding: Adam learning rate of the Gaussian policy.")
    table_lr: float = _setting(
        0.01,
        "reinforce_table: Adam learning rate of the logits (NATS-Bench's REINFORCE: 0.01).",
    )
    acc_beta: float = _setting(
        0.8,
        "Decay of the accuracy moving average used as the baseline.",
        group="Reward.",
    )
    clip_rewards: float = _setting(0.0, "Clip rewards to [-x, x]; 0 turns clipping off.")
    controller: dict = _setting(
        dict,
        "The controller's settings given, by CONTROLLER_DEFAULTS's names (the flags: "
        "CONTROLLER_HELP).",
        group="Controller (defaults and their sources: config.CONTROLLER_DEFAULTS).",
    )
    workers: int = _setting(
        None,
        "Children trained (or scored untrained) at once, each in its own worker process on Ray; "
        "0 = in the search process. Default: 1 for searches of more than 100 trials (flat memory), 0 "
        "otherwise and with --evaluation=shared.",
        group="Where children run (workers.py). A resumed run may change these.",
    )
    cpus_per_child: float = _setting(1.0, "CPUs Ray reserves for each worker.")
    gpus_per_child: float = _setting(
        None,
        "GPUs of each worker (default 1 where the Ray cluster has GPUs, else 0; 0.5 puts two "
        "children on one GPU). Children have not yet been measured on a GPU by this project: "
        "bench/gpu_check.py is the check, ready to run on a machine with one.",
    )
    ray_address: str = _setting(
        None,
        "A running Ray cluster to use ('auto', or host:port of its head); default: a local Ray "
        "started and stopped by the search.",
    )
    worker_children: int = _setting(
        50,
        "Children a worker process trains before a fresh one replaces it.",
    )
    worker_growth_mb: int = _setting(
        250,
        "A worker whose memory grew this many MB after its first child is replaced.",
    )
    logdir: str = _setting("logs", "Folder that holds the run folders.", group="Output.")
    run_name: str = _setting(
        None,
        "Run folder name (default "
        "<space>[-poisoned|-removed]-<strategy>[-shared|-naswot]-seed<seed>).",
    )
    tensorboard: bool = _setting(True, "Write TensorBoard events.")

    @property
    def score_name(self):
        """The training-free score of the run: the evaluation's, or --strategy=proxy_ranking's
        (`proxy`)."""
        return self.evaluation if specs.EVALUATIONS[self.evaluation].score else self.proxy

    def resolved(self):
        """A copy with the None defaults filled in, after checking every value."""
        c = dataclasses.replace(self, controller=dict(self.controller))
        for f in dataclasses.fields(c):  # Old values (RENAMED_VALUES) under their new names.
            setattr(c, f.name, renamed_value(f.name, getattr(c, f.name)))
        _check_choices(c)
        _resolve_template(c)
        _check_evaluation(c)
        _resolve_controller(c)
        _resolve_budget(c)
        _check_counts(c)
        _resolve_poisoning(c)
        _check_strategies(c)
        _check_training(c)
        _check_objective(c)
        _resolve_execution(c)
        _resolve_run_name(c)
        return c


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(SearchConfig))
_init = SearchConfig.__init__


@functools.wraps(_init)
def _init_renamed(self, *args, **kwargs):
    """SearchConfig(...) takes a renamed field's old name (RENAMED_FLAGS) as a keyword."""
    _init(self, *args, **renamed_fields(kwargs))


SearchConfig.__init__ = _init_renamed


def _check_choices(c):
    """Every setting with allowed values (its field's `allowed`, its flag's enum) holds
    one of them, and the dataset is one data.py knows."""
    for f in dataclasses.fields(c):
        allowed, value = f.metadata["allowed"], getattr(c, f.name)
        _check(
            not allowed or value in allowed,
            f"--{f.name} must be one of {list(allowed or ())}, got {value!r}",
        )
    _check(
        c.dataset in data.DATASETS,
        f"--dataset must be one of {list(data.DATASETS)}, got {c.dataset!r}",
    )
    for registry, value in (
        (REGISTRIES["space"], c.space),
        (REGISTRIES["template"], c.template),
        (REGISTRIES["strategy"], c.strategy),
        (REGISTRIES["benchmark"], c.benchmark),
    ):
        if value is not None:
            try:
                registry.check_name(value)
            except extensions.ExtensionError as e:
                raise ConfigError(str(e)) from None


def _resolve_template(c):
    """The network builder: the built-in space's own unless one is given."""
    builtin = REGISTRIES["space"].is_builtin(c.space)
    if c.template is None:
        _check(
            builtin or not specs.EVALUATIONS[c.evaluation].builds,
            f"--space={c.space} is a space of your own: give the network builder of its "
            f"children with --template=PATH.py:NAME (a function build(space, architecture, "
            f"input_shape, num_classes) -> keras.Model)",
        )
        c.template = c.space if builtin else None


# Which names each registry holds (for the checks before any framework loads: the
# registries themselves hold the objects).
REGISTRIES = {
    "space": extensions.Registry("space", "--space", dict.fromkeys(SPACES)),
    "template": extensions.Registry("network builder", "--template", dict.fromkeys(TEMPLATES)),
    "strategy": extensions.Registry("strategy", "--strategy", dict.fromkeys(STRATEGIES)),
    "benchmark": extensions.Registry("benchmark", "--benchmark", dict.fromkeys(BENCHMARKS)),
}


def _check_evaluation(c):
    """How children get their fitness: the strategy against it, and the table's settings."""
    _check_spec(specs.check_strategy, c)
    table = specs.EVALUATIONS[c.evaluation].table
    default = _defaults()
    _check(
        c.benchmark == default["benchmark"] or table,
        f"--benchmark={c.benchmark} is the table of --evaluation=benchmark, got "
        f"--evaluation={c.evaluation}",
    )
    for name in ("benchmark_noise", "benchmark_cell_noise"):
        value = getattr(c, name)
        _check(value >= 0 and math.isfinite(value), f"--{name} must be a standard deviation >= 0, got {value}")
    for owner, spec in specs.BENCHMARKS.items():
        for name, what in spec.settings.items():
            given = getattr(c, name) != default[name]
            _check(
                not given or c.benchmark == owner,
                f"--{name} {what} of {spec.title} (--benchmark={owner}), got "
                f"--benchmark={c.benchmark}",
            )
            _check(
                not given or table,
                f"--{name} {what} of {spec.title}: it needs --evaluation=benchmark, got "
                f"--evaluation={c.evaluation}",
            )
    try:
        nb201.parse_bias(c.benchmark_bias)
    except nb201.BenchmarkError as e:
        raise ConfigError(str(e)) from None
    if c.benchmark_seconds is not None:
        _check(
            isinstance(c.benchmark_seconds, (int, float)) and not isinstance(c.benchmark_seconds, bool)
            and math.isfinite(c.benchmark_seconds) and c.benchmark_seconds > 0,
            f"--benchmark_seconds must be a number of seconds > 0, got {c.benchmark_seconds!r}",
        )
        _check(
            (c.benchmark_metric, c.benchmark_dataset) in nb201.TRAINING_IMAGES,
            f"--benchmark_seconds needs a known training time: --benchmark_dataset=cifar10 or "
            f"cifar100, got {c.benchmark_dataset} (its images are of another size and number)",
        )


def _resolve_controller(c):
    """The controller's settings: the strategy's memory buffer size filled in, all checked."""
    memory_size = specs.strategy(c.strategy).memory_size
    if memory_size and not c.controller.get("memory_size"):
        c.controller["memory_size"] = memory_size
    check_controller(c.controller, flags=True)


def _resolve_budget(c):
    """The space's depth, the budget (trials, time) and early stopping."""
    _check_spec(specs.check_layers, c)
    if c.num_layers is None:
        c.num_layers = specs.space(c.space).layers
    if c.time_budget is not None:
        try:
            c.time_budget = budget.parse_duration(c.time_budget)
        except ValueError as e:
            raise ConfigError(f"--time_budget: {e}") from None
    _check(
        c.trials is not None or c.time_budget is not None or c.benchmark_seconds is not None,
        "--trials must be an integer >= 1 (it may be left out only with --time_budget or "
        "--benchmark_seconds)",
    )
    _check(
        c.early_stop == "none" or (specs.EVALUATIONS[c.evaluation].trains and c.epochs >= 2),
        f"--early_stop={c.early_stop} stops trained children between epochs: it needs "
        f"--evaluation=train and --epochs >= 2 (got --evaluation={c.evaluation}, "
        f"--epochs={c.epochs})",
    )
    _check(
        0 <= c.budget_explore < 1,
        f"--budget_explore must be in [0, 1), got {c.budget_explore}",
    )
    _check(c.budget_sharpen > 0, f"--budget_sharpen must be > 0, got {c.budget_sharpen}")


def _check_counts(c):
    """The settings that count something: integers >= 1."""
    for name in (
        *(["num_layers"] if c.num_layers is not None else []),
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
        "proxy_batch",
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


def _resolve_poisoning(c):
    """The poisoning's op lists, normalized, and what each space and evaluation allows."""
    c.poison = _op_list(c.poison, "poison")
    c.remove_ops = _op_list(c.remove_ops, "remove_ops")
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
    _check_spec(specs.check_ops, c)


def _check_strategies(c):
    """The strategies' own settings (evolution, embedding, table, proxy ranking), defaults
    filled in."""
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
    _check(c.proxy_batch >= 2, f"--proxy_batch must be >= 2, got {c.proxy_batch}")
    if c.proxy_candidates is None:
        c.proxy_candidates = 10 * c.trials if c.trials else 1000
    _check(
        isinstance(c.proxy_candidates, int) and c.proxy_candidates >= (c.trials or 1),
        f"--proxy_candidates must be an integer >= --trials={c.trials} (the top --trials "
        f"candidates are trained), got {c.proxy_candidates!r}",
    )


def _check_training(c):
    """Child training, rewards and the supernet's optimizer."""
    if c.final_epochs is None:
        c.final_epochs = c.epochs
    _check(c.final_epochs >= 0, f"--final_epochs must be >= 0, got {c.final_epochs}")
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


def objective_of(c):
    """The `objectives.Objective` of --max_cost, --cost_target and --cost_weight.

    Raises:
      ConfigError: a flag that cannot be read.
    """
    try:
        return objectives.Objective.from_flags(c.max_cost, c.cost_target, c.cost_weight)
    except objectives.ObjectiveError as e:
        raise ConfigError(str(e)) from None


def _check_objective(c):
    """Budgets and targets: each cost one the run can know before it evaluates a child."""
    objective = objective_of(c)
    _check(
        objective.targets or c.cost_weight == objectives.MNASNET_WEIGHT,
        "--cost_weight is the exponent of --cost_target's trade-off; it needs --cost_target",
    )
    if not objective:
        return
    evaluation = specs.EVALUATIONS[c.evaluation]
    for name in objective.names:
        if name in hardware.COSTS:
            held = " or ".join(f"--space={n}" for n, e in specs.SPACES.items() if e.device_costs)
            _check(
                specs.space(c.space).device_costs and c.benchmark_dataset == hardware.DATASET,
                f"{name} is HW-NAS-Bench's cost of a NAS-Bench-201 cell at the CIFAR-10 input "
                f"size: it needs {held} (and --benchmark_dataset={hardware.DATASET}), got "
                f"--space={c.space} --benchmark_dataset={c.benchmark_dataset}",
            )
        elif name == "latency":
            _check(
                evaluation.builds,
                f"latency is measured on the built network and --evaluation={c.evaluation} "
                f"builds none; with NAS-Bench-201 use a device's (pixel3_latency, "
                f"edgegpu_latency, ...)",
            )
        else:
            builtin = REGISTRIES["benchmark"].is_builtin(c.benchmark)
            _check(
                evaluation.builds or specs.benchmark(c.benchmark).costs or not builtin,
                f"{name} of --benchmark={c.benchmark}: the table gives no costs; costs of a "
                f"built network need --evaluation=train (or a score)",
            )
    _check(
        not objective.targets or not evaluation.score,
        f"--cost_target multiplies an accuracy by the cost's trade-off; the fitness of "
        f"--evaluation={c.evaluation} is a score: use --max_cost",
    )
    refused = specs.strategy(c.strategy).derived
    _check(
        not refused,
        f"--strategy={c.strategy} with --max_cost or --cost_target: {refused}",
    )


def _resolve_execution(c):
    """Where children run (workers, CPUs, GPUs) and the minibatches the data allows."""
    c.workers = _resolve_workers(c)
    evaluation = specs.EVALUATIONS[c.evaluation]
    if evaluation.images:
        try:
            data.check_sizes(c.dataset, c.train_size, c.val_size)
        except data.DataError as e:
            raise ConfigError(str(e)) from None
    if evaluation.check:
        _check_spec(evaluation.check, c)
    if specs.uses_scores(c):
        _check_spec(specs.check_score_batch, c)
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


def _default_run_name(c, strategy=None):
    """The run folder's default name (`strategy`: the strategy's name in it, if not its
    current one)."""
    attack = "-poisoned" if c.poison else ("-removed" if c.remove_ops else "")
    default = _defaults()
    evaluation = "".join(  # Each setting that is not its default, by its value.
        f"-{getattr(c, name)}"
        for name in ("evaluation", "proxy", "benchmark_dataset", "benchmark_metric")
        if getattr(c, name) != default[name]
    )
    space, strategy = extensions.label(c.space), extensions.label(strategy or c.strategy)
    return f"{space}{attack}-{strategy}{evaluation}-seed{c.seed}"


def earlier_run_names(c):
    """The default run folder names `c` (resolved, its run name the default) had under
    the strategy's old names (RENAMED_VALUES): a run started before the rename is in one."""
    return [_default_run_name(c, old) for old in old_values("strategy", c.strategy)]


def _resolve_run_name(c):
    """The run's folder name: the default says what the run is."""
    if c.run_name is None:
        c.run_name = _default_run_name(c)
    _check(
        bool(c.run_name) and os.sep not in c.run_name and c.run_name not in (".", ".."),
        f"--run_name must be a plain folder name, got {c.run_name!r}",
    )


@dataclasses.dataclass(frozen=True)
class FlagSetting:
    """One train.py flag, as a SearchConfig field (or a controller setting) declares it.

    Attributes:
      name: the flag's name (the field's, or CONTROLLER_FLAGS's for a controller one).
      field: the SearchConfig field it sets.
      key: the controller setting it sets (field `controller`), or None.
      kind: "string", "integer", "float", "boolean" or "enum".
      default, help, allowed: the flag's default, help and allowed values (enum).
      group: the heading of the group of flags it belongs to.
    """

    name: str
    field: str
    key: str
    kind: str
    default: object
    help: str
    allowed: tuple
    group: str


_KINDS = {str: "string", int: "integer", float: "float", bool: "boolean"}


def flag_settings():
    """Every setting's train.py flag, in the order of the fields (the controller's in
    CONTROLLER_HELP's order where the `controller` field stands)."""
    found, group = [], None
    for f in dataclasses.fields(SearchConfig):
        group = f.metadata["group"] or group
        if f.name == "controller":
            for key, text in CONTROLLER_HELP.items():
                default = CONTROLLER_DEFAULTS[key]
                kind = "integer" if type(default) is int else "float"
                name = CONTROLLER_FLAGS.get(key, key)
                found.append(FlagSetting(name, f.name, key, kind, default, text, None, group))
            continue
        allowed = f.metadata["allowed"]
        kind = "enum" if allowed else (f.metadata["flag"] or _KINDS[f.type])
        found.append(
            FlagSetting(f.name, f.name, None, kind, f.default, f.metadata["help"], allowed, group)
        )
    return found


def _resolve_workers(c):
    """`--workers`, checked; None (automatic) becomes 1 for a search that trains or
    scores more than AUTO_WORKER_TRIALS children (its memory stays flat) and 0 (in
    this process, no Ray start) for shorter ones and for shared weights."""
    evaluation = specs.EVALUATIONS[c.evaluation]
    if c.workers is None:  # A search limited by time alone may train any number.
        long = c.trials is None or c.trials > AUTO_WORKER_TRIALS
        return 1 if not evaluation.in_process and long else 0
    _check(
        isinstance(c.workers, int) and not isinstance(c.workers, bool) and c.workers >= 0,
        f"--workers must be an integer >= 0 (0 = children in the search process), "
        f"got {c.workers!r}",
    )
    _check(
        not evaluation.in_process or c.workers == 0,
        f"--workers={c.workers} is for trained or scored children; with "
        f"--evaluation={c.evaluation} {evaluation.in_process}: use --workers=0",
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


# The SearchConfig fields (train.py's --shared_<name> flags) that are settings of
# weight_sharing.SharedEvaluator, which names each <name> (its DEFAULTS are their defaults).
SHARED_SETTINGS = ("shared_bn", "shared_lr", "shared_lr_min", "shared_lr_t0", "shared_l2",
                   "shared_grad_clip")


def shared_settings(c=None):
    """{SharedEvaluator setting: value} of the SearchConfig `c`, or the defaults."""
    fields = {f.name: f for f in dataclasses.fields(SearchConfig)}
    return {
        field.removeprefix("shared_"): fields[field].default if c is None else getattr(c, field)
        for field in SHARED_SETTINGS
    }


def _defaults():
    """{SearchConfig field: its default} (the fields with a plain default)."""
    return {f.name: f.default for f in dataclasses.fields(SearchConfig)}


def _check_spec(check, c):
    """Raise the one-line error a check of specs.py finds (the data's sizes among them)."""
    try:
        message = check(c)
    except data.DataError as e:
        message = str(e)
    _check(message is None, message)


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
        if "reward" in saved and "evaluation" not in saved:  # Runs made before --evaluation.
            saved["evaluation"] = "naswot" if saved["reward"] == "naswot" else "train"
        saved = renamed_fields(saved)  # Runs made before a rename (RENAMED_FLAGS, _VALUES).
        saved = {k: renamed_value(k, v) for k, v in saved.items() if k in _FIELD_NAMES}
        return SearchConfig(**saved)
    except (ValueError, TypeError, AttributeError) as e:
        raise ConfigError(f"cannot read {path}: it is damaged ({e})") from None
