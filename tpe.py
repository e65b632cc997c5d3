"""`--strategy=tpe`: Bayesian optimization with Optuna's TPE sampler (Bergstra et al.
2011; Watanabe 2023), through Optuna's ask-and-tell interface.

Every decision of the space is one categorical parameter (its values as Optuna's
choices). The children of a step are asked for together (Optuna's constant liar
keeps them apart), trained by the loop like any other strategy's, and told their
fitness at the end of the step: a failed child is told 0 (its accuracy), so TPE
learns to avoid it; a child stopped early is told its estimated fitness
(early_stopping.py).

The study lives in the run folder, `optuna.journal` (Optuna's journal storage: an
append-only log, readable with `optuna.load_study(study_name="search",
storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
path)))`). Repeatable and resumable: the sampler is seeded afresh for every ask
from (seed, number of asks the run state has committed), so a resumed search asks
for exactly what an uninterrupted one would; trials that a crash left running
(asked after the last commit) are marked failed, which TPE ignores.

Optuna is imported here only: a search with another strategy does not need it.
"""

import os
import warnings

from run_log import cut_incomplete_line

STUDY = "search"
JOURNAL = "optuna.journal"
INSTALL = "pip install optuna==5.0.0 (requirements.txt)"


def _optuna():
    try:
        import optuna  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise ImportError(f"--strategy=tpe needs Optuna, which is not installed: {INSTALL}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # No line per told trial.
    # The journal storage and the multivariate TPE are marked experimental by Optuna.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


class TpeStrategy:
    """Proposes children with TPE; see the module docstring.

    Args:
      space: the `StateSpace`.
      seed: seeds every ask (with the number of asks before it).
      run_dir: the run folder; the study's journal is written there.
      startup: random children before TPE's model proposes (Optuna's
        `n_startup_trials`).
    """

    def __init__(self, space, seed, run_dir, startup=10):
        self.optuna = _optuna()
        self.space = space
        self.seed = int(seed)
        self.startup = startup
        self.path = os.path.join(run_dir, JOURNAL)
        self.asks = 0  # Asks committed in the run state.
        self.asked = []  # Trial numbers of the step in flight.
        self._study = None
        self.distributions = {
            d.key: self.optuna.distributions.CategoricalDistribution(list(d.choices))
            for d in space.decisions
        }

    @property
    def study(self):
        """The Optuna study in the run folder, made or opened on first use (the run
        folder exists by then)."""
        if self._study is None:
            optuna = self.optuna
            # A write the disk or a kill cut off: Optuna cannot read past it once
            # appended to (bench/faults.py, tpe, disk).
            cut_incomplete_line(self.path)
            storage = optuna.storages.JournalStorage(
                optuna.storages.journal.JournalFileBackend(self.path)
            )
            self._study = optuna.create_study(
                study_name=STUDY, storage=storage, direction="maximize", load_if_exists=True
            )
        return self._study

    def _sampler(self):
        return self.optuna.samplers.TPESampler(
            seed=(self.seed * 1_000_003 + self.asks) % 2**32, n_startup_trials=self.startup
        )

    def propose(self, n):
        study = self.study
        architectures = []
        for _ in range(n):
            study.sampler = self._sampler()
            trial = study.ask(self.distributions)
            self.asks += 1
            self.asked.append(trial.number)
            architectures.append(tuple(trial.params[d.key] for d in self.space.decisions))
        return architectures

    def learn(self, architectures, results):
        study = self.study
        if len(self.asked) != len(results):
            raise RuntimeError(
                f"TPE asked for {len(self.asked)} children and was told {len(results)}"
            )
        for number, result in zip(self.asked, results):
            # A step whose tell was written before a crash is told again on resume.
            study.tell(number, float(result.fitness), skip_if_finished=True)
        self.asked = []
        complete = study.get_trials(
            deepcopy=False, states=(self.optuna.trial.TrialState.COMPLETE,)
        )
        return {
            "tpe/complete_trials": len(complete),
            "tpe/best": max((t.value for t in complete), default=0.0),
        }

    def get_state(self):
        return {"asks": self.asks, "asked": list(self.asked)}

    def set_state(self, state):
        """Continues from a committed state: trials asked after it are marked failed."""
        self.asks, self.asked = int(state["asks"]), list(state["asked"])
        study = self.study
        running = study.get_trials(deepcopy=False, states=(self.optuna.trial.TrialState.RUNNING,))
        for trial in running:
            if trial.number not in self.asked:
                study.tell(trial.number, state=self.optuna.trial.TrialState.FAIL)

    def save(self, directory):
        """The study lives in the journal; the asks in state.json."""

    def load(self, directory):
        """Nothing to load; see `save`."""
