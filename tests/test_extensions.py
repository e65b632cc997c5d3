"""A user's space, network builder and strategy in the loop (extensions.py): references
and their errors, the protocols' checks, each kind of object through the loop (the same
results as the built-in it copies), resume and its checks, a strategy that raises, the
command line (kill -9 and resume, bad input), assess.py with a user's strategy, and the
examples by their documented commands."""

import csv
import json
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import TINY_SEARCH, frameworks_blocked, run_script, start_background, tiny_flags

import config as config_lib
import extensions
import poisoning
import run_state
import specs
import state_space
from config import ConfigError, SearchConfig

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# Children of a few seconds: the tiny search (conftest.TINY_SEARCH) on 200 images, with
# TensorBoard's events; every run sets its trials and children per step.
# The in-process trained searches: no final retraining but where a test compares it.
SMALL = dict(TINY_SEARCH, train_size=200, tensorboard=True, final_epochs=0)
# Columns that repeat exactly between two runs (the times do not).
TIMES = {"train_seconds", "seconds", "elapsed_seconds"}


def rows(run_dir):
    path = pathlib.Path(run_dir) / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in TIMES} for r in csv.DictReader(f)]


def write(folder, name, text):
    path = pathlib.Path(folder) / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------------- references


def test_a_reference_names_an_object_in_a_file_anywhere_or_in_a_module(tmp_path):
    imports = tmp_path / "imports.txt"
    path = write(tmp_path, "mine.py", (
        f"with open({str(imports)!r}, 'a') as f:\n    f.write('imported\\n')\n"
        "VALUE = 41\n\ndef answer():\n    return VALUE + 1\n"
    ))
    answer = extensions.load(f"{path}:answer", "--space")
    assert answer() == 42
    assert extensions.load(f"{path}:VALUE", "--space") == 41
    assert imports.read_text() == "imported\n"  # The file is imported once per process.
    assert answer.__module__ in sys.modules  # Found by name: pickling (Ray) needs it.
    local = extensions.load("examples.my_strategy:LocalSearch", "--strategy")
    assert local.__name__ == "LocalSearch"
    assert extensions.label(f"{path}:answer") == "answer"
    assert extensions.label("controller") == "controller"


@pytest.mark.parametrize(
    "reference, source, message",
    [
        ("missing.py:x", None, r"--space: there is no file missing\.py"),
        ("{file}:nothing", "def space():\n    pass\n",
         r"--space: .*mine\.py has no 'nothing'; it defines space"),
        ("{file}:space", "def space(:\n    pass\n",
         r"--space: .*mine\.py fails to import: SyntaxError: .*mine\.py, line 1\)"),
        ("{file}:space", "x = 1\nraise ImportError('no such package here')\n",
         r"--space: .*mine\.py fails to import: ImportError: no such package here \(.*mine\.py, line 2\)"),
        ("no_such_package.module:x", None, r"--space: there is no module 'no_such_package\.module'"),
        ("not a reference", None, r"is not a reference; write PATH\.py:NAME"),
    ],
    ids=["missing-file", "missing-name", "syntax-error", "import-error", "missing-module", "malformed"],
)
def test_a_reference_that_cannot_be_loaded_is_one_line(tmp_path, reference, source, message):
    path = tmp_path / "mine.py"
    if source is not None:
        path.write_text(source)
    with pytest.raises(extensions.ExtensionError, match=message) as info:
        extensions.load(reference.format(file=path), "--space")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", ["a.py:b", "pkg.mod:Name", "/x/y.py:f", "m:a.b"])
def test_references_and_built_in_names_are_told_apart(value):
    assert extensions.is_reference(value)
    assert not extensions.is_reference(value.split(":")[0])
    registry = extensions.Registry("space", "--space", {"toy": None})
    registry.check_name(value)
    registry.check_name("toy")
    with pytest.raises(extensions.ExtensionError, match=r"--space must be one of toy, or a reference"):
        registry.check_name("toys")


# ---------------------------------------------------------------------- protocols


