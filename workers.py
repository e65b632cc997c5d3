"""Children evaluated in worker processes, on Ray.

TensorFlow keeps state for every child a process builds (40-60 MB of resident memory
per macro child, and slower children after a hundred), and only the end of the
process gives it back. So with `--workers=N` the search process holds no child: N
Ray actors (`ChildWorker`) train or score the children of a step at once, each in
its own process, and each process is replaced by a fresh one after `worker_children`
children or once its memory has grown `worker_growth_mb` above what it held after
its first child. The replacement is started while the old worker trains its last
child, so recycling costs little wall time.

Results come back in the order of the step's children, whatever order they finish
in, and every child is seeded from (seed, architecture): the same seed gives the
same history with 1 or N workers (on CPU). A worker that dies (kill -9, out of
memory) fails the child it was training, with the reason, and is replaced; Ray's
own retries are off, so no child is trained twice behind the search's back.

Ray is started by the search (`address="local"`, sized to the machine, no
dashboard, a capped object store) unless `--ray_address` names a running cluster.
The dataset goes into the object store once; workers read it without copying.

This module imports neither TensorFlow nor Keras: a worker imports them itself,
after its environment (backend, visible GPUs, log level) is set.
"""

import collections
import dataclasses
import logging
import os
import re
import signal

import extensions
from run_log import error_line

ROOT = os.path.dirname(os.path.abspath(__file__))
# What a cluster's workers get of this folder (runtime_env working_dir): the code.
UPLOAD_EXCLUDES = [".git", ".venv", "logs", "bench/results", "embedded", "**/__pycache__"]
OBJECT_STORE_BYTES = 1 << 30  # Local Ray: the store holds the dataset, not 30% of memory.
DEFAULT_CHILDREN = 50  # Children per worker process before it is replaced.
DEFAULT_GROWTH_MB = 250  # Growth of a worker's memory after its first child that replaces it.


class WorkerError(RuntimeError):
    """Ray cannot start, or the cluster cannot be reached or cannot hold a child."""


def _ray():
    try:
        import ray  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise WorkerError(
            "--workers needs Ray, which is not installed: pip install ray==2.60.0 "
            "(requirements.txt), or --workers=0 to train children in the search process"
        ) from None
    return ray


def start_ray(address=None, num_cpus=None):
    """Starts a local Ray, or connects to the cluster at `address` ("auto" or
    "host:port"). Returns True when this call started or connected Ray (and so the
    caller shuts it down), False when Ray was already up in this process (tests
    share one start).

    Raises:
      WorkerError: Ray cannot start or the cluster cannot be reached (one line).
    """
    ray = _ray()
    if ray.is_initialized():
        return False
    env_vars = {
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
        "KERAS_BACKEND": _backend(),
    }
    kwargs = {
        "include_dashboard": False,
        "logging_level": logging.ERROR,
        "log_to_driver": False,  # Workers' TensorFlow chatter; it stays in Ray's log folder.
    }
    if address in (None, "", "local"):
        # A stale cluster file would make a plain ray.init() join an old cluster.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        env_vars["PYTHONPATH"] = os.pathsep.join(
            p for p in (ROOT, os.environ.get("PYTHONPATH")) if p
        )
        kwargs.update(
            address="local",
            num_cpus=num_cpus or os.cpu_count(),
            object_store_memory=OBJECT_STORE_BYTES,
            runtime_env={"env_vars": env_vars},
        )
    else:
        _probe(address)
        # A cluster's nodes get the code (not the data: it goes through the store).
        kwargs.update(
            address=address,
            runtime_env={
                "working_dir": ROOT,
                "excludes": UPLOAD_EXCLUDES,
                "env_vars": env_vars,
            },
        )
    from run_log import quiet_stderr  # pylint: disable=import-outside-toplevel

    # ray.init installs its own SIGTERM handler (exit at once); the search's own
    # handlers (save the run, print the resume command) must stay.
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    stopped_by = None
    try:
        with quiet_stderr():
            ray.init(**kwargs)
    except SystemExit as e:
        # Ray's handler, set inside ray.init, ends the process with sys.exit(SIGTERM): a
        # SIGTERM during the start left with status 15 and no word (bench/faults.py).
        if e.code != signal.SIGTERM:
            raise
        stopped_by = signal.SIGTERM
    except Exception as e:  # pylint: disable=broad-except
        where = (
            "start a local Ray"
            if kwargs["address"] == "local"
            else f"reach the Ray cluster at {address}"
        )
        raise WorkerError(f"cannot {where}: {error_line(e)}") from None
    finally:
        for signum, handler in handlers.items():
            if handler is not None:
                signal.signal(signum, handler)
    if stopped_by is not None:
        signal.raise_signal(stopped_by)  # To the search's own handler, now in place again.
        raise KeyboardInterrupt
    return True


