"""keras_tuner_oracles.py: every strategy as a Keras Tuner oracle, through real kt.Tuners."""

import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest

kt = pytest.importorskip("keras_tuner")

import keras_tuner_oracles as kto  # noqa: E402
import specs  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = {"a": 3, "b": "relu", "c": True, "d": 0.5}


def build(hp):
    hp.Int("a", 0, 6)
    hp.Choice("b", ["relu", "tanh", "elu"])
    hp.Boolean("c")
    hp.Float("d", 0.0, 1.0, step=0.25)


class Planted(kt.Tuner):
    """A trial's score: how many of TARGET's values it has (no training)."""

    def run_trial(self, trial, *args, **kwargs):
        self.hypermodel.build(trial.hyperparameters)  # As kt.Tuner's does (no model here).
        values = trial.hyperparameters.values
        if values.get("b") == "fail":
            raise RuntimeError("this child cannot be built")
        return {"score": sum(values.get(n) == v for n, v in TARGET.items())}


def search(tmp_path, oracle, hypermodel=build, name="run"):
    tuner = Planted(oracle=oracle, hypermodel=hypermodel, directory=str(tmp_path),
                    project_name=name, overwrite=True)
    tuner.search(verbose=0)
    return [oracle.trials[t] for t in oracle.start_order]


def test_each_hyperparameter_type_is_one_decision():
    hp = kt.HyperParameters()
    hp.Choice("act", ["relu", "tanh"])
    hp.Int("units", 32, 128, step=32)
    hp.Int("width", 8, 64, step=2, sampling="log")
    hp.Float("dropout", 0.0, 0.5, step=0.25)
    hp.Boolean("bn")
    hp.Fixed("depth", 3)
    hp.Int("plain", 1, 3)
    space = kto.space_of(hp)
    assert [d.choices for d in space.decisions] == [
        ("relu", "tanh"), (32, 64, 96, 128), (8, 16, 32, 64), (0.0, 0.25, 0.5), (False, True),
        (3,), (1, 2, 3)]
    assert list(space.states)[:2] == ["h0_act", "h1_units"]


def test_what_cannot_be_a_decision_is_one_clear_error():
    hp = kt.HyperParameters()
    hp.Float("lr", 1e-4, 1e-2, sampling="log")
    with pytest.raises(kto.OracleError, match=r"Float hyperparameter 'lr' has no step.*step=\.\.\."):
        kto.space_of(hp)
    with pytest.raises(kto.OracleError, match="asks for no hyperparameters"):
        kto.space_of(kt.HyperParameters())
    with pytest.raises(kto.OracleError, match="ranks untrained networks"):
        kto.StrategyOracle("naswot", objective="val_accuracy", max_trials=4)
    with pytest.raises(kto.OracleError, match="unknown setting 'populaton_size'"):
        kto.StrategyOracle("evolution", objective="val_accuracy", max_trials=4, populaton_size=4)
    with pytest.raises(kto.OracleError, match="--strategy must be one of"):
        kto.StrategyOracle("hill_climbing", objective="val_accuracy", max_trials=4)
    with pytest.raises(kto.OracleError, match="--sample_size=9 must be <= --population_size=4"):
        kto.StrategyOracle("evolution", objective="val_accuracy", max_trials=4, population_size=4,
                           sample_size=9)


def test_the_controller_learns_a_planted_optimum_through_a_tuner(tmp_path):
    oracle = kto.ControllerOracle(objective=kt.Objective("score", "max"), max_trials=100, seed=0)
    trials = search(tmp_path, oracle)
    scores = [t.score for t in trials]
    assert len(trials) == 100 and all(t.status == "COMPLETED" for t in trials)
    # From chance (1.25 of 4 expected) to most of the target, by learning alone.
    assert sum(scores[-20:]) / 20 > sum(scores[:20]) / 20 + 1.0
    assert oracle.steps == 20 and oracle.history[0][1] == scores[0]


