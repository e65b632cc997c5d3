"""Faults that must lose nothing: commits that cost the same at every trial,
a full or read-only run folder, event files and checkpoints after a cut, failed
children's tracebacks, a signal during start-up, and the fault-injection harness's short
run (bench/faults.py; its long run is in BENCHMARKS.md).

The searches run in this process on the NAS-Bench-201 table (no training), but the
failed-child one (a toy child) and the subprocesses of the harness and the start-up
signal.
"""

import csv
import errno
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
from conftest import tiny_config

import config as config_lib
import manager as manager_lib
import run_log
import search
import strategies

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import faults  # noqa: E402

TIMED = {"train_seconds", "seconds", "elapsed_seconds"}


def background_jobs(folder):
    def harness():
        # The short run: the table mode at 1,000 lookups, a signal and a full disk, one cut
        # each (a read-only folder is the full disk's path with another errno: tested in
        # this process; a second cut is one more kill and resume of the same code).
        return subprocess.run(
            [sys.executable, "bench/faults.py", "--modes=benchmark", "--faults=signal,disk",
             "--cuts=1", "--seed=7", "--trials=1000"],
            cwd=ROOT, capture_output=True, text=True, timeout=900,
        )

    def start_up():
        process = subprocess.Popen(
            [sys.executable, "train.py", f"--logdir={folder}", "--run_name=early", "--trials=2"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        import time  # pylint: disable=import-outside-toplevel

        time.sleep(2.0)  # Parsing flags, importing TensorFlow, or starting: any moment.
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=300)
        return process.returncode, out, err

    return {"harness": harness, "start_up": start_up}


@pytest.fixture(scope="module")
def jobs():
    import conftest  # pylint: disable=import-outside-toplevel

    return conftest.start_background(sys.modules[__name__])


# The few trained searches here: the tiny search (conftest.TINY_SEARCH) of 3 random
# children in one step, on 64 training and 32 validation images, no final retraining.
TOY_CHILDREN = dict(strategy="random", trials=3, children_per_step=3, train_size=64, val_size=32,
                    final_epochs=0)


def table_config(tmp_path, name, **settings):
    base = dict(space="nb201", evaluation="benchmark", strategy="controller", trials=200,
                children_per_step=8, seed=3, tensorboard=False, logdir=str(tmp_path), run_name=name)
    return config_lib.SearchConfig(**{**base, **settings})


def history(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k not in TIMED} for r in csv.DictReader(f)]


def quiet(config, **kwargs):
    return search.run_search(config, out=lambda line: None, **kwargs)


def test_a_commit_costs_the_same_at_every_trial(tmp_path, monkeypatch):
    """state.json holds no value per trial: its size after 500 trials is its size after
    50 (version 1 grew by every trial's accuracy and poisoned count)."""
    monkeypatch.setattr(search, "BENCHMARK_COMMIT_SECONDS", 0.0)
    sizes = {}
    for trials in (50, 500):
        quiet(table_config(tmp_path, f"t{trials}", strategy="random", trials=trials, children_per_step=1))
        sizes[trials] = os.path.getsize(tmp_path / f"t{trials}" / search.STATE_FILE)
    assert abs(sizes[500] - sizes[50]) <= 16  # The digits of the counts and the seconds.


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["full", "read-only"])
def test_a_full_disk_stops_the_run_in_one_line_and_the_resume_loses_nothing(tmp_path, monkeypatch, code):
    monkeypatch.setattr(search, "BENCHMARK_COMMIT_SECONDS", 0.0)  # A commit per step.
    quiet(table_config(tmp_path, "full"))
    original, calls = run_log.write_json, []

    def full_disk(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 9:  # Inside the search, after some commits.
            raise OSError(code, os.strerror(code), path + ".tmp")
        return original(path, *args, **kwargs)

    monkeypatch.setattr(run_log, "write_json", full_disk)
    with pytest.raises(search.RunFolderError) as info:
        quiet(table_config(tmp_path, "cut"))
    message = str(info.value)
    assert os.strerror(code) in message and "--resume" in message and "\n" not in message
    monkeypatch.setattr(run_log, "write_json", original)
    resumed = quiet(table_config(tmp_path, "cut"), resume=True)
    assert history(tmp_path / "cut") == history(tmp_path / "full")
    assert resumed["architecture"] == quiet(table_config(tmp_path, "full"), resume=True)["architecture"]


def test_a_full_disk_in_the_first_write_leaves_a_folder_a_new_start_can_use(tmp_path, monkeypatch):
    """bench/faults.py (controller, disk): the disk filled while config.json was written
    left config.json.tmp beside the lock, and every later start was refused ("already
    holds a run") while --resume had nothing to resume."""
    original = run_log.write_json

    def full_disk(path, *args, **kwargs):
        with open(path + ".tmp", "w") as f:
            f.write('{"half": ')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path + ".tmp")

    monkeypatch.setattr(run_log, "write_json", full_disk)
    with pytest.raises(search.RunFolderError) as info:
        quiet(table_config(tmp_path, "first"))
    assert "nothing of the run was saved" in str(info.value) and "--resume" not in str(info.value)
    monkeypatch.setattr(run_log, "write_json", original)
    quiet(table_config(tmp_path, "first"))  # The same command again, once there is room.
    quiet(table_config(tmp_path, "full"))
    assert history(tmp_path / "first") == history(tmp_path / "full")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("a user's file")
    with pytest.raises(search.ConfigError, match="already holds a run"):
        quiet(table_config(tmp_path, "other"))


