"""Every strategy of this project as a Keras Tuner oracle.

    import keras_tuner as kt
    from keras_tuner_oracles import ControllerOracle

    tuner = kt.Tuner(oracle=ControllerOracle(objective="val_accuracy", max_trials=40, seed=0),
                     hypermodel=build_model, directory="kt", project_name="controller")
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=2)

`StrategyOracle(strategy, ...)` takes a built-in strategy's name (`controller`, `evolution`,
`tpe`, `reinforce_table`, `budget_controller`, `memory_controller`, `embedding`, `random`) or a
user's strategy (a class or factory called with `(space, seed)`, or a `PATH.py:NAME`
reference), as `train.py --strategy` does. How Keras Tuner's world maps onto the loop's:

- The space: each hyperparameter, in the order Keras Tuner discovers them (it builds the
  hypermodel with every conditional scope active before the search), is one decision of a
  one-layer `StateSpace`: a `Choice`'s values, an `Int`'s or a stepped `Float`'s grid, a
  `Boolean`'s False and True, a `Fixed` value. A `Float` without a step has no grid: an error.
  The strategy decides every decision; a conditional hyperparameter whose condition does not
  hold is left out of the trial's values, as Keras Tuner's own oracles do.
- Steps: the strategy proposes `children_per_step` architectures at once; `populate_space`
  hands them out one trial at a time, and returns IDLE (never blocks) while the step's last
  trials are still running elsewhere. When all have ended the strategy learns from them.
- The reward: a trial's score is Keras Tuner's (`score_trial`: the best step's value of the
  objective, its default, kept so that every oracle of one tuner is judged alike); the fitness
  is that score in the objective's direction (negated for "min"); the reward is the fitness
  minus the moving-average baseline of earlier trials (`manager.EwaBaseline`, the first
  step against its first fitness), as in the project's own searches.
- A FAILED trial (or an INVALID one out of retries) is a failed child: its fitness is the
  worst fitness of the run so far, and it does not move the baseline.
- Resume: the oracle's state is JSON in `oracle.json`, written atomically (a kill leaves
  the old file or the new one); the strategy's weights are in `strategy/step-K` beside it.
  A tuner started again with `overwrite=False` reruns the trials that were running and
  continues with the proposals an uninterrupted tuner would have made.
- Poisoning: a choice that names one of the project's degraded ops (`poisoning.POISON_OPS`,
  `noise2#2` included), or the values `poisoned=` lists per hyperparameter, is poisoned;
  `poison_summary()` gives the poisoned fraction of the poisonable hyperparameters over the
  trials beside a uniform sampler's, as `assess.py` reports a search's.
"""

import dataclasses
import json
import os
import re
import shutil

try:
    import keras_tuner as kt
    from keras_tuner.engine import hyperparameters as hp_types
    from keras_tuner.engine.trial import TrialStatus
except ImportError as e:  # An optional feature: say how to get it.
    raise ImportError(
        f"keras_tuner_oracles needs Keras Tuner ({e}): pip install keras-tuner==1.4.8 "
        f"(requirements-test.txt)"
    ) from None

import config as config_lib
import extensions
import manager as manager_lib
import poisoning
import specs
import strategies
from run_log import atomic_write
from state_space import StateSpace, op_of


class OracleError(ValueError):
    """A hypermodel or setting the oracle cannot search; the message says what to change."""


def choices_of(hp):
    """The values a Keras Tuner hyperparameter can take, as one decision's choices.

    Raises:
      OracleError: a Float without a step (no grid), or a type this oracle does not know.
    """
    if isinstance(hp, hp_types.Fixed):
        return (hp.value,)
    if isinstance(hp, hp_types.Boolean):
        return (False, True)
    if isinstance(hp, hp_types.Choice):
        return tuple(hp.values)
    if isinstance(hp, hp_types.Float) and hp.step is None:
        raise OracleError(
            f"the Float hyperparameter {hp.name!r} has no step, so it has no finite list of "
            f"values to decide between: give it one, hp.Float({hp.name!r}, "
            f"{hp.min_value}, {hp.max_value}, step=...)"
        )
    if isinstance(hp, (hp_types.Int, hp_types.Float)):
        values = tuple(hp.values)  # Its grid: min, min + step, ... (or times step: log).
        return tuple(sorted(set(values), key=values.index))
    raise OracleError(f"the hyperparameter {hp.name!r} is a {type(hp).__name__}; this oracle "
                      f"decides Choice, Int, Float with a step, Boolean and Fixed")