def test_each_protocol_check_names_what_is_missing():
    space = state_space.toy_space(2)
    assert extensions.check_space(space, "s") is space
    assert extensions.check_space(lambda: space, "s") is space
    with pytest.raises(extensions.ExtensionError, match=r"s is a int, not a state_space\.StateSpace"):
        extensions.check_space(3, "s")
    with pytest.raises(extensions.ExtensionError, match=r"cannot be called as a function of no arguments"):
        extensions.check_space(lambda layers: space, "s")
    with pytest.raises(extensions.ExtensionError, match=r"s has no decisions"):
        extensions.check_space(state_space.StateSpace(2), "s")

    def build(space, architecture, input_shape, num_classes):
        return None

    assert extensions.check_builder(build, "b") is build
    with pytest.raises(extensions.ExtensionError, match=r"b is a str, not a network builder"):
        extensions.check_builder("build", "b")
    with pytest.raises(extensions.ExtensionError, match=r"b cannot be called as a function build"):
        extensions.check_builder(lambda space: None, "b")
    with pytest.raises(extensions.ExtensionError, match=r"b returned a NoneType, not a keras\.Model"):
        extensions.check_model(None, 10, "b")

    class Half:
        def __init__(self, space, seed):
            pass

        def propose(self, n):
            return []

        def learn(self, architectures, results):
            return {}

    with pytest.raises(extensions.ExtensionError, match=r"lacks get_state, set_state, save, load"):
        extensions.make_strategy(Half, space, 0, "f")
    with pytest.raises(extensions.ExtensionError, match=r"cannot be called as a strategy class or a factory"):
        extensions.make_strategy(lambda space: None, space, 0, "f")
    assert isinstance(extensions.make_strategy(_Random, space, 0, "f"), extensions.Strategy)


def test_a_space_change_is_named():
    before = state_space.toy_space(2).signature()
    changed = state_space.StateSpace(3).add_state("kernel", [1, 5]).add_state("units", [8])
    changes = run_state.space_changes(json.loads(json.dumps(before)), changed.signature())
    assert changes == [
        "layers 2 -> 3",
        "choices of 'kernel' [1, 3] -> [1, 5]",
        "decision 'filters' removed",
        "decision 'units' added",
    ]
    assert run_state.space_changes(before, state_space.toy_space(2).signature()) == []


# ---------------------------------------------------------------------- settings


def test_a_space_of_your_own_needs_its_builder_and_sets_its_own_layers(tmp_path):
    with pytest.raises(ConfigError, match=r"space of your own: give the network builder"):
        SearchConfig(space="x.py:space").resolved()
    with pytest.raises(ConfigError, match=r"--num_layers is for the built-in toy and macro spaces"):
        SearchConfig(space="x.py:space", template="x.py:build", num_layers=3).resolved()
    with pytest.raises(ConfigError, match=r"--strategy must be one of controller, .*or a reference"):
        SearchConfig(strategy="local_search").resolved()
    c = SearchConfig(space="x.py:space", template="x.py:build", strategy="y.py:Local").resolved()
    assert c.run_name == "space-Local-seed0" and c.num_layers is None
    assert SearchConfig(space="nb201", evaluation="benchmark").resolved().template == "nb201"
    # The registries' names are the settings' names.
    import strategies  # pylint: disable=import-outside-toplevel
    import templates  # pylint: disable=import-outside-toplevel

    assert tuple(strategies.STRATEGIES) == config_lib.STRATEGIES
    assert tuple(templates.TEMPLATES) == config_lib.TEMPLATES
    assert tuple(state_space.SPACES) == config_lib.SPACES
    import benchmarks  # pylint: disable=import-outside-toplevel

    assert tuple(benchmarks.BENCHMARKS) == config_lib.BENCHMARKS


def test_poisoning_applies_to_a_space_of_your_own(tmp_path):
    path = write(tmp_path, "ops.py", (
        "from state_space import StateSpace\n"
        "def space():\n"
        "    return StateSpace(3).add_state('op', ['conv3x3', 'maxpool3x3']).add_state('width', [8, 16])\n"
    ))
    c = SearchConfig(space=f"{path}:space", template=f"{path}:build", poison="noise2",
                     poison_instances=2).resolved()
    space, template = poisoning.make_space(c)
    assert template == f"{path}:build"
    assert space.states["op"] == ("conv3x3", "maxpool3x3", "noise2#1", "noise2#2")
    assert space.poison_prior() == pytest.approx(0.5)


