"""Runs an architecture search: flags, then one call into `search.run_search`.

  python train.py                                   # toy space, controller, mnist5k
  python train.py --space=macro --trials=200 --epochs=2
  python train.py --strategy=random --seed=3
  python train.py --strategy=evolution --population_size=20 --sample_size=5
  python train.py --strategy=naswot --trials=8 --naswot_candidates=500
  python train.py --evaluation=naswot --trials=500      # controller learns from NASWOT
  python train.py --flagfile=configs/enas.flags         # ENAS: weight sharing
  python train.py --flagfile=configs/rsws.flags         # random search, weight sharing
  python train.py --space=macro --poison=dropout1.0,stretched3x3 --poison_instances=6
  python train.py --flagfile=configs/nb201.flags        # NAS-Bench-201, table lookups
  python train.py --space=nb201 --nb201_channels=4 --nb201_cells=1 --trials=8  # trained
  python train.py --flagfile=configs/toy.flags

Bad flags get one line on stderr and exit status 2.
"""

import dataclasses
import os
import signal
import sys
import threading

# Keep TensorFlow's C++ log lines out (start-up chatter, and a harmless "NodeDef mentions
# attribute use_unbounded_threadpool" error line of TF 2.21's tf.data per run); Python
# exceptions still carry every real error. Set TF_CPP_MIN_LOG_LEVEL to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


_STDERR = [2]  # The command's own standard error (a copy: quiet_stderr redirects fd 2).


def _not_started(signum):
    """The line of a stop before the run folder holds anything."""
    sys.stderr.flush()
    line = f"\ninterrupted by {signal.Signals(signum).name} before the run started; nothing was written\n"
    os.write(_STDERR[0], line.encode())


def _stopped_early(signum, _frame):
    """SIGINT or SIGTERM before the search's own handlers are in place (parsing flags,
    checking settings, importing TensorFlow and the search): one line, no traceback, and
    the process ends at once. A KeyboardInterrupt raised inside TensorFlow's import and
    unwound through its half-made native state crashed the process (SIGSEGV, no line:
    bench/faults.py, evolution, SIGINT)."""
    _not_started(signum)
    os._exit(128 + signum)  # pylint: disable=protected-access


if __name__ == "__main__":  # The command only: assess.py imports this module for its flags.
    _STDERR[0] = os.dup(2)
    for _signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_signum, _stopped_early)

import crash_guard  # noqa: E402  (the standard library only)

if __name__ == "__main__":
    crash_guard.ready()  # A guarding process may pass signals on from now on.

from absl import app, flags  # noqa: E402

import config as config_lib  # noqa: E402  (pure Python: no TensorFlow yet)
import poisoning  # noqa: E402
import run_state  # noqa: E402
from run_log import quiet_stderr  # noqa: E402

FLAGS = flags.FLAGS

# Data.
flags.DEFINE_string(
    "dataset",
    "mnist5k",
    "Dataset: mnist5k (embedded, no network), mnist, "
    "fashion_mnist or cifar10 (tensorflow-datasets, prepared in --data_dir).",
)
flags.DEFINE_string(
    "data_dir", None, "tensorflow-datasets data directory (default ~/tensorflow_datasets)."
)
flags.DEFINE_boolean(
    "download", False, "Let tensorflow-datasets download a dataset that is not prepared."
)
flags.DEFINE_integer(
    "train_size",
    None,
    "Training images used (default: all that remain after the validation split).",
)
flags.DEFINE_integer("val_size", 500, "Validation images, split off the training data with --seed.")

# Search space.
flags.DEFINE_enum(
    "space",
    "toy",
    list(config_lib.SPACES),
    "Search space: toy (kernel x filters per layer, 1,296 architectures), macro (ENAS ops "
    "plus skip connections) or nb201 (the NAS-Bench-201 cell: one of 5 ops on each of 6 "
    "edges, 15,625 cells).",
)
flags.DEFINE_integer(
    "num_layers",
    None,
    "Layers of the child network (default 4 for toy, 6 for macro; ENAS used 12).",
)
flags.DEFINE_integer("filters", 24, "Channels of every layer of a macro child.")
flags.DEFINE_integer(
    "nb201_channels",
    16,
    "NB201 network trained or scored here: channels of the first stage (the benchmark's: 16; "
    "the stages have C, 2C, 4C).",
)
flags.DEFINE_integer(
    "nb201_cells", 5, "NB201 network trained or scored here: cells per stage (the benchmark's: 5)."
)

