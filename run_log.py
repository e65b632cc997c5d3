"""What a search writes into its run folder: history.csv, trials.jsonl, TensorBoard
events, JSON.

`history.csv` (for people: rounded, one column per decision) and `trials.jsonl` (for
resuming: every field of each trial's result at full precision, one JSON line) each get
one row per trial, appended and flushed as soon as the trial is done (with shared
weights or the benchmark's table, thousands of rows are scored per minute: they are
flushed and synced at the run's commits instead, by `sync`). Both are append-only, so a
commit costs the same at trial 10 and at trial 10,000; a resumed run cuts them (and
the TensorBoard event files) back to what its last commit had.
JSON files are written atomically (temporary file, then rename), so a crash never
leaves half a file. TensorBoard events are written with the `tensorboard` package's
own protocol buffers and record writer, one event per step holding all of the
step's scalars, in the format `tf.summary.scalar` writes: no TensorFlow is needed,
and a step of 40 scalars costs about 0.5 ms instead of 40 ms with `tf.summary`
(bench/nb201_speed.py). Without the `tensorboard` package the events are skipped
with a warning and everything else is still written.

This module does not train or sample anything.
"""

import contextlib
import csv
import dataclasses
import itertools
import json
import os
import signal
import socket
import sys
import threading
import time
import warnings

TRIALS_FILE = "trials.jsonl"
HISTORY_FIELDS = ("trial", "step")
RESULT_FIELDS = (
    "architecture",
    "val_accuracy",
    "naswot_score",
    "reward",
    "baseline",
    "params",
    "poisoned_layers",
    "train_seconds",
    "seconds",
    "elapsed_seconds",
    "cached",
    "failed",
    "reason",
)


def accuracy_column(header):
    """The column of history.csv with each child's accuracy (`val_accuracy`, or the
    metric a table rewards): the one after `architecture`, whatever its name."""
    return header[list(header).index("architecture") + 1]


ERROR_LINE_LIMIT = 300  # Characters of an error's first line kept in logs and messages.


def error_line(error, kind=True):
    """One line naming what went wrong: "TypeName: the message's first line" (`kind`),
    or the first line alone (its type's name when it has no message), at most
    `ERROR_LINE_LIMIT` characters of it. The whole traceback goes elsewhere (a failed
    child's is in the run folder's failures/)."""
    lines = str(error).strip().splitlines()
    first = lines[0][:ERROR_LINE_LIMIT] if lines else ""
    if not kind:
        return first or type(error).__name__
    return f"{type(error).__name__}: {first}".rstrip(": ")


@contextlib.contextmanager
def atomic_write(path, mode="w", **open_args):
    """Opens a temporary file beside `path` to write; once the block ends without an
    exception it is flushed, synced and renamed over `path`, so a reader (or a resume
    after a crash) sees the old file or the new one, never a part. On an exception the
    temporary file is removed and `path` is untouched."""
    tmp = path + ".tmp"
    try:
        with open(tmp, mode, **open_args) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    os.replace(tmp, path)


def write_json(path, value, indent=2):
    """Writes `value` as JSON atomically (`atomic_write`). `indent=None` writes it on
    one line, about five times faster (Python's C encoder does not indent): for state
    that holds a value per trial."""
    with atomic_write(path) as f:
        json.dump(value, f, indent=indent, sort_keys=False)
        f.write("\n")


def save_arrays(path, arrays):
    """Writes `arrays` (variables or arrays) as one .npz atomically: temporary file,
    flush, fsync, rename. Only Python's file I/O touches the disk, so a full disk is
    one OSError. (Keras's `save_weights` leaves its HDF5 file open when a write
    fails, and HDF5 then crashes the process at exit: bench/faults.py, disk.)"""
    import numpy as np  # pylint: disable=import-outside-toplevel  (train.py's guard needs none)

    with atomic_write(path, "wb") as f:
        np.savez(f, *[np.asarray(v) for v in arrays])