# ---------------------------------------------------------------------- the loop


class _Random:
    """A user's copy of random search: the same generator, the same calls."""

    def __init__(self, space, seed):
        self.space, self.rng = space, np.random.default_rng(seed)

    def propose(self, n):
        return self.space.sample(self.rng, n)

    def learn(self, architectures, results):
        return {}

    def get_state(self):
        return {"rng": self.rng.bit_generator.state}

    def set_state(self, state):
        self.rng.bit_generator.state = state["rng"]

    def save(self, directory):
        pass

    def load(self, directory):
        pass


def _search(tmp_path, name, out=None, **kwargs):
    import search  # pylint: disable=import-outside-toplevel

    objects = {k: kwargs.pop(k) for k in ("space", "builder", "strategy", "benchmark")
               if k in kwargs and not isinstance(kwargs[k], str)}
    resume = kwargs.pop("resume", False)
    should_stop = kwargs.pop("should_stop", None)
    config = SearchConfig(logdir=str(tmp_path), run_name=name, **kwargs)
    lines = []
    best = search.run_search(config, out=out or lines.append, resume=resume,
                             should_stop=should_stop, **objects)
    return best, lines


def test_a_user_strategy_takes_the_built_in_path(tmp_path):
    """Random search as a user's object gives the built-in random search's run, query for
    query (the NAS-Bench-201 table: exact)."""
    table = dict(space="nb201", evaluation="benchmark", trials=60, children_per_step=6)
    built_in, _ = _search(tmp_path, "built-in", strategy="random", **table)
    theirs, lines = _search(tmp_path, "theirs", **table, **{"strategy": _Random})
    ours = {k: v for k, v in built_in.items() if "seconds" not in k}
    assert {k: v for k, v in theirs.items() if "seconds" not in k} == ours
    history = rows(tmp_path / "theirs")
    assert len(history) == 60 and history == rows(tmp_path / "built-in")
    saved = json.loads((tmp_path / "theirs" / "config.json").read_text())
    assert saved["strategy"] == "test_extensions:_Random"


def test_a_user_space_and_builder_take_the_built_in_path(tmp_path):
    """The toy space and its template, given as objects, train the same children to the
    same accuracies as --space=toy."""
    import templates  # pylint: disable=import-outside-toplevel

    small = dict(SMALL, trials=2, children_per_step=2, strategy="random", final_epochs=1)
    built_in, _ = _search(tmp_path, "built-in", **small)
    theirs, _ = _search(tmp_path, "theirs", space=lambda: state_space.toy_space(4),
                        builder=templates.build_toy, **small)
    assert rows(tmp_path / "theirs") == rows(tmp_path / "built-in")
    assert theirs["test_accuracy"] == built_in["test_accuracy"]
    components = json.loads((tmp_path / "theirs" / "components.json").read_text())
    assert components["template"]["name"] == "templates:build_toy"
    assert components["space_signature"] == state_space.toy_space(4).signature()


def _mlp(**kwargs):
    from examples import my_space  # pylint: disable=import-outside-toplevel

    return {"space": my_space.mlp_space, "builder": my_space.build_mlp, **SMALL, **kwargs}


def test_a_user_run_stopped_and_resumed_equals_an_uninterrupted_one(tmp_path):
    """A user's strategy (examples/my_strategy.py) stopped mid-run and resumed: the same
    queries as an uninterrupted run (on NAS-Bench-201's table; trained children are
    killed and resumed from the command line below)."""
    from examples.my_strategy import LocalSearch  # pylint: disable=import-outside-toplevel

    run = dict(space="nb201", evaluation="benchmark", trials=120, children_per_step=6,
               strategy=LocalSearch)
    full, _ = _search(tmp_path, "full", **run)
    calls = []
    with pytest.raises(KeyboardInterrupt):  # Inside the 9th step.
        _search(tmp_path, "stopped", should_stop=lambda: len(calls.append(1) or calls) >= 52, **run)
    again, lines = _search(tmp_path, "stopped", resume=True, **run)
    assert any(line.startswith("resuming") for line in lines)
    assert len(rows(tmp_path / "stopped")) == 120
    assert rows(tmp_path / "stopped") == rows(tmp_path / "full")
    assert again["architecture"] == full["architecture"]
    state = json.loads((tmp_path / "stopped" / "state.json").read_text())["strategy"]["state"]
    assert set(state) == {"rng", "best", "fitness", "since"}  # LocalSearch's own, in state.json.