# Search-space poisoning (poisoning.py; needs a space with an op decision: macro).
flags.DEFINE_string(
    "poison",
    "",
    "Degraded ops to inject into the op decision, comma-separated: identity, zero, noise2, "
    "noise10, dropout0.9, dropout1.0, tconv3x3, tconv5x5, stretched3x3; or ops the space "
    "already has, counted as poison (nb201: none, avg_pool_3x3, ...).",
)
flags.DEFINE_integer(
    "poison_instances",
    1,
    "Choices k each poisoned op holds (macro: uniform poison rate k/(6+k) per op; an op the "
    "space already has is copied up to k).",
)
flags.DEFINE_string(
    "remove_ops", "", "Ops to remove from the op decision, comma-separated (removal poisoning)."
)

# Search.
flags.DEFINE_enum(
    "strategy",
    "controller",
    list(config_lib.STRATEGIES),
    "How children are chosen: the RL controller; uniform random sampling; regularized "
    "evolution; naswot (score --naswot_candidates untrained random architectures, train "
    "the top --trials); tpe (Bayesian optimization, Optuna's TPE sampler); "
    "budget_controller (the controller, exploring early in the budget and exploiting late); "
    "memory_controller (the controller with a memory buffer, --controller_memory); "
    "embedding (a Gaussian policy in the latent space of an architecture autoencoder); or "
    "reinforce_table (REINFORCE on independent logits per decision, Adam at --table_lr: "
    "the NB201 paper's REINFORCE, the controller without its LSTM).",
)
flags.DEFINE_enum(
    "evaluation",
    "train",
    list(config_lib.EVALUATIONS),
    "How a proposed architecture gets its fitness: train (a child trained from scratch, its "
    "validation accuracy), shared (its accuracy on one validation minibatch with the weights "
    "of one supernet, ENAS; --space=macro), a training-free score of the untrained child "
    "(naswot: its NASWOT score; synflow, snip, grad_norm: a zero-cost proxy, as log(1 + value); "
    "params, flops: the naive baselines), or benchmark (--space=nb201: the cell's 200-epoch "
    "test accuracy in NAS-Bench-201's table, an oracle; nothing is trained). With shared and "
    "a score only the final pick is trained.",
)
flags.DEFINE_enum(
    "benchmark_dataset",
    "cifar10",
    ["cifar10", "cifar100", "imagenet16-120"],
    "--evaluation=benchmark: the dataset whose table accuracies are the fitness.",
)
flags.DEFINE_float(
    "benchmark_noise",
    0.0,
    "--evaluation=benchmark: standard deviation (as a fraction: 0.01 is 1 point) of fresh "
    "Gaussian noise added to every query's reward (seeded by the run's seed and the query).",
)
flags.DEFINE_float(
    "benchmark_cell_noise",
    0.0,
    "--evaluation=benchmark: standard deviation of a persistent error per cell, the same "
    "whenever that cell is asked (seeded by the run's seed and the cell): a misranking reward.",
)
flags.DEFINE_string(
    "benchmark_bias",
    "",
    "--evaluation=benchmark: op:bonus[,op:bonus] added to the reward once per edge that uses "
    "the op (a biased reward, e.g. none:0.01).",
)
flags.DEFINE_integer(
    "population_size", 20, "Evolution: population size P (e.g. 100 with sample 25 in Real et al.)."
)
flags.DEFINE_integer(
    "sample_size", 5, "Evolution: a parent is the fittest of this many random members (S)."
)
flags.DEFINE_integer(
    "naswot_candidates",
    None,
    "NASWOT strategy: untrained random architectures to score (default 10 x --trials).",
)
flags.DEFINE_enum(
    "proxy",
    "naswot",
    list(config_lib.SCORES),
    "NASWOT strategy: the training-free score it ranks the candidates by (NASWOT's, or a "
    "zero-cost proxy: see --evaluation).",
)
flags.DEFINE_integer(
    "naswot_batch",
    128,
    "Training-free scores: images of the minibatch (from the training split) that naswot, "
    "snip and grad_norm read.",
)
flags.DEFINE_integer(
    "trials",
    64,
    "Child architectures in total (cached repeats count); with --time_budget and no --trials, "
    "no limit but the time.",
)
flags.DEFINE_string(
    "time_budget",
    None,
    "Wall-clock budget of the search (90s, 45m, 2h, 1h30m): no step starts that is expected "
    "to end after it; the step in flight finishes; the final retraining is not counted.",
)
flags.DEFINE_integer(
    "tpe_startup", 10, "TPE: random children before the TPE model proposes (Optuna's default)."
)
flags.DEFINE_float(
    "budget_explore",
    0.5,
    "Budget-aware controller: uniform probability mixed into each decision at the start of "
    "the budget, falling linearly to 0 at its end.",
)
flags.DEFINE_float(
    "budget_sharpen",
    2.0,
    "Budget-aware controller: sampling logits are multiplied by a factor rising linearly from "
    "1 at the start of the budget to this at its end (1 = never sharpen).",
)
flags.DEFINE_integer("children_per_step", 8, "Children per controller update (m in the paper: 8).")
flags.DEFINE_integer(
    "seed", 0, "Seeds the data split, the controller, the sampler and every child."
)