def load_arrays(path, variables):
    """Assigns the arrays `save_arrays` wrote at `path` to `variables`, in order.

    Raises:
      ValueError: a missing or damaged file, or arrays of another number or shape.
    """
    import numpy as np  # pylint: disable=import-outside-toplevel

    variables = list(variables)
    try:
        with np.load(path, allow_pickle=False) as saved:
            values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    except (OSError, ValueError, KeyError, EOFError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"cannot read {path}: {first}") from None
    if len(values) != len(variables):
        raise ValueError(
            f"{path} is for another network: it holds {len(values)} arrays, "
            f"{len(variables)} expected"
        )
    for variable, value in zip(variables, values):
        if tuple(variable.shape) != tuple(value.shape):
            raise ValueError(
                f"{path} is for another network: it holds an array of shape "
                f"{tuple(value.shape)} where {tuple(variable.shape)} is expected"
            )
    for variable, value in zip(variables, values):
        variable.assign(value)


class RunLog:
    """The files of one run folder.

    Args:
      directory: the run folder; created if missing.
      space: the `StateSpace`, for the per-decision columns.
      tensorboard: write TensorBoard events (needs TensorFlow).
      keep_rows: when resuming, the number of trials the run state holds; rows
        written after it (by a process killed before it saved its state) are dropped.
      events: when resuming, the run state's `events_state()`: each TensorBoard event
        file of the run is cut back to its committed size.
      epoch_column: add an `epoch` column after `step` (shared weights: the
        supernet epochs trained when the row's architecture was scored).
      stop_column: add a last `stopped_epoch` column (early stopping: the epoch a
        child was stopped after; 0 for a child trained every epoch).
      score: the run's training-free score (config.SCORES), which names the column of
        each child's score: `naswot_score`, `synflow_score`, ...
      accuracy: the name of the column of each child's accuracy (`accuracy_column`
        finds it): `val_accuracy`, or the metric a table rewards (`valid12_accuracy`).
      costs: the costs of the run's objective (objectives.py): a `cost_NAME` column
        each, then `feasible` (0: over a budget, not evaluated) and `objective` (the
        fitness the search maximized).
    """

    def __init__(
        self,
        directory,
        space,
        tensorboard=True,
        keep_rows=None,
        epoch_column=False,
        stop_column=False,
        events=None,
        score="naswot",
        accuracy="val_accuracy",
        costs=(),
    ):
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.space = space
        self.epoch_column = epoch_column
        fields = list(HISTORY_FIELDS) + (["epoch"] if epoch_column else [])
        names = {"naswot_score": f"{score}_score", "val_accuracy": accuracy}
        results = [names.get(f, f) for f in RESULT_FIELDS]
        self.columns = fields + [d.key for d in space.decisions] + results
        # Early stopping (early_stopping.py): the epoch a child stopped after, 0 if none.
        self.stop_column = stop_column
        self.columns += ["stopped_epoch"] if stop_column else []
        # An objective (objectives.py): each cost it names, whether the child is within
        # every budget, and the fitness the search maximized (accuracy x the trade-off).
        self.costs = tuple(costs)
        self.columns += [f"cost_{n}" for n in self.costs] + (["feasible", "objective"] if self.costs else [])
        path = self.path("history.csv")
        if keep_rows is not None and os.path.exists(path):
            _truncate_csv(path, keep_rows)
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        self._history = open(path, "a", newline="")
        self._csv = csv.writer(self._history)
        if new:
            self._csv.writerow(self.columns)
            self._history.flush()
        trials = self.path(TRIALS_FILE)
        if keep_rows is not None and os.path.exists(trials):
            _truncate_lines(trials, keep_rows)
        self._trials = open(trials, "a")
        for name, size in (events or {}).items():
            path = self.path(name)
            if os.path.exists(path) and os.path.getsize(path) > size:
                os.truncate(path, size)  # Events after the last commit are done again.
        self._writer = EventWriter.create(directory) if tensorboard else None

    def path(self, name):
        return os.path.join(self.directory, name)

    def write_trial(self, trial, step, result, elapsed=None, epoch=None, sync=True, poisoned=None):
        """Appends one row to history.csv and one record to trials.jsonl and, with
        `sync`, flushes them to disk;
        `elapsed` is the search's wall time in seconds when the trial finished
        (blank if None); `epoch` fills the epoch column; `poisoned` is the
        architecture's poisoned layers if the caller counted them already."""
        if poisoned is None:
            poisoned = self.space.poisoned_layers(result.architecture)
        row = [trial, step] + ([epoch] if self.epoch_column else []) + list(result.architecture)
        row += [
            self.space.format(result.architecture),
            "" if result.accuracy is None else f"{result.accuracy:.6f}",
            "" if result.score is None else f"{result.score:.4f}",
            f"{result.reward:.6f}",
            f"{result.baseline:.6f}",
            result.params,
            poisoned,
            f"{result.train_seconds:.3f}",
            f"{result.seconds:.3f}",
            "" if elapsed is None else f"{elapsed:.3f}",
            int(result.cached),
            int(result.failed),
            result.reason,
        ] + ([result.stopped_epoch] if self.stop_column else [])
        if self.costs:
            values = result.costs or {}
            row += [f"{values[n]:.6g}" if n in values else "" for n in self.costs]
            row += [int(not result.infeasible), f"{result.fitness:.6f}"]
        self._csv.writerow(row)
        record = {"trial": trial, "step": step, "poisoned": poisoned}
        record["result"] = dataclasses.asdict(result)
        self._trials.write(json.dumps(record) + "\n")
        if sync:
            self.sync()

    def write_failure(self, trial, result):
        """failures/trial-N.txt: a failed child's architecture, reason and whole
        traceback (history.csv keeps the reason's first line)."""
        folder = self.path("failures")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"trial-{trial:05d}.txt"), "w") as f:
            f.write(f"trial {trial}: {self.space.format(result.architecture)}\n{result.reason}\n\n")
            f.write(result.traceback or "(no traceback: the child's process gave none)\n")

    def sync(self):
        """Flushes history.csv and trials.jsonl to disk (and the TensorBoard events to
        their file)."""
        for file in (self._history, self._trials):
            file.flush()
            os.fsync(file.fileno())
        if self._writer is not None:
            self._writer.flush()

    def events_state(self):
        """{event file name: bytes written}, of this process's TensorBoard file (after a
        flush): what a commit records so that a resume can cut the file back to it."""
        if self._writer is None:
            return {}
        self._writer.flush()
        return {self._writer.name: self._writer.size()}

    def write_scalars(self, step, scalars, flush=True):
        """Writes a dict of tag -> number as TensorBoard scalars at `step`; without
        `flush` they reach the file at the next `sync`."""
        if self._writer is None:
            return
        self._writer.write(step, scalars)
        if flush:
            self._writer.flush()

    def close(self):
        self._history.close()
        self._trials.close()
        if self._writer is not None:
            self._writer.close()