def test_a_resume_with_a_changed_space_is_refused(tmp_path):
    from examples import my_space  # pylint: disable=import-outside-toplevel

    run = _mlp(trials=2, children_per_step=2, strategy="random")
    _search(tmp_path, "run", **run)

    def mlp_space():  # The user's function, edited after the run started.
        space = my_space.mlp_space()
        space.states["units"] = (32, 64, 256)
        return space

    mlp_space.__module__ = "examples.my_space"

    before = sorted(p.name for p in (tmp_path / "run").iterdir())
    with pytest.raises(ConfigError, match=r"its space \(examples\.my_space:mlp_space\) changed since the "
                       r"run started: choices of 'units' \[32, 64, 128\] -> \[32, 64, 256\]"):
        _search(tmp_path, "run", resume=True, **{**run, "space": mlp_space})
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == before


def test_a_changed_file_with_the_same_space_is_a_warning(tmp_path):
    folder = tmp_path / "code"
    folder.mkdir()
    path = folder / "my_space.py"
    shutil.copy(EXAMPLES / "my_space.py", path)
    refs = dict(space=f"{path}:mlp_space", template=f"{path}:build_mlp")
    run = dict(SMALL, trials=2, children_per_step=2, strategy="random", **refs)
    _search(tmp_path, "run", **run)
    path.write_text(path.read_text() + "\n# An edit that leaves the space as it was.\n")
    _, lines = _search(tmp_path, "run", resume=True, **run)
    assert any(line.startswith(f"warning: {path} (--space) changed") for line in lines)
    assert any("already finished" in line for line in lines)


class _Fragile(_Random):
    """Random search whose learn raises at step 1 while `broken` is set."""

    broken = True

    def __init__(self, space, seed):
        super().__init__(space, seed)
        self.steps = 0

    def learn(self, architectures, results):
        self.steps += 1
        if self.steps == 2 and _Fragile.broken:
            raise RuntimeError("a bug in learn")
        return {}

    def get_state(self):
        return {**super().get_state(), "steps": self.steps}

    def set_state(self, state):
        super().set_state(state)
        self.steps = state["steps"]


def test_a_strategy_that_raises_stops_the_search_and_resumes_once_fixed(tmp_path):
    import strategies  # pylint: disable=import-outside-toplevel

    run = _mlp(trials=4, children_per_step=2)
    _search(tmp_path, "full", strategy=_Random, **run)
    _Fragile.broken = True
    with pytest.raises(strategies.StrategyError, match=r"the strategy _Fragile raised "
                       r"RuntimeError: a bug in learn \(.*test_extensions\.py, line \d+\) in learn; "
                       r"its traceback is in .*strategy-error\.txt"):
        _search(tmp_path, "fragile", strategy=_Fragile, **run)
    traceback_text = (tmp_path / "fragile" / "strategy-error.txt").read_text()
    assert "in learn" in traceback_text and "RuntimeError: a bug in learn" in traceback_text
    assert len(rows(tmp_path / "fragile")) == 4  # Every trained child is committed.
    _Fragile.broken = False
    _search(tmp_path, "fragile", resume=True, strategy=_Fragile, **run)
    assert rows(tmp_path / "fragile") == rows(tmp_path / "full")


class _Outside(_Random):
    def propose(self, n):
        return [(999,) * len(self.space.decisions)] * n