@pytest.mark.parametrize("name", [
    n for n, s in specs.STRATEGIES.items()
    if not s.candidates and (s.evaluations is None or "train" in s.evaluations)
])
def test_every_built_in_strategy_is_an_oracle(tmp_path, name):
    oracle = kto.StrategyOracle(name, objective=kt.Objective("score", "max"), max_trials=12,
                                seed=0, children_per_step=4, population_size=4, sample_size=2,
                                tpe_startup=4, embedding_pretrain=8, embedding_epochs=1)
    trials = search(tmp_path, oracle)
    assert len(trials) == 12 and oracle.steps >= 2
    for t in trials:
        assert t.status == "COMPLETED"
        assert oracle.space.validate(oracle.architecture_of(t.hyperparameters.values)) is None


@pytest.mark.parametrize("name", ["darts", "gdas"])
def test_a_strategy_that_trains_a_supernet_is_refused_as_an_oracle(name):
    with pytest.raises(kto.OracleError, match=f"--strategy={name} is for --evaluation=shared"):
        kto.StrategyOracle(name, objective=kt.Objective("score", "max"), max_trials=4)


def test_conditional_hyperparameters_are_left_out_while_inactive(tmp_path):
    def conditional(hp):
        hp.Boolean("deep")
        with hp.conditional_scope("deep", [True]):  # No `if` around it: found before the search.
            hp.Int("layers", 2, 4)
        hp.Choice("b", ["relu", "tanh"])

    oracle = kto.StrategyOracle("random", objective=kt.Objective("score", "max"), max_trials=12)
    trials = search(tmp_path, oracle, conditional)
    assert len(oracle.space.decisions) == 3
    for t in trials:
        assert ("layers" in t.hyperparameters.values) == t.hyperparameters.values["deep"]


def test_a_minimized_objective_is_negated_and_a_failed_trial_is_the_worst(tmp_path):
    def failing(hp):
        hp.Choice("b", ["relu", "fail"])
        hp.Int("a", 2, 4)

    oracle = kto.StrategyOracle("random", objective=kt.Objective("score", "min"), max_trials=16,
                                seed=3, children_per_step=4, max_consecutive_failed_trials=16)
    trials = search(tmp_path, oracle, failing)
    failed = [t for t in trials if t.status == "FAILED"]
    done = [t for t in trials if t.status == "COMPLETED"]
    assert failed and done
    by_trial = dict(zip(oracle.start_order, oracle.history))
    for t in done:
        assert by_trial[t.trial_id][1] == -t.score and not by_trial[t.trial_id][3]
    worst = min(-t.score for t in done)
    assert all(by_trial[t.trial_id][3] for t in failed)
    assert by_trial[failed[-1].trial_id][1] >= worst  # The worst so far, when it failed.


def test_a_hyperparameter_that_appears_mid_search_is_one_clear_error(tmp_path):
    calls = []

    def growing(hp):
        calls.append(1)
        hp.Choice("b", ["relu", "tanh"])
        if len(calls) > 3:
            hp.Int("late", 1, 3)

    oracle = kto.StrategyOracle("random", objective=kt.Objective("score", "max"), max_trials=8)
    with pytest.raises(kto.OracleError, match=r"hyperparameter 'late' first appeared in trial"):
        search(tmp_path, oracle, growing)

    def gated(hp):  # Keras Tuner's `if` pattern: the branch's hyperparameter comes late.
        if hp.Choice("model", ["small", "large"]) == "large":
            with hp.conditional_scope("model", ["large"]):
                hp.Int("units", 8, 16, step=8)

    oracle = kto.StrategyOracle("random", objective=kt.Objective("score", "max"), max_trials=8)
    with pytest.raises(kto.OracleError, match=r"'units' first appeared .*without an `if`"):
        search(tmp_path, oracle, gated, name="gated")