# Weight sharing (--evaluation=shared; weight_sharing.py, supernet.py).
flags.DEFINE_integer(
    "shared_steps_per_epoch",
    50,
    "Strategy steps (of --children_per_step architectures) after each pass of the training "
    "split that trains the supernet (ENAS: 50 steps of 20).",
)
flags.DEFINE_integer(
    "eval_batch", 128, "Validation images that score one architecture with shared weights."
)
flags.DEFINE_enum(
    "reward_mode",
    "inference",
    list(config_lib.REWARD_MODES),
    "Shared-weight rewards in inference mode (dropout and noise off, ENAS) or in training mode "
    "(on, so rewards see what dropout and noise ops do; moving statistics untouched).",
)
flags.DEFINE_enum(
    "shared_bn",
    "batch",
    list(config_lib.SHARED_BN),
    "Batch-normalization statistics of shared-weight rewards: the scored minibatch's own "
    "(ENAS PyTorch ports; ranks architectures better here, bench/shared_ranking.py) or each "
    "op's moving averages (the released ENAS code).",
)
flags.DEFINE_float("shared_lr", 0.05, "Supernet: Nesterov SGD learning rate at each restart.")
flags.DEFINE_float("shared_lr_min", 0.0005, "Supernet: the cosine schedule's lowest rate.")
flags.DEFINE_integer(
    "shared_lr_t0", 10, "Supernet: epochs of the first cosine period (each next one doubles)."
)
flags.DEFINE_float("shared_l2", 2.5e-4, "Supernet: L2 weight on every kernel.")
flags.DEFINE_float("shared_grad_clip", 5.0, "Supernet: global gradient-norm clip.")
flags.DEFINE_integer(
    "derive_candidates",
    100,
    "Shared evaluation: architectures (from the final policy, or uniform) scored on the whole "
    "validation split at the end; the best is retrained from scratch.",
)

# Child training.
flags.DEFINE_integer("epochs", 3, "Training epochs per child.")
flags.DEFINE_integer("batch_size", 128, "Child minibatch size.")
flags.DEFINE_float("child_lr", 3e-3, "Adam learning rate of the children.")
flags.DEFINE_integer(
    "final_epochs", None, "Epochs for retraining the best architecture (default --epochs)."
)
flags.DEFINE_boolean(
    "cache", True, "Answer a repeated architecture from the cache instead of retraining it."
)
flags.DEFINE_integer("max_failures", 5, "Stop after this many failed children in a row.")
flags.DEFINE_enum(
    "early_stop",
    "none",
    list(config_lib.EARLY_STOP),
    "Early stopping of weak children: median stops a child whose validation accuracy after an "
    "epoch is below the median of the run's complete children at that epoch (needs --epochs "
    ">= 2).",
)
flags.DEFINE_integer(
    "early_stop_after",
    5,
    "Early stopping: complete children (trained every epoch) needed before any child is stopped.",
)

# Search in an embedding space (--strategy=embedding; embedding.py).
flags.DEFINE_integer(
    "embedding_pretrain", 2000, "Embedding: random architectures the autoencoder is trained on."
)
flags.DEFINE_integer("embedding_epochs", 60, "Embedding: epochs of the autoencoder's training.")
flags.DEFINE_integer(
    "embedding_latent", None, "Embedding: latent dimensions (default: one per decision, at most 24)."
)
flags.DEFINE_float("embedding_lr", 0.1, "Embedding: Adam learning rate of the Gaussian policy.")
flags.DEFINE_float(
    "table_lr", 0.01, "reinforce_table: Adam learning rate of the logits (NATS-Bench's REINFORCE: 0.01)."
)