def test_bad_objects_are_refused_before_any_child_trains(tmp_path):
    import keras  # pylint: disable=import-outside-toplevel

    import strategies  # pylint: disable=import-outside-toplevel
    from examples import my_space  # pylint: disable=import-outside-toplevel

    run = _mlp(trials=2, children_per_step=2, strategy="random")
    with pytest.raises(strategies.StrategyProposalError,
                       match=r"the strategy _Outside proposed \(999, .*\), which is "
                             r"not an architecture of the space: 999 is not a choice of layer0_units"):
        _search(tmp_path, "outside", **{**run, "strategy": _Outside})
    assert rows(tmp_path / "outside") == []

    def three_classes(space, architecture, input_shape, num_classes):
        inputs = keras.Input(input_shape)
        return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))

    with pytest.raises(ConfigError, match=r"returned a model whose output has shape \(None, 3\); it "
                       r"must be \(batch, 10\)"):
        _search(tmp_path, "three", **{**run, "builder": three_classes})
    with pytest.raises(ConfigError, match=r"the builder .*returned a NoneType, not a keras\.Model"):
        _search(tmp_path, "none", **{**run, "builder": lambda s, a, i, n: None})

    def broken(space, architecture, input_shape, num_classes):
        raise KeyError("units")

    with pytest.raises(ConfigError, match=r"raised KeyError: 'units' \(.*test_extensions\.py, line \d+\) "
                       r"building units=32"):
        _search(tmp_path, "broken", **{**run, "builder": broken})
    with pytest.raises(ConfigError, match=r"the space .* is a int, not a state_space\.StateSpace"):
        _search(tmp_path, "int", **{**run, "space": 3})
    assert not any((tmp_path / name / "history.csv").exists() for name in ("three", "none", "broken"))
    assert my_space.mlp_space().num_architectures == 19_683


# ---------------------------------------------------------------------- the command line


MLP_FLAGS = tiny_flags(trials=8, tensorboard=True)


def _run(args, cwd=ROOT, env=None, script="train.py", timeout=600):
    """The finished command, as a child of the tests' fork server (conftest.run_script)."""
    return run_script([str(ROOT / script), *args], cwd=cwd, timeout=timeout, env=env)


def _kill_and_resume(folder, refs):
    """An uninterrupted run of a space and builder from a file outside the repository,
    and one killed with SIGKILL mid-run, then resumed (from another working folder)."""
    logdir = folder / "runs"
    full = _run(refs + MLP_FLAGS + [f"--logdir={logdir}", "--run_name=full"])
    killed = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *refs, *MLP_FLAGS, f"--logdir={logdir}",
         "--run_name=killed"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(rows(logdir / "killed")) < 3 and time.monotonic() < deadline:
        if killed.poll() is not None:
            break
        time.sleep(0.05)
    killed.kill()
    killed.communicate()
    at_kill = len(rows(logdir / "killed"))
    resumed = _run(["--resume", f"--logdir={logdir}", "--run_name=killed"], cwd=folder)
    return full, killed.returncode, at_kill, resumed, logdir


def background_jobs(folder):
    code = folder / "elsewhere"
    code.mkdir(parents=True)
    shutil.copy(EXAMPLES / "my_space.py", code / "my_space.py")
    shutil.copy(EXAMPLES / "my_strategy.py", code / "my_strategy.py")
    refs = [f"--space={code / 'my_space.py'}:mlp_space", f"--template={code / 'my_space.py'}:build_mlp"]
    (code / "broken.py").write_text("from state_space import StateSpace\n\ndef space(:\n")
    (code / "failing.py").write_text("import state_space\nimport a_package_nobody_has\n")
    (code / "kinds.py").write_text("def space(layers):\n    pass\nNUMBER = 3\n")
    bad = folder / "bad"
    blocked = frameworks_blocked(folder / "no-frameworks")
    bad_lines = {
        "missing-file": ([f"--space={code / 'none.py'}:space", "--template=x.py:b"], blocked),
        "syntax-error": ([f"--space={code / 'broken.py'}:space", "--template=x.py:b"], blocked),
        "import-error": ([f"--space={code / 'failing.py'}:space", "--template=x.py:b"], blocked),
        "wrong-kind": ([f"--space={code / 'kinds.py'}:NUMBER", "--template=x.py:b"], blocked),
        "no-builder": ([f"--space={code / 'kinds.py'}:space"], blocked),
        "missing-name": ([f"--strategy={code / 'my_strategy.py'}:Local"], blocked),
        "not-a-strategy": ([f"--strategy={code / 'kinds.py'}:NUMBER"], blocked),
    }
    jobs = {
        "kill-resume": lambda: _kill_and_resume(folder / "kill", refs),
    }
    for name, (args, env) in bad_lines.items():
        jobs[f"bad-{name}"] = lambda a=args, e=env: _run(a + [f"--logdir={bad}"], env=e)
    # The examples, by the commands their docstrings give (into this test's folders).
    jobs["example-space"] = lambda: _run(_documented("my_space.py") + [f"--logdir={folder / 'ex'}"])
    jobs["example-strategy"] = lambda: _run(
        _documented("my_strategy.py") + [f"--out={folder / 'ex-assess'}"], script="assess.py")
    jobs["example-table"] = lambda: _run(_documented("my_table.py") + [f"--logdir={folder / 'ex'}"])
    jobs["example-sweep"] = lambda: _run(
        _documented("make_my_table.py") + ["--architectures=4", "--epochs=1", f"--out={folder / 'sweep.csv'}"],
        script="examples/make_my_table.py")
    # A table of the user's searched by assess.py, as NAS-Bench-201 is.
    table = f"{EXAMPLES / 'my_table.py'}"
    jobs["assess-table"] = lambda: _run([
        f"--space={table}:space", "--evaluation=benchmark", f"--benchmark={table}:table",
        "--strategies=random,evolution", "--population_size=8", "--sample_size=3", "--trials=32",
        "--budgets=16,32", "--seeds=0,1,2,3", f"--out={folder / 'assess-table'}"], script="assess.py")
    return jobs