def _probe(address, timeout=5.0):
    """Fails at once for a cluster address nothing listens on: ray.init would retry
    for minutes. "auto" is left to Ray (it reads the address of a running cluster)."""
    import socket  # pylint: disable=import-outside-toplevel

    if address == "auto":
        return
    host_port = address.split("://", 1)[-1].rstrip("/")
    host, _, port = host_port.rpartition(":")
    if not host:
        host, port = host_port, "6379"  # Ray's default head port.
    try:
        port = int(port)
    except ValueError:
        raise WorkerError(
            f"--ray_address={address!r} is not 'auto' or host:port (e.g. 10.0.0.5:6379)"
        ) from None
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        raise WorkerError(
            f"cannot reach a Ray cluster at {host}:{port} ({e.strerror or e}); start one with "
            f"'ray start --head' there, or leave --ray_address out for a local Ray"
        ) from None


def stop_ray():
    ray = _ray()
    if ray.is_initialized():
        ray.shutdown()


def cluster_gpus():
    """GPUs of the Ray cluster this process is connected to."""
    return int(_ray().cluster_resources().get("GPU", 0))


def _backend():
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def resident_mb():
    """Resident memory of this process, in MB."""
    import psutil  # pylint: disable=import-outside-toplevel

    return psutil.Process().memory_info().rss / 2**20


# ---------------------------------------------------------------------- the worker


class ChildWorker:
    """One worker process: a `NetworkManager` built from the search's settings,
    trains (or scores) one child per call. Made a Ray actor by `WorkerPool`."""

    def __init__(self, settings, dataset, env):
        # Ctrl-C reaches the whole process group; the search, not its workers,
        # decides what happens (it stops them).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        os.environ.update(env)  # Before Keras is imported: backend, visible GPUs.
        import gc  # pylint: disable=import-outside-toplevel

        import manager  # pylint: disable=import-outside-toplevel

        manager.make_deterministic()  # TensorFlow's op determinism is set per process.
        self.manager = manager.NetworkManager(dataset, **settings)
        gc.collect()
        gc.freeze()  # As the search does: cheaper collections after every child.

    def info(self):
        """(pid, backend, resident MB): what the pool logs when a worker starts."""
        return os.getpid(), _backend(), resident_mb()

    def run(self, kind, architecture, position, stop_thresholds=None):
        """Evaluates (`kind="evaluate"`) or NASWOT-scores (`"score"`) one child;
        `stop_thresholds`: the search's early-stopping thresholds for its step.

        Returns:
          (ChildResult or zero_cost.Score, resident MB after the child).
        """
        if kind == "score":
            result = self.manager.scorer.score(architecture)
        else:
            self.manager.stop_thresholds = stop_thresholds
            result = self.manager.evaluate(architecture, position)
        return result, resident_mb()


# ---------------------------------------------------------------------- the pool


@dataclasses.dataclass
class WorkerDied:
    """A worker process ended while it held a child (killed, out of memory)."""

    reason: str
    detail: str = ""  # Ray's whole message: the worker's exit and its last log lines.


@dataclasses.dataclass
class _Slot:
    actor: object
    children: int = 0
    first_mb: float = None  # Resident memory after the first child.
    last_mb: float = 0.0