# Reward.
flags.DEFINE_float("acc_beta", 0.8, "Decay of the accuracy moving average used as the baseline.")
flags.DEFINE_float("clip_rewards", 0.0, "Clip rewards to [-x, x]; 0 turns clipping off.")

# Controller (defaults and their sources: config.CONTROLLER_DEFAULTS).
_CONTROLLER = config_lib.CONTROLLER_DEFAULTS
flags.DEFINE_integer("lstm_units", _CONTROLLER["lstm_units"], "Controller LSTM units per layer.")
flags.DEFINE_integer("lstm_layers", _CONTROLLER["lstm_layers"], "Controller LSTM layers.")
flags.DEFINE_integer("embedding_size", _CONTROLLER["embedding_size"], "Controller embedding size.")
flags.DEFINE_float("controller_lr", _CONTROLLER["learning_rate"], "Controller Adam learning rate.")
flags.DEFINE_float(
    "entropy_weight",
    _CONTROLLER["entropy_weight"],
    "Weight of the entropy bonus in the controller loss.",
)
flags.DEFINE_float(
    "temperature", _CONTROLLER["temperature"], "Controller logits are divided by this."
)
flags.DEFINE_float(
    "tanh_constant",
    _CONTROLLER["tanh_constant"],
    "Controller logits are capped to C*tanh(logits/T); 0 turns the cap off.",
)
flags.DEFINE_float(
    "exploration",
    _CONTROLLER["exploration"],
    "Uniform probability mixed into each decision while sampling.",
)
flags.DEFINE_float(
    "grad_clip", _CONTROLLER["grad_clip"], "Global gradient-norm clip of the controller update."
)
flags.DEFINE_float(
    "skip_weight",
    _CONTROLLER["skip_weight"],
    "Weight of the skip penalty KL(skip probability || --skip_target) (ENAS: 0.8).",
)
flags.DEFINE_float(
    "skip_target",
    _CONTROLLER["skip_target"],
    "Skip rate the skip penalty pulls towards (ENAS: 0.4).",
)
flags.DEFINE_float(
    "reward_entropy",
    _CONTROLLER["reward_entropy"],
    "The sample's entropy times this is added to its reward (ENAS: 1e-4).",
)
flags.DEFINE_integer(
    "controller_memory",
    _CONTROLLER["memory_size"],
    "Memory buffer of the controller (Adam & Lorraine 2019): architectures kept; every update "
    "adds a teacher-forced reconstruction loss on --memory_batch of them. 0: off; "
    "--strategy=memory_controller: 10000 unless given.",
)
flags.DEFINE_integer(
    "memory_batch",
    _CONTROLLER["memory_batch"],
    "Architectures drawn from the memory buffer per update.",
)
flags.DEFINE_float(
    "memory_weight",
    _CONTROLLER["memory_weight"],
    "Weight of the memory buffer's reconstruction loss.",
)
flags.DEFINE_integer(
    "memory_start",
    _CONTROLLER["memory_start"],
    "Controller updates made before the reconstruction loss is added.",
)

# Where children run (workers.py). A resumed run may change these.
flags.DEFINE_integer(
    "workers",
    None,
    "Children trained (or NASWOT-scored) at once, each in its own worker process on Ray; "
    "0 = in the search process. Default: 1 for searches of more than 100 trials (flat "
    "memory), 0 otherwise and with --evaluation=shared.",
)
flags.DEFINE_float("cpus_per_child", 1.0, "CPUs Ray reserves for each worker.")
flags.DEFINE_float(
    "gpus_per_child",
    None,
    "GPUs of each worker (default 1 where the Ray cluster has GPUs, else 0; 0.5 puts two "
    "children on one GPU). Children have not yet been measured on a GPU by this project: "
    "bench/gpu_check.py is the check, ready to run on a machine with one.",
)
flags.DEFINE_string(
    "ray_address",
    None,
    "A running Ray cluster to use ('auto', or host:port of its head); default: a local "
    "Ray started and stopped by the search.",
)
flags.DEFINE_integer(
    "worker_children", 50, "Children a worker process trains before a fresh one replaces it."
)
flags.DEFINE_integer(
    "worker_growth_mb",
    250,
    "A worker whose memory grew this many MB after its first child is replaced.",
)