RESUMED = f"""
import os, signal, sys
sys.path.insert(0, {str(ROOT)!r})
import keras_tuner as kt
import keras_tuner_oracles as kto

TARGET = {TARGET!r}
def build(hp):
    hp.Int("a", 0, 6)
    hp.Choice("b", ["relu", "tanh", "elu"])
    hp.Boolean("c")
    with hp.conditional_scope("c", [True]):
        hp.Float("d", 0.0, 1.0, step=0.25)

class T(kt.Tuner):
    def run_trial(self, trial, *a, **k):
        marker = self.project_dir + "/killed-" + trial.trial_id
        if trial.trial_id in os.environ.get("KILL_AT", "").split(",") and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        v = trial.hyperparameters.values
        return {{"score": sum(v.get(n) == t for n, t in TARGET.items())}}

oracle = kto.ControllerOracle(objective=kt.Objective("score", "max"), max_trials=24, seed=1,
                              children_per_step=4)
tuner = T(oracle=oracle, hypermodel=build, directory=sys.argv[1], project_name="p",
          overwrite=sys.argv[2] == "new")
tuner.search(verbose=0)
for t in oracle.start_order:
    print(t, sorted(oracle.trials[t].hyperparameters.values.items()), oracle.trials[t].score)
"""


def _tune(script, folder, mode, **env):
    return subprocess.run([sys.executable, str(script), str(folder), mode], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("full")
    (folder / "tune.py").write_text(RESUMED)
    full = _tune(folder / "tune.py", folder, "new")
    assert full.returncode == 0, full.stderr
    assert len(full.stdout.splitlines()) == 24
    return full.stdout.splitlines()


def test_a_tuner_killed_twice_resumes_to_the_same_trials(tmp_path, uninterrupted):
    """Killed mid-step (the third of a step of four), resumed, killed at a step's last
    trial (where the step is learned), resumed: the uninterrupted tuner's 24 trials."""
    script = tmp_path / "tune.py"
    script.write_text(RESUMED)
    for mode in ("new", "resume"):
        killed = _tune(script, tmp_path, mode, KILL_AT="10,15")
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    resumed = _tune(script, tmp_path, "resume", KILL_AT="10,15")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[-24:] == uninterrupted
    weights = os.listdir(tmp_path / "p" / kto.StrategyOracle.WEIGHTS_DIR)
    assert weights == ["step-6"]  # Only the last step's: older ones are removed.


def test_the_example_runs_and_resumes(tmp_path):
    """examples/keras_tuner_controller.py as docs/KERAS_TUNER.md runs it (fewer trials)."""
    command = [sys.executable, "examples/keras_tuner_controller.py", "--trials=2", "--epochs=1",
               f"--directory={tmp_path}"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    assert re.match(r"best trial [01]: val_accuracy 0\.\d{4}, \{'units': ", first.stdout)
    again = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300,
                           cwd=ROOT)  # Finished: nothing is run again, the same best.
    assert again.returncode == 0 and again.stdout.splitlines()[-1] == first.stdout.splitlines()[-1]


DISTRIBUTED = f"""
import json, os, sys, time
sys.path.insert(0, {str(ROOT)!r})
import keras_tuner as kt
import keras_tuner_oracles as kto

def build(hp):
    hp.Int("a", 0, 6)
    hp.Choice("b", ["relu", "tanh", "elu"])

class T(kt.Tuner):
    def run_trial(self, trial, *a, **k):
        time.sleep(0.3)  # Long enough for the other worker to ask while a step is out.
        with open(os.path.join(sys.argv[1], os.environ["KERASTUNER_TUNER_ID"] + ".ran"), "a") as f:
            f.write(trial.trial_id + "\\n")
        v = trial.hyperparameters.values
        return {{"score": (v["a"] == 3) + (v["b"] == "relu")}}

oracle = kto.ControllerOracle(objective=kt.Objective("score", "max"), max_trials=16, seed=0,
                              children_per_step=4)
T(oracle=oracle, hypermodel=build, directory=sys.argv[1], project_name="p").search(verbose=0)
if os.environ["KERASTUNER_TUNER_ID"] == "chief":
    print(json.dumps({{"steps": oracle.steps, "trials": len(oracle.trials),
                      "statuses": sorted({{t.status for t in oracle.trials.values()}})}}))
"""


def test_keras_tuners_distributed_mode_runs_the_oracle_on_its_chief(tmp_path):
    """A chief and two workers on localhost (Keras Tuner's KERASTUNER_* variables)."""
    import json  # pylint: disable=import-outside-toplevel
    import socket  # pylint: disable=import-outside-toplevel

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "tune.py"
    script.write_text(DISTRIBUTED)
    env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
    processes = {
        name: subprocess.Popen([sys.executable, str(script), str(tmp_path)], text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**env, "KERASTUNER_TUNER_ID": name})
        for name in ("chief", "tuner0", "tuner1")
    }
    outputs = {name: p.communicate(timeout=300) for name, p in processes.items()}
    for name, p in processes.items():
        assert p.returncode == 0, (name, outputs[name][1][-2000:])
    chief = json.loads(outputs["chief"][0].splitlines()[-1])
    assert chief == {"steps": 4, "trials": 16, "statuses": ["COMPLETED"]}
    ran = [(tmp_path / f"tuner{i}.ran").read_text().split() for i in (0, 1)]
    assert sorted(ran[0] + ran[1]) == [f"{i:02d}" for i in range(16)]  # Each trial once.
    assert ran[0] and ran[1]  # Both workers had trials.