def space_of(hyperparameters):
    """The one-layer StateSpace of a `kt.HyperParameters`: one decision per
    hyperparameter, in its order, named after it (letters, digits and _ kept)."""
    space = StateSpace(1)
    for i, hp in enumerate(hyperparameters.space):
        name = f"h{i}_" + re.sub(r"[^A-Za-z0-9_]", "_", hp.name)
        space.add_state(name, choices_of(hp))
    if not space.states:
        raise OracleError("the hypermodel asks for no hyperparameters: there is nothing to search")
    return space


class StrategyOracle(kt.Oracle):
    """A Keras Tuner oracle whose trials a strategy of this project proposes.

    Args:
      strategy: a built-in strategy's name, a `PATH.py:NAME` / `package.module:NAME`
        reference, or a class or factory called with `(space, seed)`.
      objective, max_trials, seed, hyperparameters, ...: Keras Tuner's (`kt.Oracle`).
      children_per_step: the architectures the strategy proposes at once, and learns
        from together (the controller's batch).
      acc_beta: the moving-average baseline's decay.
      poisoned: {hyperparameter name: its degraded values}, for the poison rate; by
        default the values that name a degraded op of poisoning.py.
      settings: the strategy's own settings, as `train.py`'s flags name them
        (`population_size=`, `tpe_startup=`, the controller's `controller_lr=`,
        `entropy_weight=`, `memory_size=`, ...).

    Raises:
      OracleError: an unknown strategy or setting, or one that cannot be an oracle.
    """

    STRATEGY_DIR = "strategy"  # The strategy's own files (TPE's journal).
    WEIGHTS_DIR = "strategy-weights"  # step-K: what strategy.save wrote after K steps.

    def __init__(self, strategy="random", objective=None, max_trials=10, seed=0,
                 children_per_step=None, acc_beta=0.8, hyperparameters=None,
                 allow_new_entries=True, tune_new_entries=True, max_retries_per_trial=0,
                 max_consecutive_failed_trials=3, poisoned=None, **settings):
        super().__init__(objective=objective, max_trials=max_trials,
                         hyperparameters=hyperparameters, allow_new_entries=allow_new_entries,
                         tune_new_entries=tune_new_entries, seed=seed,
                         max_retries_per_trial=max_retries_per_trial,
                         max_consecutive_failed_trials=max_consecutive_failed_trials)
        self.seed = seed  # Keras Tuner replaces a seed of 0 by a random one.
        given = None if isinstance(strategy, str) else strategy
        name = strategy if given is None else extensions.reference_of(strategy)
        self.config = _config(name, seed, max_trials, children_per_step, acc_beta, settings)
        self.given = given
        self.poisoned = dict(poisoned or {})
        self.poisonable = {}  # Decision index -> its poisoned values.
        self.strategy = self.space = None
        self.baseline = manager_lib.EwaBaseline(acc_beta)
        self.queue = []  # Architectures proposed and not yet handed out.
        self.step = []  # [trial_id, ...] of the step in flight, in proposal order.
        self.steps = 0  # Steps the strategy has learned from.
        self.worst = None  # The worst fitness so far: a failed trial's.
        # [architecture, fitness, reward, failed, poison rate] of every learned trial.
        self.history = []

    # ------------------------------------------------------------ Keras Tuner's calls

    def populate_space(self, trial_id):
        if self.strategy is None:
            self._start()
        if self.space_changed():
            raise OracleError(self._new_entry_message())
        if not self.queue:
            if any(t not in self.end_order for t in self.step):
                return {"status": TrialStatus.IDLE}  # The step's last trials are out.
            if self.step:
                self._learn()
            n = min(self.config.children_per_step, self.max_trials - len(self.trials))
            self.queue = [list(a) for a in self.strategy.propose(n)]  # The last step: fewer.
            if not self.queue:
                return {"status": TrialStatus.STOPPED}
        architecture = tuple(self.queue.pop(0))
        self.step.append(trial_id)
        return {"status": TrialStatus.RUNNING, "values": self.values_of(architecture)}

    def values_of(self, architecture):
        """The trial's values of an architecture: each active hyperparameter's."""
        hps = kt.HyperParameters()
        for hp, value in zip(self.hyperparameters.space, architecture):
            hps.merge([hp])
            if hps.is_active(hp):
                hps.values[hp.name] = value
        return hps.values

    def architecture_of(self, values):
        """The architecture of a trial's values (an inactive hyperparameter: its first choice)."""
        decisions = self.space.decisions
        return tuple(values.get(hp.name, d.choices[0])
                     for hp, d in zip(self.hyperparameters.space, decisions))

    def space_changed(self):
        return self.space is not None and len(self.hyperparameters.space) != len(self.space.decisions)

    def end_trial(self, trial):
        super().end_trial(trial)
        if self.space_changed():
            raise OracleError(self._new_entry_message(trial.trial_id))
        if self.step and not self.queue and all(t in self.end_order for t in self.step):
            self._learn()  # The step is complete (populate_space does it if a kill came first).
            self.save()

    # ------------------------------------------------------------ the strategy

    def _start(self, state=None):
        self.space = space_of(self.hyperparameters)
        names = [hp.name for hp in self.hyperparameters.space]
        unknown = [n for n in self.poisoned if n not in names]
        if unknown:
            raise OracleError(f"poisoned= names {unknown[0]!r}, which is not a hyperparameter of "
                              f"the hypermodel; they are {', '.join(names)}")
        for i, (name, decision) in enumerate(zip(names, self.space.decisions)):
            bad = self.poisoned.get(name)
            if bad is None:
                bad = [c for c in decision.choices if isinstance(c, str)
                       and op_of(c) in poisoning.POISON_OPS]
            missing = [v for v in bad if v not in decision.choices]
            if missing:
                raise OracleError(f"poisoned= gives {missing[0]!r} for {name!r}, which is not "
                                  f"one of its values {list(decision.choices)}")
            if bad:
                self.poisonable[i] = frozenset(bad)
        directory = self._strategy_dir()
        try:
            self.strategy = strategies.make_strategy(
                self.config, self.space, None, directory, out=lambda line: None,
                progress=lambda: min(1.0, len(self.trials) / self.max_trials), given=self.given,
            )
        except config_lib.ConfigError as e:
            raise OracleError(str(e)) from None
        if state is not None:
            self.strategy.load(self._weights(self.steps))  # As the loop resumes: then the state.
            self.strategy.set_state(state["strategy_state"])

    def _learn(self):
        """The step's results, rewarded against the baseline, told to the strategy."""
        trials = [self.trials[t] for t in self.step]
        direction = 1.0 if self.objective.direction == "max" else -1.0
        fitness = [direction * t.score if t.status == TrialStatus.COMPLETED else None
                   for t in trials]
        done = [f for f in fitness if f is not None]
        if done:
            self.worst = min(done + ([self.worst] if self.worst is not None else []))
        baseline = self.baseline.value
        if baseline is None:
            baseline = done[0] if done else 0.0
        results = []
        for t, f in zip(trials, fitness):
            failed = f is None
            value = (self.worst if self.worst is not None else 0.0) if failed else f
            results.append(manager_lib.ChildResult(
                self.architecture_of(t.hyperparameters.values), value, reward=value - baseline,
                baseline=baseline, failed=failed, reason=(t.message or "") if failed else "",
            ))
        for r in results:
            if not r.failed:
                self.baseline.update(r.fitness)
        self.strategy.learn([r.architecture for r in results], results)
        self.history += [[list(r.architecture), r.fitness, r.reward, r.failed,
                          self.poison_rate(r.architecture)] for r in results]
        self.step = []
        self.steps += 1

    def poison_rate(self, architecture):
        """The poisoned fraction of the poisonable hyperparameters (None: none can be)."""
        if not self.poisonable:
            return None
        hits = sum(architecture[i] in bad for i, bad in self.poisonable.items())
        return hits / len(self.poisonable)

    def poison_summary(self):
        """The poison rate over the learned trials (all, first and last quarter) beside a
        uniform sampler's (`prior`), or None for a hypermodel without poisoned values."""
        if not self.poisonable:
            return None
        choices = [self.space.decisions[i].choices for i in self.poisonable]
        prior = sum(len(b) / len(c) for b, c in zip(self.poisonable.values(), choices))
        rates = [h[4] for h in self.history]
        quarter = max(1, len(rates) // 4)
        mean = (lambda r: sum(r) / len(r) if r else None)
        return {"prior": prior / len(self.poisonable), "trials": len(rates), "rate": mean(rates),
                "first_quarter": mean(rates[:quarter]), "last_quarter": mean(rates[-quarter:])}

    def _strategy_dir(self):
        directory = os.path.join(self._project_dir, self.STRATEGY_DIR)
        os.makedirs(directory, exist_ok=True)
        return directory

    def _weights(self, steps):
        return os.path.join(self._project_dir, self.WEIGHTS_DIR, f"step-{steps}")

    def _new_entry_message(self, trial_id=None):
        known = {hp.name for hp in self.hyperparameters.space[: len(self.space.decisions)]}
        new = [hp.name for hp in self.hyperparameters.space if hp.name not in known]
        when = f"in trial {trial_id}" if trial_id is not None else "during the search"
        return (
            f"the hyperparameter {', '.join(map(repr, new)) or '?'} first appeared {when}, after "
            f"the strategy's space was fixed: declare it before the search (ask for it in every "
            f"build(hp); one that depends on another inside `with hp.conditional_scope(...)` "
            f"without an `if` around the block, which Keras Tuner activates before the search; "
            f"or pass hyperparameters= with it to the oracle)"
        )

    # ------------------------------------------------------------ state and resume

    def get_state(self):
        state = super().get_state()
        state.update(
            strategy_name=self.config.strategy,
            strategy_state=self.strategy.get_state() if self.strategy else None,
            baseline=self.baseline.get_state(),
            queue=self.queue,
            step=self.step,
            steps=self.steps,
            worst=self.worst,
            history=self.history,
        )
        return state

    def set_state(self, state):
        super().set_state(state)
        self.seed = state["seed"]
        self.baseline.set_state(state["baseline"])
        self.queue, self.step, self.steps = state["queue"], state["step"], state["steps"]
        self.worst, self.history = state["worst"], state["history"]
        if state["strategy_state"] is not None:
            self._start(state)

    def save(self):
        """oracle.json written atomically, after the strategy's weights of this step."""
        target = self._weights(self.steps)
        if self.strategy is not None and not os.path.isdir(target):
            shutil.rmtree(target + ".tmp", ignore_errors=True)
            os.makedirs(target + ".tmp")
            self.strategy.save(target + ".tmp")
            os.replace(target + ".tmp", target)
        with atomic_write(self._get_oracle_fname()) as f:
            json.dump(self.get_state(), f)
        if self.strategy is not None:  # Older steps' weights: no state names them now.
            directory = os.path.dirname(target)
            for name in os.listdir(directory):
                if name != os.path.basename(target):
                    shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


class ControllerOracle(StrategyOracle):
    """The controller RNN (REINFORCE with the moving-average baseline) as an oracle; its
    settings as `train.py` names them (`controller_lr=`, `entropy_weight=`, ...), and
    `children_per_step` (default 5: the architectures per controller update)."""

    def __init__(self, objective=None, max_trials=10, seed=0, children_per_step=5, **settings):
        super().__init__("controller", objective=objective, max_trials=max_trials, seed=seed,
                         children_per_step=children_per_step, **settings)


def _config(name, seed, max_trials, children_per_step, acc_beta, settings):
    """The SearchConfig a strategy is made from: its settings checked as train.py checks
    them (the space's are the hypermodel's: no space settings here)."""
    fields = {f.name for f in dataclasses.fields(config_lib.SearchConfig)}
    name = config_lib.renamed_value("strategy", name)  # An old name (naswot) is the new one's.
    try:
        settings = config_lib.renamed_fields(settings)  # So are old settings' names.
    except TypeError as e:
        raise OracleError(str(e)) from None
    controller = {k: settings.pop(k) for k in list(settings) if k in config_lib.CONTROLLER_DEFAULTS}
    flags = {v: k for k, v in config_lib.CONTROLLER_FLAGS.items()}
    controller.update({flags[k]: settings.pop(k) for k in list(settings) if k in flags})
    unknown = [k for k in settings if k not in fields]
    if unknown:
        raise OracleError(f"unknown setting {unknown[0]!r} of the strategy {name}; the settings are "
                          f"train.py's flags (docs/FLAGS.md)")
    if specs.strategy(name).candidates:
        raise OracleError(f"--strategy={name} ranks untrained networks it builds itself, which a "
                          f"Keras Tuner oracle cannot: choose another strategy")
    if not isinstance(max_trials, int) or max_trials < 1:
        raise OracleError(f"max_trials must be an integer >= 1, got {max_trials!r}")
    if children_per_step is not None:
        settings["children_per_step"] = children_per_step
    try:
        return config_lib.SearchConfig(
            strategy=name, seed=seed, trials=max_trials, acc_beta=acc_beta,
            controller=controller, **settings,
        ).resolved()
    except config_lib.ConfigError as e:
        raise OracleError(str(e)) from None
