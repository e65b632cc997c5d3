"""Runs an architecture search: flags, then one call into `search.run_search`.

  python train.py                                   # toy space, controller, mnist5k
  python train.py --space=macro --trials=200 --epochs=2
  python train.py --strategy=random --seed=3
  python train.py --strategy=evolution --population_size=20 --sample_size=5
  python train.py --strategy=proxy_ranking --trials=8 --proxy_candidates=500  # rank by NASWOT
  python train.py --evaluation=naswot --trials=500      # controller learns from NASWOT
  python train.py --flagfile=configs/enas.flags         # ENAS: weight sharing
  python train.py --flagfile=configs/rsws.flags         # random search, weight sharing
  python train.py --space=macro --poison=dropout1.0,stretched3x3 --poison_instances=6
  python train.py --flagfile=configs/nb201.flags        # NAS-Bench-201, table lookups
  python train.py --space=nb201 --nb201_channels=4 --nb201_cells=1 --trials=8  # trained
  python train.py --flagfile=configs/toy.flags
  python train.py --space=examples/my_space.py:mlp_space --template=examples/my_space.py:build_mlp
  python train.py --space=nb201 --evaluation=benchmark --strategy=examples/my_strategy.py:LocalSearch

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
import data  # noqa: E402  (TensorFlow only when a tfds dataset is loaded)
import extensions  # noqa: E402
import poisoning  # noqa: E402
import run_state  # noqa: E402
import specs  # noqa: E402
from run_log import quiet_stderr  # noqa: E402

FLAGS = flags.FLAGS

# Every setting's flag is made from its SearchConfig field (config.flag_settings: the
# default, the help, the allowed values), so the flags, --help and docs/FLAGS.md
# cannot disagree with the settings they set.
_DEFINE = {
    "string": flags.DEFINE_string,
    "integer": flags.DEFINE_integer,
    "float": flags.DEFINE_float,
    "boolean": flags.DEFINE_boolean,
}
for _setting in config_lib.flag_settings():
    if _setting.kind == "enum":
        flags.DEFINE_enum(_setting.name, _setting.default, list(_setting.allowed), _setting.help)
    else:
        _DEFINE[_setting.kind](_setting.name, _setting.default, _setting.help)
for _old, _new in config_lib.RENAMED_FLAGS.items():  # Older command lines and presets still run.
    flags.DEFINE_alias(_old, _new)
flags.DEFINE_boolean(
    "resume",
    False,
    "Continue the run in <logdir>/<run_name> where it "
    "stopped, with the settings it was started with.",
)


def config_from_flags():
    """Converts the flags, once, into a plain SearchConfig."""
    values, controller = {}, {}
    for setting in config_lib.flag_settings():
        value = FLAGS[setting.name].value
        if setting.key:
            controller[setting.key] = value
        else:
            values[setting.field] = value
    controller["tanh_constant"] = controller["tanh_constant"] or None  # 0: no cap.
    if (FLAGS.time_budget or FLAGS.benchmark_seconds) and not FLAGS["trials"].present:
        values["trials"] = None  # A time budget without --trials: no limit on the children.
    return config_lib.SearchConfig(**values, controller=controller)


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


def check_strategy_reference(name):
    """A strategy of the user's (`--strategy=PATH.py:NAME`) loaded and its maker checked
    before any framework loads (the strategy itself is made with the search's space).

    Raises:
      config_lib.ConfigError: it cannot be loaded, or is no class or factory of (space, seed).
    """
    registry = config_lib.REGISTRIES["strategy"]
    if registry.is_builtin(name):
        return
    try:
        extensions.check_factory(registry.get(name), f"--strategy={name}")
    except extensions.ExtensionError as e:
        raise config_lib.ConfigError(str(e)) from None


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
            if not FLAGS["run_name"].present:  # A default folder named before a rename.
                config.run_name = earlier_run_name(config)
            config = resume_config(config)
        space, _ = poisoning.make_space(config)  # Its op names: poisoning needs no Keras.
        too_many = specs.check_space_size(config, space)
        if too_many:
            fail(too_many)
        check_strategy_reference(config.strategy)
        state = run_state.check_start(config, FLAGS.resume)  # The run folder, before TensorFlow too.
        if specs.EVALUATIONS[config.evaluation].images:
            data.check_prepared(config.dataset, config.data_dir, config.download)
    except (config_lib.ConfigError, data.DataError) as e:
        fail(str(e))
    if state is not None and state.phase == "finished":  # Nothing to do: no TensorFlow either.
        print(run_state.finished_line(os.path.join(config.logdir, config.run_name)))
        return
    _check_backend()
    guarded = specs.EVALUATIONS[config.evaluation].guarded
    if config.workers == 0 and guarded and not crash_guard.guarded():
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
        import manager
        import search
        import strategies

        keras.ops.zeros(())  # Start the backend's runtime (its device log lines) in here too.
    manager.make_deterministic()
    _handle_signals()  # From here a signal stops the search at its next safe point.
    try:
        try:
            search.run_search(config, resume=FLAGS.resume, should_stop=lambda: bool(_received))
        except (search.ConfigError, data.DataError, controller.ControllerError) as e:
            fail(str(e))
        except strategies.StrategyProposalError as e:
            fail(f"search stopped: {e}")
        except strategies.StrategyError as e:
            if _received:  # The signal's KeyboardInterrupt, turned into another error.
                raise KeyboardInterrupt from None
            fail(
                f"search stopped: {e}; every committed trial is kept: fix the strategy and "
                f"resume with --resume --logdir={config.logdir} --run_name={config.run_name}",
                status=1,
            )
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


def earlier_run_name(config):
    """The run folder a resume with the default run name continues: the default, or
    where no run is in it, its name under the strategy's old name (config.RENAMED_VALUES:
    `--strategy=naswot --resume` continues toy-naswot-seed0, made before the rename)."""
    if run_state.holds_a_run(os.path.join(config.logdir, config.run_name)):
        return config.run_name
    for name in config_lib.earlier_run_names(config):
        if run_state.holds_a_run(os.path.join(config.logdir, name)):
            return name
    return config.run_name


def resume_config(config):
    """The settings of the run to resume: those it was started with.

    Flags given on the command line must agree with them; --logdir and --run_name
    only say where the run is.

    Raises:
      config_lib.ConfigError: no run there, or a flag that contradicts the run.
    """
    run_dir = os.path.join(config.logdir, config.run_name)
    given = [name for name in config_lib.EXECUTION_FIELDS if FLAGS[name].present]
    saved = run_state.resumed_config(run_dir, config, given)  # The rest as the run was started.
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