def read_trials(directory, rows):
    """The first `rows` records of the run folder's trials.jsonl, in order: dicts with
    `trial`, `step`, `poisoned` and `result` (a ChildResult's fields).

    Raises:
      ValueError: the file holds fewer complete records, or a damaged one.
    """
    path = os.path.join(directory, TRIALS_FILE)
    records = []
    if rows:
        with open(path) as f:
            for line in itertools.islice(f, rows):
                if not line.endswith("\n"):
                    break  # Cut off by a crash: not committed.
                records.append(json.loads(line))
    if len(records) != rows or any(r["trial"] != i + 1 for i, r in enumerate(records)):
        raise ValueError(f"{TRIALS_FILE} holds {len(records)} complete trials in order, the state {rows}")
    return records


def cut_incomplete_line(path):
    """Cuts a last line without its newline off the file at `path` (if it exists): what a
    write stopped by a full disk or a kill leaves of a line-per-record log. Appended to,
    such a line would merge with the next record into one that cannot be read."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        kept = f.read().rfind(b"\n") + 1
    os.truncate(path, kept)


def _truncate_lines(path, rows):
    """Keeps the first `rows` complete lines of a file, in place: one truncate, so a
    crash leaves the old length or the new (a line cut off by a crash is not complete)."""
    with open(path, "rb") as f:
        kept = 0
        for _ in range(rows):
            line = f.readline()
            if not line.endswith(b"\n"):
                break
            kept += len(line)
    if os.path.getsize(path) > kept:
        os.truncate(path, kept)


def _truncate_csv(path, rows):
    """Keeps the header and the first `rows` complete rows of a CSV file."""
    _truncate_lines(path, rows + 1)


@contextlib.contextmanager
def deferred_signals():
    """Holds SIGINT and SIGTERM back while a group of writes completes.

    A signal that arrives meanwhile is delivered when the block ends, so Ctrl-C
    never leaves history.csv and state.json out of step with each other.

    Masking the signal (pthread_sigmask) is not enough: it masks the calling thread
    only, TensorFlow's threads still take the signal, and CPython then runs the
    Python handler on the main thread in the middle of the block. So the handlers
    themselves are swapped for a recorder, and the recorded signals are re-raised
    afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, lambda s, _frame: received.append(s))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)


