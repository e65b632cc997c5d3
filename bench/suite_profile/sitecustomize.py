"""Logs every Python process's CPU when it exits (bench/suite_profile.py puts this folder on
PYTHONPATH, so each Python process of the suite imports it at start-up). One tab-separated line
per process to $SUITE_PROFILE_LOG: start and end (epoch seconds), own user and system CPU, its
waited-for children's, pid, parent pid, argv. A process killed with SIGKILL writes nothing."""

import atexit
import os
import sys
import time

_START = time.time()


def _log():
    path = os.environ.get("SUITE_PROFILE_LOG")
    if not path:
        return
    t = os.times()
    fields = (
        f"{_START:.3f}", f"{time.time():.3f}", f"{t.user:.2f}", f"{t.system:.2f}",
        f"{t.children_user:.2f}", f"{t.children_system:.2f}", str(os.getpid()), str(os.getppid()),
        " ".join(sys.argv).replace("\t", " ").replace("\n", " ")[:400],
    )
    try:
        with open(path, "a") as f:
            f.write("\t".join(fields) + "\n")
    except OSError:
        pass


atexit.register(_log)
