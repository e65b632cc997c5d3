"""The tests' fork server: a Python process that imports TensorFlow, Keras and the search
once, then forks a child for every command a test runs (`python train.py ...`), so that
each child starts with the imports done (about 4.5 s of CPU in a fresh process; a child
saves 2-4 s of it: BENCHMARKS.md, Tests).

A child is what the command would be in a fresh process, but for what happens at import
time: it runs the script as `__main__` in its own process (its own pid, working folder,
standard output and error, exit status, signals), on the modules the server imported
before any of them ran anything (no TensorFlow op has run in the server, so no runtime
thread exists when it forks). It runs with the server's environment, which is the tests'
own, plus `NAS_SEARCH_PROCESS=1`: train.py searches in this process instead of starting a
guarded one (crash_guard.py; its own tests start real processes). tests/conftest.py
(`run_script`) sends only commands whose environment is the server's; any other runs as a
plain subprocess.

Protocol, one JSON line each way: a request {"id", "argv", "cwd", "stdout", "stderr"}
(argv[0] the script, the two paths files for the streams) is answered {"id", "pid"} when
the child starts and {"id", "status"} when it ends (the exit status; -N for signal N).
The server ends, after its children, when its standard input closes.
"""

import json
import os
import runpy
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import crash_guard  # noqa: E402
import keras  # noqa: E402, F401
import controller  # noqa: E402, F401
import data  # noqa: E402, F401
import manager  # noqa: E402, F401
import search  # noqa: E402, F401
import strategies  # noqa: E402, F401

_write = threading.Lock()


def answer(message):
    with _write:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def child(request):
    """In the forked process: the command, as `python SCRIPT ARGS` would run it. Ends the
    process as Python ends one (SystemExit out of the server's code: the exit handlers and
    finalizers run, as in a fresh process), never returns."""
    code = 1
    try:
        os.chdir(request["cwd"])
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        stdin = os.open(os.devnull, os.O_RDONLY)
        os.dup2(stdin, 0)
        os.close(stdin)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        os.environ[crash_guard.SEARCH_PROCESS] = "1"
        script = os.path.join(request["cwd"], request["argv"][0])
        sys.argv = [request["argv"][0], *request["argv"][1:]]
        here = os.path.dirname(os.path.abspath(__file__))
        sys.path[:] = [os.path.dirname(script)] + [p for p in sys.path[1:] if p != here]
        runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit:
        raise
    except BaseException:  # pylint: disable=broad-except
        import traceback  # pylint: disable=import-outside-toplevel

        traceback.print_exc()
    raise SystemExit(code)


def main():
    children = {}  # pid -> request id
    lock = threading.Lock()

    def reap():
        while True:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                if done.is_set():
                    return
                done.wait(0.05)
                continue
            with lock:
                request_id = children.pop(pid, None)
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            if request_id is not None:
                answer({"id": request_id, "status": code})

    done = threading.Event()
    reaper = threading.Thread(target=reap, daemon=True)
    reaper.start()
    answer({"ready": True, "env": dict(os.environ)})  # With what the imports set in it.
    for line in sys.stdin:
        request = json.loads(line)
        lock.acquire()  # Held across the fork: the reaper must not miss a child's id.
        pid = os.fork()
        if pid == 0:
            lock.release()
            child(request)  # Ends the child (SystemExit), here in the server's main thread.
        children[pid] = request["id"]
        lock.release()
        answer({"id": request["id"], "pid": pid})
    done.set()
    while True:
        with lock:
            if not children:
                break
        time.sleep(0.1)


if __name__ == "__main__":
    main()