def write_tensorboard_scalars(directory, step, scalars):
    """Writes a dict of tag -> number as TensorBoard scalars at `step` into an event
    file in `directory` (nothing without the tensorboard package)."""
    os.makedirs(directory, exist_ok=True)
    writer = EventWriter.create(directory)
    if writer is not None:
        writer.write(step, scalars)
        writer.close()


class EventWriter:
    """One TensorBoard event file: `write(step, scalars)` appends one event holding
    every scalar of the step, as float32 tensors with the scalars plugin's metadata
    (what `tf.summary.scalar` writes, so TensorBoard and its readers see the same)."""

    _files = itertools.count()

    def __init__(self, directory):
        from tensorboard.compat.proto import event_pb2, summary_pb2, types_pb2  # pylint: disable=import-outside-toplevel
        from tensorboard.plugins.scalar import metadata  # pylint: disable=import-outside-toplevel
        from tensorboard.summary.writer.record_writer import RecordWriter  # pylint: disable=import-outside-toplevel

        self._event, self._summary, self._float = event_pb2.Event, summary_pb2.Summary, types_pb2.DT_FLOAT
        self._metadata = metadata.create_summary_metadata(display_name="", description="")
        self._tagged = set()  # Tags whose metadata this file holds (TensorBoard reads the first).
        name = (
            f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
            f"{os.getpid()}.{next(self._files)}.v2"
        )
        self.name = name
        self._file = open(os.path.join(directory, name), "ab")
        self._records = RecordWriter(self._file)
        self._records.write(
            self._event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString()
        )

    @classmethod
    def create(cls, directory):
        """An EventWriter, or None with a warning when tensorboard is not installed."""
        try:
            return cls(directory)
        except ImportError:
            warnings.warn("the tensorboard package is not installed: no TensorBoard events are written")
            return None

    def write(self, step, scalars):
        summary = self._summary()
        for tag, value in scalars.items():
            entry = summary.value.add(tag=tag)
            if tag not in self._tagged:
                entry.metadata.CopyFrom(self._metadata)
                self._tagged.add(tag)
            entry.tensor.dtype = self._float
            entry.tensor.float_val.append(float(value))
        event = self._event(wall_time=time.time(), step=int(step), summary=summary)
        self._records.write(event.SerializeToString())

    def flush(self):
        self._file.flush()

    def size(self):
        """Bytes written to the file so far (flushed or not)."""
        return self._file.tell()

    def close(self):
        self._file.close()


@contextlib.contextmanager
def quiet_stderr():
    """Sends file descriptor 2 to /dev/null: the C++ log lines of TensorFlow's
    start-up and of Ray's connection attempts ignore the log-level settings and
    would bury a one-line error. Python exceptions raised inside are still
    printed, after the descriptor is restored."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