def _documented(example):
    """The flags of the command in an example's docstring (`python <script> ...`)."""
    text = (EXAMPLES / example).read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.strip().startswith("python "))
    words = line.split("#")[0].split()
    return [a for a in words[2:] if not a.startswith("--out=") and not a.startswith("--logdir=")]


@pytest.fixture(scope="module")
def processes():
    return start_background(sys.modules[__name__])


def test_a_space_from_a_file_anywhere_killed_and_resumed_equals_an_uninterrupted_run(processes):
    full, code, at_kill, resumed, logdir = processes["kill-resume"].result()
    assert full.returncode == 0, full.stderr[-2000:]
    assert code == -signal.SIGKILL and 3 <= at_kill < 8
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stdout
    assert len(rows(logdir / "full")) == 8
    assert rows(logdir / "killed") == rows(logdir / "full")
    best = [json.loads((logdir / n / "best.json").read_text()) for n in ("full", "killed")]
    assert best[0]["architecture"] == best[1]["architecture"]
    assert best[0]["test_accuracy"] == best[1]["test_accuracy"]


@pytest.mark.parametrize("name, message", [
    ("missing-file", r"--space: there is no file .*none\.py"),
    ("syntax-error", r"--space: .*broken\.py fails to import: SyntaxError: .*broken\.py, line 3\)"),
    ("import-error", r"--space: .*failing\.py fails to import: ModuleNotFoundError: No module named "
                     r"'a_package_nobody_has' \(.*failing\.py, line 2\)"),
    ("wrong-kind", r"--space=.*kinds\.py:NUMBER is a int, not a state_space\.StateSpace"),
    ("no-builder", r"is a space of your own: give the network builder of its children with --template"),
    ("missing-name", r"--strategy: .*my_strategy\.py has no 'Local'; it defines LocalSearch, np"),
    ("not-a-strategy", r"--strategy=.*kinds\.py:NUMBER is a int, not a strategy class"),
])
def test_bad_references_on_the_command_line_are_one_line_and_exit_2(processes, name, message):
    proc = processes[f"bad-{name}"].result()
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    import re  # pylint: disable=import-outside-toplevel

    assert re.search(message, lines[0]), lines[0]


def test_assess_puts_a_user_strategy_in_the_table_with_intervals_and_p_values(processes):
    """examples/my_strategy.py's command: random search, the controller and the user's
    strategy, 10 seeds each, on NAS-Bench-201."""
    proc = processes["example-strategy"].result()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "30 runs of 300 children each" in proc.stdout
    out = pathlib.Path(proc.args[-1].split("=", 1)[1])
    table = (out / "benchmark.md").read_text()
    local = [line for line in table.splitlines() if line.startswith("| 300 | LocalSearch |")]
    assert len(local) == 1
    cells = [c.strip() for c in local[0].split("|")]
    assert cells[3] == "10"  # runs
    assert cells[5].startswith("[") and cells[-2] not in ("", "nan")  # interval, p vs random
    with open(out / "results.csv", newline="") as f:
        strategies = sorted({r["strategy"] for r in csv.DictReader(f)})
    assert strategies == ["LocalSearch", "controller", "random"]
    assert (out / "runs" / "clean-LocalSearch-seed9" / "best.json").exists()