# Output.
flags.DEFINE_string("logdir", "logs", "Folder that holds the run folders.")
flags.DEFINE_string(
    "run_name",
    None,
    "Run folder name (default <space>[-poisoned|-removed]-<strategy>[-shared|-naswot]-seed<seed>).",
)
flags.DEFINE_boolean("tensorboard", True, "Write TensorBoard events.")
flags.DEFINE_boolean(
    "resume",
    False,
    "Continue the run in <logdir>/<run_name> where it "
    "stopped, with the settings it was started with.",
)


def config_from_flags():
    """Converts the flags, once, into a plain SearchConfig."""
    return config_lib.SearchConfig(
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        download=FLAGS.download,
        train_size=FLAGS.train_size,
        val_size=FLAGS.val_size,
        space=FLAGS.space,
        num_layers=FLAGS.num_layers,
        filters=FLAGS.filters,
        nb201_channels=FLAGS.nb201_channels,
        nb201_cells=FLAGS.nb201_cells,
        poison=FLAGS.poison,
        poison_instances=FLAGS.poison_instances,
        remove_ops=FLAGS.remove_ops,
        strategy=FLAGS.strategy,
        # A time budget without --trials: no limit on the number of children.
        trials=None if FLAGS.time_budget and not FLAGS["trials"].present else FLAGS.trials,
        time_budget=FLAGS.time_budget,
        tpe_startup=FLAGS.tpe_startup,
        budget_explore=FLAGS.budget_explore,
        budget_sharpen=FLAGS.budget_sharpen,
        children_per_step=FLAGS.children_per_step,
        seed=FLAGS.seed,
        evaluation=FLAGS.evaluation,
        benchmark_dataset=FLAGS.benchmark_dataset,
        benchmark_noise=FLAGS.benchmark_noise,
        benchmark_cell_noise=FLAGS.benchmark_cell_noise,
        benchmark_bias=FLAGS.benchmark_bias,
        shared_steps_per_epoch=FLAGS.shared_steps_per_epoch,
        eval_batch=FLAGS.eval_batch,
        reward_mode=FLAGS.reward_mode,
        shared_bn=FLAGS.shared_bn,
        shared_lr=FLAGS.shared_lr,
        shared_lr_min=FLAGS.shared_lr_min,
        shared_lr_t0=FLAGS.shared_lr_t0,
        shared_l2=FLAGS.shared_l2,
        shared_grad_clip=FLAGS.shared_grad_clip,
        derive_candidates=FLAGS.derive_candidates,
        population_size=FLAGS.population_size,
        sample_size=FLAGS.sample_size,
        naswot_candidates=FLAGS.naswot_candidates,
        naswot_batch=FLAGS.naswot_batch,
        proxy=FLAGS.proxy,
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        child_lr=FLAGS.child_lr,
        final_epochs=FLAGS.final_epochs,
        cache=FLAGS.cache,
        max_failures=FLAGS.max_failures,
        early_stop=FLAGS.early_stop,
        early_stop_after=FLAGS.early_stop_after,
        embedding_pretrain=FLAGS.embedding_pretrain,
        embedding_epochs=FLAGS.embedding_epochs,
        embedding_latent=FLAGS.embedding_latent,
        embedding_lr=FLAGS.embedding_lr,
        table_lr=FLAGS.table_lr,
        acc_beta=FLAGS.acc_beta,
        clip_rewards=FLAGS.clip_rewards,
        controller=dict(
            lstm_units=FLAGS.lstm_units,
            lstm_layers=FLAGS.lstm_layers,
            embedding_size=FLAGS.embedding_size,
            learning_rate=FLAGS.controller_lr,
            entropy_weight=FLAGS.entropy_weight,
            temperature=FLAGS.temperature,
            tanh_constant=FLAGS.tanh_constant or None,
            exploration=FLAGS.exploration,
            grad_clip=FLAGS.grad_clip,
            skip_weight=FLAGS.skip_weight,
            skip_target=FLAGS.skip_target,
            reward_entropy=FLAGS.reward_entropy,
            memory_size=FLAGS.controller_memory,
            memory_batch=FLAGS.memory_batch,
            memory_weight=FLAGS.memory_weight,
            memory_start=FLAGS.memory_start,
        ),
        workers=FLAGS.workers,
        cpus_per_child=FLAGS.cpus_per_child,
        gpus_per_child=FLAGS.gpus_per_child,
        ray_address=FLAGS.ray_address,
        worker_children=FLAGS.worker_children,
        worker_growth_mb=FLAGS.worker_growth_mb,
        logdir=FLAGS.logdir,
        run_name=FLAGS.run_name,
        tensorboard=FLAGS.tensorboard,
    )


