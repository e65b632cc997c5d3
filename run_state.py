"""A run folder's state, read without Keras: what `--resume` continues and what a new
start refuses, so that train.py answers both before TensorFlow is imported.

The search (search.py) writes state.json, the commit point of a run, after every trial
and every step; it holds the counters of the run, the strategy's and the manager's
state, the step in progress and the phase (search -> final -> finished). This module
owns its file name, its version, and the checks of a folder a search starts or resumes
in; search.py uses them, probe.py reads a run's state through them.
"""

import dataclasses
import json
import os

try:
    import fcntl
except ImportError:  # Windows: run folders are not locked there.
    fcntl = None

from config import EXECUTION_FIELDS, ConfigError, SearchConfig, read_config
from run_log import read_trials

STATE_FILE = "state.json"
LOCK_FILE = ".lock"
STATE_VERSION = 2
# The keys every state.json of this version holds.
STATE_KEYS = ("step", "trial", "events", "strategy", "manager", "pending", "phase")


@dataclasses.dataclass
class RunState:
    """What a run's last commit holds (state.json, replaced atomically at every commit).

    Attributes:
      phase: "search", "final" (the best child's retraining) or "finished".
      step, trial: controller steps finished and trials committed (the rows of
        trials.jsonl and history.csv that count; later rows are a crash's leftovers).
      elapsed: search seconds over every process that worked on the run.
      stopped_by: what ended the search ("trials", "time_budget", "strategy") or None.
      strategy: {"checkpoint": the committed weights' folder or None, "state": the
        strategy's own state (its random generator, population, ...)}.
      manager: {"baseline": the reward baseline's state, "consecutive_failures": n}.
      pending: the step in progress, or None: {"architectures", "done" (results of its
        children already committed), "consecutive_failures" when it started}.
      events: TensorBoard event file -> its committed size in bytes.
      shared: {"checkpoint", "state"} of the supernet (--evaluation=shared), or None.
      records: the committed trials as trials.jsonl holds them (read with the state,
        never written into state.json: its size does not grow with the run).
    """

    phase: str
    step: int
    trial: int
    elapsed: float
    stopped_by: str
    strategy: dict
    manager: dict
    pending: dict
    events: dict
    shared: dict = None
    records: list = None

    def to_json(self):
        """state.json's value (its keys in the order earlier versions wrote them)."""
        value = {"version": STATE_VERSION}
        value.update({k: getattr(self, k) for k in _WRITTEN})
        if self.shared is not None:
            value["shared"] = self.shared
        return value

    @classmethod
    def from_json(cls, value):
        """The state of a state.json value of this version.

        Raises:
          ValueError, KeyError, TypeError: another version, a missing key, not a dict.
        """
        if value.get("version") != STATE_VERSION:
            raise ValueError(f"version {value.get('version')!r}, expected {STATE_VERSION}")
        missing = [k for k in STATE_KEYS if k not in value]
        if missing:
            raise KeyError(", ".join(missing))
        return cls(
            **{k: value[k] for k in STATE_KEYS},
            elapsed=float(value.get("elapsed", 0.0)),
            stopped_by=value.get("stopped_by"),
            shared=value.get("shared"),
        )


_WRITTEN = ("phase", "step", "trial", "elapsed", "stopped_by", "strategy", "manager", "pending",
            "events")


def read_state(run_dir):
    """The run's committed state (state.json), checked for its version and keys, with
    its committed trials (`records`: run_log.read_trials).

    Raises:
      ConfigError: no state, a state of an earlier version, or a damaged state or
        trials.jsonl.
    """
    path = os.path.join(run_dir, STATE_FILE)
    if not os.path.exists(path):
        raise ConfigError(f"there is no run state to resume in {run_dir} (no {STATE_FILE})")
    try:
        with open(path) as f:
            value = json.load(f)
        if value.get("version") == 1:
            raise ConfigError(
                f"cannot resume {run_dir}: its state was written by an earlier version of this "
                f"tool (state version 1, which kept every trial in state.json; this version "
                f"reads {STATE_VERSION}); finish it with that version, or start a new run"
            )
        state = RunState.from_json(value)
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ConfigError(f"cannot resume: {path} is damaged ({e}); nothing was changed") from None
    try:  # The committed trials, which the search counts again on resume.
        state.records = read_trials(run_dir, state.trial)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"cannot resume: {run_dir} is damaged ({e}); nothing was changed") from None
    return state


def never_committed(run_dir):
    """A run folder with its config.json but no state.json and no trial in history.csv:
    its process stopped between starting the run and committing it the first time."""
    if not os.path.exists(os.path.join(run_dir, "config.json")):
        return False
    if os.path.exists(os.path.join(run_dir, STATE_FILE)):
        return False
    history = os.path.join(run_dir, "history.csv")
    if os.path.exists(history):
        with open(history) as f:
            if len(f.read().splitlines()) > 1:
                return False
    return True


def holds_a_run(run_dir):
    """Whether `run_dir` holds anything but the lock and temporary files: those are all
    a start leaves that stopped at once, or inside its first write (config.json) on a
    full disk or by a kill -9, and a new start may use such a folder."""
    if not os.path.isdir(run_dir):
        return False
    return any(n != LOCK_FILE and not n.endswith(".tmp") for n in os.listdir(run_dir))


def finished_line(run_dir):
    """What resuming a finished run says (it does nothing else)."""
    return f"run {run_dir} is already finished; nothing to do"


def phase(run_dir):
    """Where a run folder's run stands: "finished", "search" or "final" (resumable: a
    damaged or missing state too, which the resume reports in one line), or None when
    the folder holds no run yet."""
    path = os.path.join(run_dir, STATE_FILE)
    if not os.path.exists(path):
        return "search" if holds_a_run(run_dir) else None
    try:
        with open(path) as f:
            return json.load(f).get("phase", "search")
    except (OSError, ValueError, AttributeError):
        return "search"