def test_the_examples_run_by_their_documented_commands(processes):
    space = processes["example-space"].result()
    assert space.returncode == 0, space.stderr[-2000:]
    assert "test accuracy" in space.stdout and "mlp_space-controller-seed0" in space.stdout


# ---------------------------------------------------------------------- benchmarks


def _small_table():
    import benchmarks  # pylint: disable=import-outside-toplevel

    space = state_space.StateSpace(1).add_state("op", ["a", "b", "c", "d"])
    values = {("a",): 0.5, ("b",): 0.9, ("c",): 0.7, ("d",): 0.7}
    return benchmarks.Table(space, values, metric="made-up accuracy", name="small"), space


def test_a_table_ranks_and_regrets_by_arithmetic(tmp_path):
    import benchmarks  # pylint: disable=import-outside-toplevel

    table, space = _small_table()
    assert table.size == 4 and table.best() == 0.9
    assert [table.rank(f) for f in (0.9, 0.7, 0.5, 0.95, 0.1)] == [1, 2, 4, 1, 5]
    assert table.reward(("c",), query=7) == table.fitness(("c",)) == 0.7
    partial = benchmarks.Table(space, {("a",): 0.5}, metric="x", name="partial")
    with pytest.raises(KeyError, match=r"op=b is not in the table 'partial'"):
        partial.fitness(("b",))
    assert isinstance(table, extensions.Benchmark)
    path = write(tmp_path, "t.csv", "layer0_op,score\na,0.1\nz,0.2\n")
    with pytest.raises(ValueError, match=r"t\.csv, line 3: 'z' is not a choice of its decision"):
        benchmarks.Table.from_csv(path, space, "score")
    with pytest.raises(ValueError, match=r"t\.csv has no column 'accuracy'"):
        benchmarks.Table.from_csv(path, space, "accuracy")
    with pytest.raises(ValueError, match=r"holds no architectures"):
        benchmarks.Table(space, {}, metric="x")


def test_the_benchmark_check_names_what_is_missing():
    table, _ = _small_table()
    assert extensions.check_benchmark(lambda: table, "b") is table
    assert extensions.check_benchmark(table, "b") is table

    class Half:
        metric = "accuracy"

        def reward(self, architecture, query):
            return 0.0

    with pytest.raises(extensions.ExtensionError, match=r"b is a Half, which lacks describe, fitness, "
                       r"rank, best, size: a benchmark needs"):
        extensions.check_benchmark(Half, "b")
    with pytest.raises(ConfigError, match=r"--benchmark=x\.py:t is the table of --evaluation=benchmark"):
        SearchConfig(benchmark="x.py:t").resolved()
    with pytest.raises(ConfigError, match=r"a reward error of NAS-Bench-201's table"):
        SearchConfig(space="x.py:s", evaluation="benchmark", benchmark="x.py:t",
                     benchmark_noise=0.01).resolved()
    c = SearchConfig(space="x.py:s", evaluation="benchmark", benchmark="x.py:t").resolved()
    assert c.template is None  # Nothing is built: no builder needed.


def test_nb201_given_as_a_users_benchmark_takes_the_built_in_path(tmp_path):
    import nb201  # pylint: disable=import-outside-toplevel

    table = dict(space="nb201", evaluation="benchmark", trials=40, children_per_step=8,
                 strategy="evolution", population_size=8, sample_size=3)
    built_in, _ = _search(tmp_path, "built-in", **table)
    theirs, _ = _search(tmp_path, "theirs", benchmark=nb201.Benchmark("cifar10"), **table)
    assert rows(tmp_path / "theirs") == rows(tmp_path / "built-in")
    assert theirs["benchmark_rank"] == built_in["benchmark_rank"]
    saved = json.loads((tmp_path / "theirs" / "config.json").read_text())
    assert saved["benchmark"] == "nb201:Benchmark"