class WorkerPool:
    """N worker processes on Ray that evaluate children in parallel.

    Args:
      settings: keyword arguments of the workers' `manager.NetworkManager`
        (`NetworkManager.worker_settings()`).
      dataset: the search's `data.Dataset` (put into the object store once; the
        workers never see its test split).
      workers: children evaluated at once.
      cpus_per_child, gpus_per_child: Ray resources of each worker. A worker with
        no GPU sees none (CUDA_VISIBLE_DEVICES is emptied: Ray does not do it).
      worker_children: children per worker process before it is replaced.
      worker_growth_mb: a worker whose resident memory has grown this much above
        its size after its first child is replaced.
    """

    def __init__(
        self,
        settings,
        dataset,
        workers,
        *,
        cpus_per_child=1.0,
        gpus_per_child=0.0,
        worker_children=DEFAULT_CHILDREN,
        worker_growth_mb=DEFAULT_GROWTH_MB,
    ):
        ray = _ray()
        self.ray = ray
        self.resources = ray.cluster_resources()
        for name, flag, wanted in (
            ("CPU", "cpus_per_child", cpus_per_child),
            ("GPU", "gpus_per_child", gpus_per_child),
        ):
            have = self.resources.get(name, 0)
            if wanted > have:
                raise WorkerError(
                    f"--{flag}={wanted:g}, but the Ray cluster has {have:g} {name}s in all"
                )
        self.cpus_per_child, self.gpus_per_child = cpus_per_child, gpus_per_child
        self.workers = workers
        self.worker_children = worker_children
        self.worker_growth_mb = worker_growth_mb
        self.settings = dict(settings)
        self.env = {
            "KERAS_BACKEND": _backend(),
            # Children that share a GPU (--gpus_per_child=0.5): neither TensorFlow nor
            # JAX may take the whole GPU's memory up front, as both do by default.
            "TF_FORCE_GPU_ALLOW_GROWTH": "true",
            "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        }
        if not gpus_per_child:
            self.env["CUDA_VISIBLE_DEVICES"] = ""  # Ray leaves a CPU task every GPU.
        dataset = dataclasses.replace(
            dataset, x_test=dataset.x_test[:0], y_test=dataset.y_test[:0]
        )
        self.dataset_ref = ray.put(dataset)
        # A user's builder (or space) from a file named by --template=PATH.py:NAME: no
        # worker can import that file by a module name, so its objects travel by value.
        for module in extensions.FILE_MODULES.values():
            ray.cloudpickle.register_pickle_by_value(module)
        self.actor_class = ray.remote(
            num_cpus=cpus_per_child,
            num_gpus=gpus_per_child,
            max_restarts=0,  # A dead worker is replaced by the pool, not by Ray ...
            max_task_retries=0,  # ... and its child is not run again (Ray's default is 3).
        )(ChildWorker)
        self.slots = [self._start() for _ in range(workers)]
        self.spares = collections.deque()  # Started ahead of a worker's last child.
        self.started = workers  # Worker processes started, in all.
        self.died = 0

    def describe(self):
        """E.g. 'Ray: 2 CPUs, 0 GPUs; 1 CPU and 0 GPUs per child; backend tensorflow'."""
        return (
            f"Ray: {self.resources.get('CPU', 0):g} CPUs, {self.resources.get('GPU', 0):g} GPUs; "
            f"{self.cpus_per_child:g} CPU and {self.gpus_per_child:g} GPUs per child; "
            f"backend {self.env['KERAS_BACKEND']}"
        )

    def summary(self):
        """E.g. 'worker processes: 3 started, 1 died'."""
        return f"worker processes: {self.started} started, {self.died} died"

    def _start(self):
        return _Slot(self.actor_class.remote(self.settings, self.dataset_ref, self.env))

    def _replace(self, index, kill=True):
        """A fresh worker (the spare, if one is warm) takes slot `index`."""
        old = self.slots[index]
        if self.spares:
            self.slots[index] = self.spares.popleft()
        else:
            self.slots[index] = self._start()
            self.started += 1
        if kill:
            self.ray.kill(old.actor, no_restart=True)

    def _worn_out(self, slot, children_ahead=0):
        """True when `slot`'s worker is due for replacement after `children_ahead` more
        children: by its count of children, or by its memory growth."""
        if slot.children + children_ahead >= self.worker_children:
            return True
        return slot.first_mb is not None and slot.last_mb - slot.first_mb >= self.worker_growth_mb

    def map(self, jobs, died=None):
        """Evaluates `jobs` in parallel: tuples of `ChildWorker.run`'s arguments,
        `(kind, architecture, position[, stop_thresholds])`.

        Args:
          died: `died(job, reason, detail)` is the result of a job whose worker ended
            while it held the child (the caller's failed result; default: `WorkerDied`).

        Yields:
          One result per job, in the order of `jobs`: the worker's return value, or
          `died`'s for a child whose worker ended. Results of later jobs that finish
          first wait for the earlier ones.
        """
        died = died or (lambda job, reason, detail: WorkerDied(reason, detail))
        ray = self.ray
        queue = collections.deque(enumerate(jobs))
        running = {}  # ObjectRef -> (job index, slot index)
        busy = set()
        finished = {}
        next_out = 0
        for s, slot in enumerate(self.slots):
            if slot is None:  # Its worker was ended by an interruption.
                self.slots[s] = self._start()
                self.started += 1
        try:
            while next_out < len(jobs):
                for s in range(len(self.slots)):
                    if queue and s not in busy:
                        index, job = queue.popleft()
                        slot = self.slots[s]
                        if self._worn_out(slot, children_ahead=1) and not self.spares:
                            self.spares.append(self._start())  # Warms up meanwhile.
                            self.started += 1
                        running[slot.actor.run.remote(*job)] = (index, s)
                        busy.add(s)
                while next_out in finished:
                    yield finished.pop(next_out)
                    next_out += 1
                if not running:
                    continue
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    index, s = running.pop(ref)
                    busy.discard(s)
                    slot = self.slots[s]
                    try:
                        value, mb = ray.get(ref)
                    except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                            ray.exceptions.OutOfMemoryError) as e:
                        self.died += 1
                        finished[index] = died(jobs[index], _death_reason(e), str(e))
                        self._replace(s, kill=False)
                        continue
                    finished[index] = value
                    slot.children += 1
                    slot.last_mb = mb
                    if slot.first_mb is None:
                        slot.first_mb = mb
                    if self._worn_out(slot):
                        self._replace(s)
        finally:
            # Interrupted (Ctrl-C, too many failures): children in flight are
            # abandoned with their workers; the next map starts fresh ones.
            for _, s in running.values():
                self.ray.kill(self.slots[s].actor, no_restart=True)
                self.slots[s] = None

    def close(self):
        """Ends every worker process of the pool."""
        for slot in list(self.slots) + list(self.spares):
            if slot is None:
                continue
            try:
                self.ray.kill(slot.actor, no_restart=True)
            except Exception:  # pylint: disable=broad-except
                pass  # Already gone, or Ray is shutting down.
        self.slots, self.spares = [], collections.deque()


def _death_reason(error):
    """One line saying why a worker ended."""
    # Ray's memory monitor raises OutOfMemoryError for tasks; for an actor it says so in
    # the ActorDiedError's text ("... OUT_OF_MEMORY ...").
    if isinstance(error, _ray().exceptions.OutOfMemoryError) or "OUT_OF_MEMORY" in str(error):
        return "worker process killed by Ray's memory monitor (out of memory)"
    text = str(error)
    if "creation task" in text:  # ChildWorker.__init__ raised: no worker can start.
        raised = [line.strip() for line in text.splitlines() if _RAISED.match(line.strip())]
        return "worker process could not start: " + (raised[-1][:200] if raised else text[:200])
    return "worker process died while training this child (killed, crashed or out of memory)"


_RAISED = re.compile(r"^[A-Za-z_.]*(Error|Exception)\b.*:")