def resumed_config(run_dir, config, execution=EXECUTION_FIELDS):
    """The settings a resume of `run_dir` runs with, resolved: the run's own (config.json),
    with `config`'s folder (logdir, run_name) and its values of the `execution` fields
    (how the run executes, its workers, may change between processes).

    Raises:
      ConfigError: no run there, or a damaged config.json.
    """
    saved = dataclasses.replace(read_config(run_dir), logdir=config.logdir, run_name=config.run_name)
    return dataclasses.replace(
        saved, **{name: getattr(config, name) for name in execution}
    ).resolved()


def check_resumed_config(config, run_dir):
    """ConfigError unless `config` (resolved) is the run's own (`resumed_config`)."""
    saved = resumed_config(run_dir, config)
    if saved != config:
        differ = [
            f"{f.name}={getattr(config, f.name)!r} (run: {getattr(saved, f.name)!r})"
            for f in dataclasses.fields(SearchConfig)
            if getattr(config, f.name) != getattr(saved, f.name)
        ]
        raise ConfigError(f"cannot resume {run_dir} with other settings: {', '.join(differ)}")


def check_start(config, resume):
    """What a search in `config`'s run folder finds there (`config` resolved): for a new
    run, a folder that holds none; for a resume, a run with these settings whose state
    can be read. Returns the state to resume from, or None (a new run, or one stopped
    before its first commit, which starts again from the beginning).

    Raises:
      ConfigError: a new run into a folder that holds one; a resume of a folder
        without a run, with other settings, or with a damaged state.
    """
    run_dir = os.path.join(config.logdir, config.run_name)
    if not resume:
        if holds_a_run(run_dir):
            raise ConfigError(
                f"run folder {run_dir} already holds a run; pass --resume to continue it, "
                f"or another --run_name"
            )
        return None
    _check_not_in_use(run_dir)
    if never_committed(run_dir):
        check_resumed_config(config, run_dir)
        return None
    state = read_state(run_dir)
    check_resumed_config(config, run_dir)
    return state


def lock(run_dir):
    """Holds the run folder for this process: a second search writing into the same
    folder (a resume started while the run is still going) would interleave both
    histories. The lock goes away with the process, however it ends."""
    path = os.path.join(run_dir, LOCK_FILE)
    try:
        handle = open(path, "a+")
    except OSError as e:
        raise ConfigError(f"cannot write the run folder {run_dir}: {e.strerror}") from None
    try:
        _hold(handle, run_dir)
    except ConfigError:
        handle.close()
        raise
    return handle


def _hold(handle, run_dir):
    """Takes the run folder's lock on the open `handle` (nothing without fcntl).

    Raises:
      ConfigError: another process holds it.
    """
    if fcntl is None:
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise ConfigError(
            f"run folder {run_dir} is in use by another search process; wait for it to "
            f"stop (or stop it) before resuming"
        ) from None


def _check_not_in_use(run_dir):
    """A resume of a run that another process holds (`lock`) is refused before anything
    else is read; the lock is let go at once (the search takes it when it starts)."""
    path = os.path.join(run_dir, LOCK_FILE)
    if os.path.exists(path):
        with open(path) as handle:  # Not "a+": a check writes nothing.
            _hold(handle, run_dir)


COMPONENTS_FILE = "components.json"


def check_components(run_dir, components):
    """Holds what a resumed run is made of (search._components: its space, template and
    strategy, the files of those that are references, and the space's decisions) against
    what the run was started with. Returns a warning for each referenced file whose
    content changed while the space did not; a run started before the file existed is
    not checked.

    Raises:
      ConfigError: the space changed (naming what changed), or a damaged file.
    """
    path = os.path.join(run_dir, COMPONENTS_FILE)
    if not os.path.exists(path):
        return []
    try:
        with open(path) as f:
            saved = json.load(f)
        old_space = saved["space_signature"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"cannot read {path}: it is damaged ({e})") from None
    changes = space_changes(old_space, components["space_signature"])
    if changes:
        raise ConfigError(
            f"cannot resume {run_dir}: its space ({components['space']['name']}) changed since "
            f"the run started: {'; '.join(changes)}; resume with the space it was started "
            f"with, or start a new run"
        )
    warnings = []
    for field in ("space", "template", "strategy"):
        before, now = (saved.get(field) or {}).get("file"), components[field]["file"]
        if before and now and before["sha256"] != now["sha256"]:
            warnings.append(
                f"{now['file']} (--{field}) changed since the run started; its space did "
                f"not, so the run resumes with the file as it is now"
            )
    return warnings


def space_changes(old, new):
    """What differs between two spaces' signatures (StateSpace.signature), in words."""
    changes = []
    if old.get("num_layers") != new.get("num_layers"):
        changes.append(f"layers {old.get('num_layers')} -> {new.get('num_layers')}")
    before, after = old.get("states", {}), new.get("states", {})
    for name in before:
        if name not in after:
            changes.append(f"decision {name!r} removed")
        elif before[name] != after[name]:
            changes.append(f"choices of {name!r} {before[name]} -> {after[name]}")
    changes += [f"decision {name!r} added" for name in after if name not in before]
    if list(before) != list(after) and set(before) == set(after):
        changes.append(f"decisions reordered {list(before)} -> {list(after)}")
    if old.get("skip_connections") != new.get("skip_connections"):
        changes.append("skip connections " + ("removed" if old.get("skip_connections") else "added"))
    if old.get("poisoned") != new.get("poisoned"):
        changes.append(f"poisoned choices {old.get('poisoned')} -> {new.get('poisoned')}")
    return changes