# Those that search a table (not naswot: untrained scores, then training; not darts and gdas:
# they train a supernet).
BUILT_IN = [n for n, s in specs.STRATEGIES.items() if s.evaluations is None or "benchmark" in s.evaluations]


@pytest.mark.parametrize("strategy", BUILT_IN)
def test_every_built_in_strategy_searches_a_users_table(tmp_path, strategy):
    """examples/my_table.py: each pick's rank and regret as counted from the CSV itself."""
    reference = f"{EXAMPLES / 'my_table.py'}"
    extra = {"embedding": dict(embedding_pretrain=64, embedding_epochs=2),
             "tpe": dict(tpe_startup=4), "evolution": dict(population_size=8, sample_size=3)}
    best, lines = _search(tmp_path, strategy, space=f"{reference}:space", evaluation="benchmark",
                          benchmark=f"{reference}:table", trials=24, children_per_step=4,
                          strategy=strategy, **extra.get(strategy, {}))
    with open(EXAMPLES / "my_table.csv", newline="") as f:
        values = [float(r["val_accuracy"]) for r in csv.DictReader(f)]
    fitness = best["benchmark_fitness"]
    assert fitness in values and best["search_reward"] == fitness
    assert best["benchmark_rank"] == 1 + sum(v > fitness for v in values)
    assert best["benchmark_regret"] == pytest.approx(max(values) - fitness)
    assert best["benchmark_size"] == 64 and best["trials"] == 24
    assert len(rows(tmp_path / strategy)) == 24
    assert any(line.startswith("best: ") and "rank" in line for line in lines)


def test_an_architecture_missing_from_a_table_fails_as_a_child(tmp_path):
    import benchmarks  # pylint: disable=import-outside-toplevel

    space = state_space.StateSpace(1).add_state("op", ["a", "b", "c", "d"])
    partial = benchmarks.Table(space, {("a",): 0.5, ("b",): 0.9}, metric="accuracy", name="partial")
    best, _ = _search(tmp_path, "partial", space=space, benchmark=partial, evaluation="benchmark",
                      strategy="random", trials=12, children_per_step=4, max_failures=12)
    history = rows(tmp_path / "partial")
    failed = [r for r in history if r["failed"] == "1"]
    assert failed and all(r["layer0_op"] in ("c", "d") for r in failed)
    assert all("is not in the table 'partial'" in r["reason"] for r in failed)
    assert best["benchmark_fitness"] == 0.9


def test_the_table_example_runs_by_its_documented_command_and_assess_reads_it(processes):
    table = processes["example-table"].result()
    assert table.returncode == 0, table.stderr[-2000:]
    assert "best: " in table.stdout and "of 64, regret" in table.stdout
    sweep = processes["example-sweep"].result()
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    out = pathlib.Path(sweep.args[-1].split("=", 1)[1])
    with open(out, newline="") as f:
        swept = list(csv.DictReader(f))
    with open(EXAMPLES / "my_table.csv", newline="") as f:
        header = next(csv.reader(f))
    assert len(swept) == 4 and list(swept[0]) == header
    assessed = processes["assess-table"].result()
    assert assessed.returncode == 0, assessed.stderr[-2000:]
    folder = pathlib.Path(assessed.args[-1].split("=", 1)[1])
    report = (folder / "benchmark.md").read_text()
    assert "validation accuracy after 2 epochs (mnist5k)" in report
    evolution = [line for line in report.splitlines() if line.startswith("| 32 | evolution | 4 |")]
    assert len(evolution) == 1 and evolution[0].split("|")[-2].strip() not in ("", "nan")


class _FullDisk(_Random):
    def save(self, directory):
        raise OSError(28, "No space left on device", directory)


def test_a_strategy_whose_save_meets_a_full_disk_is_the_run_folders_error(tmp_path):
    """An OSError in save or load is the folder's (full, read-only), not a bug of the
    strategy: the run stops as at any full disk, with its resume hint."""
    import search  # pylint: disable=import-outside-toplevel

    with pytest.raises(search.RunFolderError, match=r"No space left on device.*"):
        _search(tmp_path, "full-disk", space="nb201", evaluation="benchmark", trials=8,
                children_per_step=4, strategy=_FullDisk)
    assert not (tmp_path / "full-disk" / "strategy-error.txt").exists()