def test_events_written_after_the_last_commit_are_cut_back_on_resume(tmp_path, monkeypatch):
    """TensorBoard shows each step once after a resume, with the uninterrupted values."""
    monkeypatch.setattr(search, "BENCHMARK_COMMIT_SECONDS", 1e9)  # Commits at start and end only.
    quiet(table_config(tmp_path, "full", tensorboard=True))
    seen = []
    with pytest.raises(KeyboardInterrupt):  # 12 steps of events, none committed.
        quiet(table_config(tmp_path, "cut", tensorboard=True), should_stop=lambda: len(seen.append(1) or seen) == 100)
    quiet(table_config(tmp_path, "cut", tensorboard=True), resume=True)
    got, expected = faults.scalars(tmp_path / "cut"), faults.scalars(tmp_path / "full")
    assert [k for k, v in got.items() if len(v) > 1] == []
    assert got == expected


def test_a_committed_checkpoint_folder_is_never_written_again(tmp_path, monkeypatch):
    """A kill while a committed folder is rewritten would damage the only good copy (the
    last save of a search used to rewrite its last step's folder)."""
    monkeypatch.setattr(search, "BENCHMARK_COMMIT_SECONDS", 0.0)
    saved, save = [], strategies.ControllerStrategy.save

    def recording(self, directory):
        saved.append(os.path.relpath(directory, tmp_path))
        save(self, directory)

    monkeypatch.setattr(strategies.ControllerStrategy, "save", recording)
    quiet(table_config(tmp_path, "run", trials=40))
    assert len(saved) == 6 and len(set(saved)) == len(saved), saved  # Steps 0-5, once each.


def test_a_failed_child_keeps_its_whole_traceback_in_the_run_folder(tmp_path, monkeypatch):
    build, calls = manager_lib.NetworkManager.build_model, []

    def second_fails(self, architecture, *args, **kwargs):
        calls.append(architecture)
        if len(calls) == 2:
            raise RuntimeError("boom: a bug in a template\nits second line")
        return build(self, architecture, *args, **kwargs)

    monkeypatch.setattr(manager_lib.NetworkManager, "build_model", second_fails)
    config = tiny_config(tmp_path, "failing", **TOY_CHILDREN)
    lines = []
    search.run_search(config, out=lines.append)
    rows = history(tmp_path / "failing")
    assert [r["failed"] for r in rows] == ["0", "1", "0"]
    assert rows[1]["reason"] == "RuntimeError: boom: a bug in a template"  # One line in the CSV.
    text = (tmp_path / "failing" / "failures" / "trial-00002.txt").read_text()
    assert "Traceback (most recent call last)" in text and "second_fails" in text
    assert "its second line" in text and rows[1]["architecture"] in text
    assert any("failures/trial-00002.txt" in line for line in lines)