def test_the_poison_rate_of_a_poisoned_hypermodel(tmp_path):
    """Three op hyperparameters, half of whose values are degraded ops: a uniform sampler
    picks poison at rate 0.5; the score rewards clean ops, so the controller learns to
    avoid them, and each trial's rate is its own count."""
    ops = ["conv3x3", "conv5x5", "identity", "noise2#2"]

    def poisoned(hp):
        for i in range(3):
            hp.Choice(f"op{i}", ops)

    class Clean(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            values = trial.hyperparameters.values
            return {"score": sum(values[f"op{i}"].startswith("conv") for i in range(3))}

    summaries = {}
    for name in ("controller", "random"):
        oracle = kto.StrategyOracle(name, objective=kt.Objective("score", "max"), max_trials=80,
                                    seed=0, children_per_step=5)
        Clean(oracle=oracle, hypermodel=poisoned, directory=str(tmp_path), project_name=name,
              overwrite=True).search(verbose=0)
        for t, h in zip(oracle.start_order, oracle.history):
            values = oracle.trials[t].hyperparameters.values
            assert h[4] == sum(values[f"op{i}"] in ("identity", "noise2#2") for i in range(3)) / 3
        summaries[name] = oracle.poison_summary()
    assert summaries["random"]["prior"] == summaries["controller"]["prior"] == 0.5
    assert summaries["controller"]["trials"] == 80
    assert summaries["controller"]["last_quarter"] < 0.25  # From about 0.5 by learning.
    with pytest.raises(kto.OracleError, match="poisoned= names 'op9'"):
        oracle = kto.StrategyOracle("random", objective=kt.Objective("score", "max"),
                                    max_trials=2, poisoned={"op9": ["identity"]})
        Clean(oracle=oracle, hypermodel=poisoned, directory=str(tmp_path), project_name="bad",
              overwrite=True).search(verbose=0)


# ---------------------------------------------------------------- the project's spaces as hypermodels

import numpy as np  # noqa: E402

import data  # noqa: E402
import keras_tuner_hypermodels as kth  # noqa: E402
import poisoning  # noqa: E402
import state_space  # noqa: E402
import templates  # noqa: E402


def test_a_poisoned_space_is_a_hypermodel_of_its_decisions():
    """Each decision of the poisoned macro space is one Choice, in the space's order; the
    poisoned values are named per hyperparameter; a trial's model is the template's
    network of the architecture the trial's values choose."""
    hypermodel = kth.space_hypermodel("macro", num_layers=3, poison="identity,noise2",
                                      poison_instances=2, input_shape=(12, 12, 1), num_classes=4,
                                      filters=8)
    space = hypermodel.space
    hp = kt.HyperParameters()
    hypermodel.build(hp)
    assert [h.name for h in hp.space] == [d.key for d in space.decisions]
    assert [tuple(h.values) for h in hp.space] == [d.choices for d in space.decisions]
    ops = [d.key for d in space.decisions if d.name == "op"]
    assert hypermodel.poisoned == {
        key: ["identity#1", "identity#2", "noise2#1", "noise2#2"] for key in ops}
    assert all(len(d.choices) == 6 + 4 for d in space.decisions if d.name == "op")
    for architecture in space.sample(np.random.default_rng(0), 3):
        values = dict(zip(hypermodel.names, architecture))
        assert hypermodel.architecture(values) == architecture
        hp = kt.HyperParameters()
        hp.values.update(values)
        model = hypermodel.build(hp)
        alone = templates.build_macro(space, architecture, (12, 12, 1), 4, filters=8)
        assert model.count_params() == alone.count_params()
        assert model.optimizer is not None and model.loss == "sparse_categorical_crossentropy"


def test_the_oracle_reports_a_poisoned_space_hypermodels_poison_rate(tmp_path):
    """NAS-Bench-201 with `none` counted as poison (an op the space has, which only the
    space marks): every trial's rate is poisoning.poison_rate's and the prior is the
    space's, exactly."""
    hypermodel = kth.space_hypermodel("nb201", poison="none", input_shape=(8, 8, 3),
                                      num_classes=10, nb201_channels=4, nb201_cells=1)
    space = hypermodel.space

    class Table(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            values = trial.hyperparameters.values
            return {"score": sum(v == "nor_conv_3x3" for v in values.values())}

    oracle = kto.ControllerOracle(objective=kt.Objective("score", "max"), max_trials=10, seed=0,
                                  poisoned=hypermodel.poisoned)
    Table(oracle=oracle, hypermodel=hypermodel, directory=str(tmp_path), project_name="nb201",
          overwrite=True).search(verbose=0)
    assert oracle.poison_summary()["prior"] == pytest.approx(poisoning.prior(space)) == 0.2
    for t, h in zip(oracle.start_order, oracle.history):
        architecture = hypermodel.architecture(oracle.trials[t].hyperparameters)
        assert h[4] == pytest.approx(poisoning.poison_rate(space, architecture))


def test_a_space_hypermodel_trains_through_a_tuner(tmp_path):
    """The toy space on a few mnist5k images: each trial builds, trains and scores."""
    d = data.load_dataset("mnist5k", train_size=64, val_size=32, seed=0)
    import keras  # pylint: disable=import-outside-toplevel

    keras.utils.set_random_seed(0)  # The suite runs with op determinism on.
    hypermodel = kth.space_hypermodel("toy", num_layers=2, input_shape=d.input_shape,
                                      num_classes=d.num_classes)
    oracle = kto.ControllerOracle(objective="val_accuracy", max_trials=2, seed=0,
                                  children_per_step=2)
    tuner = kt.Tuner(oracle=oracle, hypermodel=hypermodel, directory=str(tmp_path),
                     project_name="toy", overwrite=True)
    tuner.search(d.x_train, d.y_train, validation_data=(d.x_val, d.y_val), epochs=1,
                 batch_size=32, verbose=0)
    trials = [oracle.trials[t] for t in oracle.start_order]
    assert [t.status for t in trials] == ["COMPLETED", "COMPLETED"]
    assert all(0.0 <= t.score <= 1.0 for t in trials)
    assert oracle.poison_summary() is None  # A clean space.


def test_what_a_space_hypermodel_refuses_is_one_clear_error(tmp_path):
    shape = {"input_shape": (8, 8, 1), "num_classes": 3}
    with pytest.raises(ValueError, match="--poison.*idnetity"):
        kth.space_hypermodel("macro", poison="idnetity", **shape)
    with pytest.raises(ValueError, match="--space must be one of|--space="):
        kth.space_hypermodel("tiny", **shape)
    with pytest.raises(ValueError, match="unexpected keyword argument 'filtrs'"):
        kth.space_hypermodel("macro", filtrs=8, **shape)
    space = state_space.StateSpace(1)
    space.add_state("width", (16, 32.0))
    with pytest.raises(ValueError, match=r"choices of layer0_width are \[16, 32.0\].*one type"):
        kth.SpaceHyperModel(space, "toy", **shape)
    path = tmp_path / "mine.py"
    path.write_text("import state_space\nspace = state_space.toy_space(2)\n")
    with pytest.raises(ValueError, match="a space of your own: give the network builder"):
        kth.space_hypermodel(f"{path}:space", **shape)