def config_to_flags(config):
    """The inverse of `config_from_flags`: train.py flags that give `config` back.

    Used by assess.py, which runs every search as its own train.py process.
    """
    args = []
    flag_of = {key: flag for flag, key in _CONTROLLER_FLAGS.items()}
    for field, value in dataclasses.asdict(config).items():
        if field == "controller":
            for key, v in value.items():
                name = flag_of.get(key, key)
                args.append(f"--{name}={0 if v is None and key == 'tanh_constant' else v}")
        elif isinstance(value, bool):
            args.append(f"--{field}" if value else f"--no{field}")
        elif value is not None:
            args.append(f"--{field}={value}")
    return args


def fail(message, status=2):
    """One line on stderr, `<program>: error: <message>`, then exit (assess.py too)."""
    print(f"{os.path.basename(sys.argv[0])}: error: {message}", file=sys.stderr)
    sys.exit(status)


def parse_flags(argv):
    """absl's parser, but a bad flag gets one line and exit status 2."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        fail(str(e).splitlines()[0])


def main(argv):
    if len(argv) > 1:
        fail(f"unexpected arguments {argv[1:]}; every setting is a --flag (see --help)")
    # Every setting is checked before TensorFlow is imported.
    config = config_from_flags()
    try:
        config = config.resolved()
        if FLAGS.resume:
            config = resume_config(config)
        poisoning.make_space(config)  # Its op names: poisoning needs no Keras.
        run_state.check_start(config, FLAGS.resume)  # The run folder, before TensorFlow too.
    except config_lib.ConfigError as e:
        fail(str(e))
    _check_backend()
    if config.workers == 0 and config.evaluation in config_lib.BUILT and not crash_guard.guarded():
        # Children train in the search process: a child that kills it fails, the search
        # goes on (crash_guard.py). This process only waits beside it.
        command = [sys.executable] + sys.argv
        sys.exit(crash_guard.guard(
            command,
            os.path.join(config.logdir, config.run_name),
            command if FLAGS.resume else command + ["--resume"],
        ))
    # A signal during the imports (seconds) ends the process at once (`_stopped_early`).
    with quiet_stderr():
        import keras  # pylint: disable=import-outside-toplevel

        import controller
        import data
        import manager
        import search

        keras.ops.zeros(())  # Start the backend's runtime (its device log lines) in here too.
    manager.make_deterministic()
    _handle_signals()  # From here a signal stops the search at its next safe point.
    try:
        try:
            search.run_search(config, resume=FLAGS.resume, should_stop=lambda: bool(_received))
        except (search.ConfigError, data.DataError, controller.ControllerError) as e:
            fail(str(e))
        except search.RunFolderError as e:
            fail(str(e), status=1)
        except manager.SearchError as e:
            fail(f"search stopped: {e}", status=1)
    except KeyboardInterrupt:
        _stopped(config)
    except Exception:  # pylint: disable=broad-except
        if not _received:
            raise
        # The signal's KeyboardInterrupt, raised inside a library's native code, can come
        # out as another error (TensorFlow's nest flattening: a TypeError; tests/
        # test_faults.py saw it): the stop is still the stop.
        _stopped(config)


def _stopped(config):
    """The end of a search stopped by SIGINT or SIGTERM: one line, the signal's status."""
    signum = _received[-1] if _received else signal.SIGINT
    run_dir = os.path.join(config.logdir, config.run_name)
    if not os.path.exists(os.path.join(run_dir, "config.json")):
        _not_started(signum)
        sys.stdout.flush()
        # Not through Python's finalization either (below): it crashed a 2-worker search
        # stopped while it started (SIGSEGV after this line; bench/faults.py).
        os._exit(128 + signum)  # pylint: disable=protected-access
    saved = {
        "shared": "the run is saved up to its last commit (at most the last 5 s of scoring, "
        "or the supernet pass in flight, are lost)",
        "benchmark": "the run is saved up to its last commit (at most the last 2 s of "
        "lookups are lost)",
    }.get(config.evaluation, "every finished trial is saved")
    print(
        f"\ninterrupted by {signal.Signals(signum).name}; {saved}. "
        f"Resume with:\n  python train.py --resume --logdir={config.logdir} "
        f"--run_name={config.run_name}",
        file=sys.stderr,
        flush=True,
    )
    # Everything is committed, the folder unlocked, Ray shut down (run_search's
    # finally): end here, not in Python's finalization, where the libraries' teardown
    # once aborted a stopped worker search (exit -6 after this line; bench/faults.py).
    sys.stdout.flush()
    os._exit(128 + signum)  # pylint: disable=protected-access


