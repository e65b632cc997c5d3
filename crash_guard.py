"""A child whose training kills its process fails that child, not the search.

A search that trains its children in its own process (no `--workers`: below 100 trials
by default) dies with any child that crashes the process: native code corrupting the
heap (oneDNN's kernels were seen doing so on a toy child: BENCHMARKS.md, PyTorch's oneDNN), a
segmentation fault, an abort. `train.py` therefore runs such a search in a process of
its own and stays beside it (`guard`): before each child trains in process, the search
names it in the run folder (`MARKER`, written by the manager); if the search process
dies of a crash signal with a child named there, the child goes into the run folder's
crash record (`CRASHES`, one JSON line per child) and the search is resumed, which
records that child as failed with the crash as its reason (`NetworkManager.crashed`)
instead of training it again. Ctrl-C, SIGTERM and `kill -9` reach the search as before;
its exit status is the command's.

What a child does in the process is its `phase`: "training", "scoring" (NASWOT, untrained)
or "final" (the best architecture's retraining at the end). A child that crashed in
training or scoring fails; a crashed final retraining is tried once more, in a search
process with oneDNN off (`RETRY_ENV`: the kernels seen crashing), and if that one crashes
too the run ends with the search's result and no final model (`final_crashes`).

Nothing here imports TensorFlow or the search (run_log: the standard library only): the
guarding process stays small.
"""

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys

from run_log import cut_incomplete_line  # The standard library only, as this module.

MARKER = "in_flight.json"  # The child training in the search process now.
CRASHES = "crashes.jsonl"  # Children that killed the search process, one JSON line each.
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGILL, signal.SIGFPE}
SEARCH_PROCESS = "NAS_SEARCH_PROCESS"  # Set in the guarded process's environment.
READY_FD = "NAS_GUARD_READY_FD"  # The pipe on which the search process says it is ready.
RETRY_ENV = {"TF_ENABLE_ONEDNN_OPTS": "0"}  # The search process after a final retraining's crash.


def guarded():
    """True in the process `guard` started (it must not guard itself again)."""
    return os.environ.get(SEARCH_PROCESS) == "1"


def ready():
    """In the search process, once its own SIGINT/SIGTERM handlers are in place: tells
    the guarding process, which holds a signal back until then (one that reached the
    search process during Python's start-up would end it in a KeyboardInterrupt
    traceback, exit 1: bench/faults.py, early-stop, SIGINT)."""
    fd = os.environ.pop(READY_FD, None)
    if fd is not None:
        with contextlib.suppress(OSError, ValueError):
            os.write(int(fd), b"1")
            os.close(int(fd))


def _records(run_dir):
    path = os.path.join(run_dir, CRASHES)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def read_crashes(run_dir):
    """{architecture tuple: reason} of the run's children that crashed its process while
    they trained or were scored."""
    return {tuple(r["architecture"]): r["reason"] for r in _records(run_dir)
            if r.get("phase", "training") != "final"}


def final_crashes(run_dir):
    """[(architecture tuple, reason)] of the final retrainings that crashed the process."""
    return [(tuple(r["architecture"]), r["reason"]) for r in _records(run_dir)
            if r.get("phase") == "final"]


@contextlib.contextmanager
def training(marker, architecture, phase="training"):
    """Names `architecture` and its `phase` ("training", "scoring" or "final") in the
    marker file while it runs (nothing if `marker` is None). Not synced: a crash of the
    process keeps what the page cache holds."""
    if marker is None:
        yield
        return
    with open(marker, "w") as f:
        json.dump({"architecture": list(architecture), "phase": phase}, f)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(marker)


def _die_with_parent():
    """In the search process, before it runs: SIGKILL when the guarding process dies
    (Linux), so that `kill -9` of the command still ends the search."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _start(argv, extra_env=None):
    """Starts the search process and waits until it says it is `ready` (or ends)."""
    read_end, write_end = os.pipe()
    env = {**os.environ, **(extra_env or {}), SEARCH_PROCESS: "1", READY_FD: str(write_end)}
    try:
        process = subprocess.Popen(
            argv, env=env, start_new_session=True, preexec_fn=_die_with_parent,
            pass_fds=(write_end,),
        )
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        pipe.read(1)  # b"1" once its handlers are in place; b"" if it ends before.
    return process


def guard(argv, run_dir, resume_argv, out=None, restarts=20):
    """Runs the search command `argv` (this Python, a script and its flags) in a process
    of its own and returns the exit status to end with. Each time that process dies of
    a crash signal while a child is named in `run_dir`'s marker, the child is recorded
    in the crash record and `resume_argv` runs next, at most `restarts` times (after a
    final retraining's crash, with `RETRY_ENV`).
    SIGINT and SIGTERM sent to this process are passed on to the search once, as soon as
    it has its own handlers (`ready`)."""
    out = out or (lambda line: print(line, file=sys.stderr, flush=True))
    process, stopped, sent = None, [], [False]  # `process`: once it is ready, while it runs.
    extra_env = {}

    def forward(signum, _frame):
        stopped.append(signum)
        if process is not None and process.poll() is None:
            process.send_signal(signum)
            sent[0] = True

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for _ in range(restarts + 1):
            if stopped:  # Asked to stop before (or between) search processes.
                return 128 + stopped[-1]
            # A session of its own: a Ctrl-C at the terminal reaches this process only,
            # which passes it on once.
            process = _start(argv, extra_env)
            if stopped and not sent[0]:  # Held back while the search process started.
                process.send_signal(stopped[-1])
            code = process.wait()  # Signals to this process are forwarded meanwhile.
            process = None
            if code >= 0 or stopped:
                if -code in CRASH_SIGNALS:  # Asked to stop, it crashed instead: not silently.
                    out(f"the search process died of {signal.Signals(-code).name} while it "
                        f"stopped; resume it with --resume")
                return code if code >= 0 else 128 - code
            signum = -code
            marker = os.path.join(run_dir, MARKER)
            if signum not in CRASH_SIGNALS or not os.path.exists(marker):
                if signum in CRASH_SIGNALS:
                    out(f"the search process died of {signal.Signals(signum).name} outside a child's "
                        f"training; resume it with --resume")
                return 128 + signum
            with open(marker) as f:
                named = json.load(f)
            os.remove(marker)
            architecture, phase = named["architecture"], named.get("phase", "training")
            name = signal.Signals(signum).name
            reason = (f"the final retraining killed its process ({name})" if phase == "final" else
                      f"the child's {phase} killed its process ({name}); the search went on in a new one")
            cut_incomplete_line(os.path.join(run_dir, CRASHES))  # Left by a full disk.
            with open(os.path.join(run_dir, CRASHES), "a") as f:
                f.write(json.dumps({"architecture": architecture, "phase": phase, "reason": reason}) + "\n")
                f.flush()
                os.fsync(f.fileno())
            if phase == "final":
                extra_env = RETRY_ENV
                out(f"the best architecture's final retraining killed the search process ({name}); "
                    f"it is tried again with oneDNN off")
            else:
                out(f"a child killed the search process ({name}) in its {phase}: it is "
                    f"recorded as failed and the search resumes")
            argv = resume_argv
        out(f"the search process was killed by children {restarts + 1} times; stopping")
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