def test_a_signal_at_any_moment_of_start_up_is_one_line_and_exit_130(jobs):
    code, _, err = jobs["start_up"].result()
    assert code == 128 + signal.SIGINT, err[-2000:]
    assert "Traceback" not in err
    assert "interrupted by SIGINT" in err


def test_the_fault_harness_finds_no_difference_on_the_table(jobs):
    done = jobs["harness"].result()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 runs with differences" in done.stdout
    row = next(line for line in done.stdout.splitlines() if line.startswith("| benchmark | signal |"))
    assert int(row.split("|")[4]) >= 1  # At least one cut landed before the run finished.


def test_a_signal_inside_a_finalizer_is_not_printed_as_a_traceback():
    """The garbage collection after every child runs finalizers; a SIGTERM landing in one
    used to print "Exception ignored ... Traceback ... KeyboardInterrupt" (seen by
    bench/faults.py in an early-stopping search), and in the final retraining nothing
    stopped the run (a TPE run exited 0 after its SIGINT). Now it is dropped quietly and
    sent again outside the finalizer."""
    script = (
        "import os, signal, sys\n"
        "import train\n"
        "train._handle_signals()\n"
        "class Finalized:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        sum(range(10 ** 6))  # The handler runs in here.\n"
        "try:\n"
        "    f = Finalized()\n"
        "    del f\n"
        "    print('dropped', train._received, flush=True)\n"
        "    import time; time.sleep(5)\n"
        "    print('never stopped')\n"
        "except KeyboardInterrupt:\n"
        "    print('stopped', train._received)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # Dropped inside the finalizer, then sent again: it stops the program outside it.
    sigterm = int(signal.SIGTERM)
    assert done.stdout.split("\n")[:2] == [f"dropped [{sigterm}]", f"stopped [{sigterm}, {sigterm}]"]
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr


FULL_DISK_SAVE = """
import resource, signal, sys
import controller, state_space
c = controller.Controller(state_space.toy_space(2), seed=0)
c.save(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # A write past the limit: EFBIG, as a full disk.
resource.setrlimit(resource.RLIMIT_FSIZE, (6000, resource.RLIM_INFINITY))
try:
    c.save(sys.argv[1])
except OSError as e:
    print("OSError", e.errno, flush=True)
sys.exit(3)
"""


def test_a_write_that_fails_inside_a_checkpoint_is_one_oserror_and_the_old_one_stays(tmp_path):
    """Keras's save_weights left its HDF5 file open when a write failed, and HDF5 then
    crashed the process at exit (SIGSEGV, exit -11: bench/faults.py, disk, in CI): the
    checkpoints are written with Python's file I/O only (run_log.save_arrays)."""
    folder = tmp_path / "controller"
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK_SAVE, str(folder)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 3, done.stderr[-2000:]
    assert done.stdout.split() == ["OSError", str(errno.EFBIG)]
    import controller as controller_lib  # pylint: disable=import-outside-toplevel
    import state_space  # pylint: disable=import-outside-toplevel

    controller_lib.Controller.load(str(folder), state_space.toy_space(2))  # The first save, whole.


ABORTING_TEARDOWN = """
import atexit, os, runpy, sys
atexit.register(os.abort)  # A library whose teardown aborts at exit, as Ray's once did.
sys.argv = ["train.py", "--space=nb201", "--evaluation=benchmark", "--trials=100000",
            "--children_per_step=8", "--tensorboard=false", "--logdir=" + sys.argv[1],
            "--run_name=run"]
runpy.run_path("train.py", run_name="__main__")
"""


def test_a_stopped_search_exits_with_the_signal_s_status_whatever_the_teardown_does(tmp_path):
    """bench/faults.py (controller-1-worker, SIGTERM): exit -6 after the "interrupted"
    line, the abort in the libraries' teardown at exit; the status must be 143."""
    process = subprocess.Popen(
        [sys.executable, "-c", ABORTING_TEARDOWN, str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 240
    while not (tmp_path / "run" / search.STATE_FILE).exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "interrupted by SIGTERM" in err


STOPPED_BEFORE_THE_RUN = """
import atexit, os, runpy, signal, sys, time
import run_log
import search
def starting(*args, **kwargs):  # A stop while the search starts, before it writes anything.
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
search.run_search = starting
atexit.register(os.abort)  # A library whose teardown aborts at exit (Ray's, TensorFlow's).
sys.argv = ["train.py", "--space=nb201", "--evaluation=benchmark", "--trials=10",
            "--tensorboard=false", "--logdir=" + sys.argv[1], "--run_name=run"]
runpy.run_path("train.py", run_name="__main__")
"""


def test_a_search_stopped_before_it_wrote_anything_exits_with_the_signal_s_status(tmp_path):
    """bench/faults.py (controller-2-workers, SIGINT): "interrupted by SIGINT before the
    run started; nothing was written", then exit -11 in Python's finalization."""
    done = subprocess.run([sys.executable, "-c", STOPPED_BEFORE_THE_RUN, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr[-2000:]
    assert "interrupted by SIGTERM before the run started; nothing was written" in done.stderr


SIGNAL_INSIDE_AN_IMPORT = """
import os, signal, sys, time, runpy
marker = sys.argv[1] + "/went-on"
class Slow:  # Sends SIGINT to this process from inside the import of the search.
    def find_spec(self, name, path=None, target=None):
        if name == "search":
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(3)
            finally:
                open(marker, "w").close()  # Reached if the import unwinds or goes on.
        return None
sys.meta_path.insert(0, Slow())
os.environ["NAS_SEARCH_PROCESS"] = "1"  # As in the crash guard's search process.
sys.argv = ["train.py", "--trials=2", "--logdir=" + sys.argv[1], "--run_name=run"]
runpy.run_path("train.py", run_name="__main__")
"""


def test_a_signal_during_the_imports_ends_the_process_at_once_with_one_line(tmp_path):
    """bench/faults.py (evolution, SIGINT): exit 139 and not a line; a KeyboardInterrupt
    unwound through TensorFlow's half-made import crashed the process. The import must
    not go on (nor unwind): the process ends where the signal came."""
    done = subprocess.run([sys.executable, "-c", SIGNAL_INSIDE_AN_IMPORT, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 128 + signal.SIGINT, done.stderr[-2000:]
    assert "interrupted by SIGINT before the run started; nothing was written" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "went-on").exists()


SLOW_STARTING_SEARCH = """
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
import crash_guard
if not crash_guard.guarded():
    command = [sys.executable, "-c", __import__("__main__").CODE, sys.argv[1]]
    sys.exit(crash_guard.guard(command, sys.argv[1], command))
time.sleep(1.5)  # Python's start-up and the imports before train.py's handlers are in place.
def stopped(signum, _frame):
    print("stopped by", signal.Signals(signum).name, flush=True)
    os._exit(128 + signum)
signal.signal(signal.SIGINT, stopped)
crash_guard.ready()
time.sleep(60)
"""


def test_a_signal_while_the_search_process_starts_reaches_its_handler(tmp_path):
    """bench/faults.py (early-stop, SIGINT): a SIGINT the guard passed on while the search
    process was still starting ended it in a KeyboardInterrupt traceback, exit 1."""
    code = "CODE = " + repr(SLOW_STARTING_SEARCH) + "\n" + SLOW_STARTING_SEARCH
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(ROOT)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(0.8)  # The search process exists and sleeps in its start-up.
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-2000:]
    assert out == "stopped by SIGINT\n" and "Traceback" not in err


CONVERTED_SIGNAL = """
import os, runpy, signal, sys
import strategies
propose, calls = strategies.ControllerStrategy.propose, []
def converting(self, n):
    calls.append(n)
    if len(calls) == 3:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            sum(range(10 ** 6))  # The handler raises KeyboardInterrupt in here.
        except KeyboardInterrupt:
            raise TypeError  # What TensorFlow's native code made of it.
    return propose(self, n)
strategies.ControllerStrategy.propose = converting
sys.argv = ["train.py", "--space=nb201", "--evaluation=benchmark", "--trials=400",
            "--children_per_step=8", "--tensorboard=false", "--logdir=" + sys.argv[1],
            "--run_name=run"]
runpy.run_path("train.py", run_name="__main__")
"""


def test_a_signal_a_library_turns_into_another_error_is_still_the_stop(tmp_path):
    """A SIGTERM landing in TensorFlow's nest flattening came out of it as a TypeError
    (seen in this file's teardown test under load): a traceback and exit 1, not the
    stop's one line and 143."""
    done = subprocess.run([sys.executable, "-c", CONVERTED_SIGNAL, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr[-2000:]
    assert "interrupted by SIGTERM" in done.stderr and "Traceback" not in done.stderr


CRASHING_WHILE_IT_STOPS = """
import os, signal, sys, time
sys.path.insert(0, {root!r})
import crash_guard
if not crash_guard.guarded():
    command = [sys.executable, __file__]
    sys.exit(crash_guard.guard(command, {logdir!r}, command))
signal.signal(signal.SIGINT, lambda *_: os.abort())  # Asked to stop, it crashes.
crash_guard.ready()
time.sleep(60)
"""


def test_a_search_process_that_crashes_while_it_stops_is_said_so(tmp_path):
    """bench/faults.py (evolution, SIGINT): exit 139 and nothing on stderr."""
    script = tmp_path / "crashing_while_it_stops.py"
    script.write_text(CRASHING_WHILE_IT_STOPS.format(root=str(ROOT), logdir=str(tmp_path)))
    process = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGABRT
    assert "the search process died of SIGABRT while it stopped; resume it with --resume" in err


CRASHING_SEARCH = '''
import json, os, sys
sys.path.insert(0, {root!r})
import crash_guard
run_dir = os.path.join({logdir!r}, "crash")
if not crash_guard.guarded():  # What train.py does for a search with children in process.
    command = [sys.executable, __file__]
    sys.exit(crash_guard.guard(command, run_dir, command + ["--resume"]))
import config, manager, search
build, calls = manager.NetworkManager.build_model, []
def crashing(self, architecture, *args, **kwargs):
    with open(os.path.join(run_dir, crash_guard.MARKER)) as f:
        phase = json.load(f)["phase"]  # What the crash guard will be told.
    calls.append(phase)
    with open(os.path.join({logdir!r}, "calls.txt"), "a") as f:
        f.write(f"{{phase}} {{os.environ.get('TF_ENABLE_ONEDNN_OPTS')}}\\n")
    if phase == {phase!r} and calls.count(phase) == {nth} and ({always} or "--resume" not in sys.argv):
        os.abort()  # What heap corruption in a native kernel does to the process.
    return build(self, architecture, *args, **kwargs)
manager.NetworkManager.build_model = crashing
manager.make_deterministic()
search.run_search(config.SearchConfig(
    space="toy", strategy="random", trials=4, children_per_step=2, epochs=1, train_size=64,
    val_size=32, batch_size=32, final_epochs=1, seed=0, tensorboard=False, workers=0,
    evaluation={evaluation!r}, naswot_batch=16, logdir={logdir!r}, run_name="crash"),
    resume="--resume" in sys.argv)
'''


def crashing_search(tmp_path, evaluation="train", phase="training", nth=2, always=False):
    """Runs a guarded search whose `nth` build of a child in `phase` aborts the process
    (in every search process with `always`, else in the first only). Returns the finished
    process, its history rows and its crash records."""
    script = tmp_path / "crashing_search.py"
    script.write_text(CRASHING_SEARCH.format(root=str(ROOT), logdir=str(tmp_path), evaluation=evaluation,
                                             phase=phase, nth=nth, always=always))
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    crashes = [json.loads(line) for line in (tmp_path / "crash" / "crashes.jsonl").read_text().splitlines()]
    assert not (tmp_path / "crash" / "in_flight.json").exists()
    return done, history(tmp_path / "crash"), crashes


def decisions_of(row):
    keys = list(row)
    return [row[k] for k in keys[keys.index("step") + 1 : keys.index("architecture")]]


@pytest.mark.parametrize("evaluation,phase", [("train", "training"), ("naswot", "scoring")])
def test_a_child_that_kills_the_search_process_fails_and_the_search_goes_on(tmp_path, evaluation, phase):
    done, rows, crashes = crashing_search(tmp_path, evaluation, phase)
    assert f"a child killed the search process (SIGABRT) in its {phase}: it is recorded as failed" in done.stderr
    assert [r["trial"] for r in rows] == ["1", "2", "3", "4"]
    assert [r["failed"] for r in rows] == ["0", "1", "0", "0"]
    assert f"the child's {phase} killed its process (SIGABRT)" in rows[1]["reason"]
    assert len(crashes) == 1 and crashes[0]["phase"] == phase
    assert [str(v) for v in crashes[0]["architecture"]] == decisions_of(rows[1])
    assert (tmp_path / "crash" / "best.json").exists()


def test_a_final_retraining_that_kills_the_search_process_is_tried_again_with_onednn_off(tmp_path):
    done, rows, crashes = crashing_search(tmp_path, phase="final", nth=1)
    assert "final retraining killed the search process (SIGABRT); it is tried again with oneDNN off" in done.stderr
    assert [r["failed"] for r in rows] == ["0"] * 4
    assert [c["phase"] for c in crashes] == ["final"]
    calls = (tmp_path / "calls.txt").read_text().split("\n")
    assert calls[-3:] == ["final None", "final 0", ""]  # The retry's process had oneDNN off.
    best = json.loads((tmp_path / "crash" / "best.json").read_text())
    assert best["final_failed"] is None and 0 <= best["test_accuracy"] <= 1
    assert (tmp_path / "crash" / "best_model.keras").exists()


def test_a_final_retraining_that_kills_the_process_twice_ends_the_run_without_a_model(tmp_path):
    done, rows, crashes = crashing_search(tmp_path, phase="final", nth=1, always=True)
    assert [c["phase"] for c in crashes] == ["final", "final"]
    assert "no final model: the final retraining killed its process (SIGABRT), twice" in done.stdout
    best = json.loads((tmp_path / "crash" / "best.json").read_text())
    assert best["final_failed"] == "the final retraining killed its process (SIGABRT)"
    assert best["test_accuracy"] is None and best["final_val_accuracy"] is None
    assert [str(v) for v in best["architecture"]] == [str(v) for v in crashes[0]["architecture"]]
    assert not (tmp_path / "crash" / "best_model.keras").exists()
    assert len(rows) == 4


def test_a_sigterm_while_ray_starts_reaches_the_search_s_own_handler(monkeypatch):
    """ray.init sets a SIGTERM handler of its own (sys.exit(15)) before it connects: a
    SIGTERM then ended a search with status 15 and no word (bench/faults.py, one worker)."""
    import ray  # pylint: disable=import-outside-toplevel

    import workers  # pylint: disable=import-outside-toplevel

    def init(**_kwargs):  # What ray.init does, up to the moment the signal lands.
        signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(signum))
        signal.raise_signal(signal.SIGTERM)

    received = []

    def search_handler(signum, _frame):
        received.append(signum)
        raise KeyboardInterrupt

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    previous = signal.signal(signal.SIGTERM, search_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            workers.start_ray()
        assert received == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is search_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


# The budget-aware controller's step in flight resumed with the exploration mix it sampled
# with (TensorBoard's budget/exploration): tests/test_strategies.py's resume test.


def test_a_child_that_fails_while_a_stop_is_asked_is_trained_again_on_resume(tmp_path, monkeypatch):
    """A SIGINT during a child's training can reach the child as an error of TensorFlow or
    a library (bench/faults.py saw a TPE search resume with its last child failed, params
    0, where the uninterrupted run trained it): such a child is not committed."""
    def config(name):
        return tiny_config(tmp_path, name, **TOY_CHILDREN)

    quiet(config("full"))
    build, calls, stop = manager_lib.NetworkManager.build_model, [], []

    def interrupted(self, architecture, *args, **kwargs):
        calls.append(architecture)
        if len(calls) == 2:
            stop.append(True)  # The signal arrives ...
            raise RuntimeError("an error that a KeyboardInterrupt became")  # ... as an error.
        return build(self, architecture, *args, **kwargs)

    monkeypatch.setattr(manager_lib.NetworkManager, "build_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        quiet(config("cut"), should_stop=lambda: bool(stop))
    assert len(history(tmp_path / "cut")) == 1  # The failed child is not in the run.
    monkeypatch.setattr(manager_lib.NetworkManager, "build_model", build)
    quiet(config("cut"), resume=True)
    assert history(tmp_path / "cut") == history(tmp_path / "full")