# Flags whose SearchConfig field has another name; the rest match one to one.
_CONTROLLER_FLAGS = {flag: key for key, flag in config_lib.CONTROLLER_FLAGS.items()}
_RUN_FLAGS = {"resume", "logdir", "run_name"}


def resume_config(config):
    """The settings of the run to resume: those it was started with.

    Flags given on the command line must agree with them; --logdir and --run_name
    only say where the run is.

    Raises:
      config_lib.ConfigError: no run there, or a flag that contradicts the run.
    """
    run_dir = os.path.join(config.logdir, config.run_name)
    saved = config_lib.read_config(run_dir)
    saved.logdir, saved.run_name = config.logdir, config.run_name
    for name in config_lib.EXECUTION_FIELDS:  # Given now, or as the run was started.
        if FLAGS[name].present:
            setattr(saved, name, getattr(config, name))
    saved = saved.resolved()
    controller_keys = set(saved.controller)
    conflicts = []
    for name in FLAGS:
        if (
            not FLAGS[name].present
            or name in _RUN_FLAGS
            or name in config_lib.EXECUTION_FIELDS
            or name == "flagfile"
        ):
            continue
        key = _CONTROLLER_FLAGS.get(name, name)
        if key in controller_keys:
            given, used = config.controller[key], saved.controller[key]
        elif hasattr(saved, name):
            given, used = getattr(config, name), getattr(saved, name)
        else:
            continue
        if given != used:
            conflicts.append(f"--{name}={FLAGS[name].value} (the run has {used!r})")
    if conflicts:
        raise config_lib.ConfigError(
            f"cannot resume {run_dir} with other settings: {', '.join(conflicts)}; "
            f"drop those flags to continue it as it was started"
        )
    return saved


_received = []


def _handle_signals():
    """SIGINT and SIGTERM raise KeyboardInterrupt (`_interrupt`). One that lands while
    Python runs a finalizer (a `__del__`, a weakref callback: the garbage collection
    after every child) cannot stop anything there: Python drops it and would print it as
    an "Exception ignored" traceback. It is dropped quietly instead and sent again a
    moment later, outside the finalizer (in the search loop `should_stop` would see it
    after the trial anyway; in the final retraining nothing else would)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    default = sys.unraisablehook

    def hook(unraisable):
        if not (_received and issubclass(unraisable.exc_type, KeyboardInterrupt)):
            default(unraisable)
            return
        threading.Timer(0.01, os.kill, (os.getpid(), _received[-1])).start()

    sys.unraisablehook = hook


def _interrupt(signum, frame):
    """SIGINT and SIGTERM both stop the search the same way, at the next safe point."""
    del frame
    _received.append(signum)
    raise KeyboardInterrupt


# The optional backends: the module Keras imports for each, and how to install it.
_BACKENDS = {
    "torch": ("torch", "pip install torch==2.13.0 (the CPU build; requirements-test.txt)"),
    "jax": ("jax", "pip install jax==0.10.2 jaxlib==0.10.2 (requirements-test.txt)"),
}


def _check_backend():
    """KERAS_BACKEND names an optional backend that is not installed: one line."""
    import importlib.util  # pylint: disable=import-outside-toplevel

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend in _BACKENDS and importlib.util.find_spec(_BACKENDS[backend][0]) is None:
        fail(f"KERAS_BACKEND={backend} needs {_BACKENDS[backend][0]}, which is not installed: "
             f"{_BACKENDS[backend][1]}")
    if backend not in ("tensorflow", *_BACKENDS):
        fail(f"KERAS_BACKEND={backend!r}: the backends supported here are tensorflow (the "
             f"default), torch and jax")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
