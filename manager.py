"""Builds, trains and scores child networks; turns accuracies into rewards.

A child is built by a template (templates.py: `toy`, `macro`, `nb201`, or a function
of your own) from the ops of operations.py.
`NetworkManager.get_rewards` trains the children of one controller step on the
training split, measures their accuracy on the validation split (never the test
split) and returns reward = accuracy - baseline, the baseline being an exponential
moving average of earlier accuracies. With `evaluation` one of config.SCORES it scores
the untrained children instead (NASWOT or a zero-cost proxy: zero_cost.Scorer) and the
score takes the accuracy's place;
with `evaluation="shared"` a `weight_sharing.SharedEvaluator` scores each child with
the weights of one supernet, on one validation minibatch.

This module uses `keras` and `keras.ops` only. It knows nothing about how
architectures are chosen.
"""

import dataclasses
import os
import time
import traceback
import warnings
import zlib

import keras
import numpy as np

import config
import crash_guard
import early_stopping
import naswot
import specs
import zero_cost
from run_log import error_line
from templates import TEMPLATES


class SearchError(RuntimeError):
    """A problem that stops the search (as opposed to one failed child)."""


# How a child gets its fitness (config.EVALUATIONS): trained, shared weights, a
# training-free score (config.SCORES), or `benchmark`, looked up in a table of trained
# accuracies (nb201.py), nothing is built.
EVALUATIONS = config.EVALUATIONS


# ---------------------------------------------------------------------- rewards


class EwaBaseline:
    """Exponential moving average of accuracies, bias-corrected (Adam-style), so that
    the first baseline equals the first accuracy."""

    def __init__(self, beta=0.8):
        if not 0 <= beta < 1:
            raise ValueError(f"acc_beta must be in [0, 1), got {beta}")
        self.beta = beta
        self.average = 0.0
        self.count = 0

    @property
    def value(self):
        """The corrected average, or None before the first accuracy."""
        if self.count == 0:
            return None
        return self.average / (1.0 - self.beta**self.count)

    def update(self, accuracy):
        self.average = self.beta * self.average + (1.0 - self.beta) * accuracy
        self.count += 1

    def get_state(self):
        return {"beta": self.beta, "average": self.average, "count": self.count}

    def set_state(self, state):
        self.beta, self.average, self.count = state["beta"], state["average"], state["count"]


@dataclasses.dataclass
class ChildResult:
    """The outcome of one child.

    Attributes:
      architecture: the architecture (tuple of values).
      accuracy: validation accuracy (0 for a failed child): of the trained child,
        or with shared weights on one validation minibatch (`evaluation="shared"`);
        None for a child scored untrained, not trained (`evaluation` one of
        config.SCORES: NASWOT or a zero-cost proxy).
      reward: fitness - baseline, clipped if the manager clips.
      baseline: the baseline the reward was measured against.
      params: number of parameters (0 if the child could not be built).
      train_seconds: seconds spent in `model.fit` (0 when cached).
      seconds: seconds spent on this child in all (build, fit, evaluate).
      cached: answered from the cache, not retrained.
      failed: the child could not be built or trained; `reason` says why, in one
        line, and `traceback` holds the whole traceback (the run folder's
        failures/trial-N.txt).
      score: the training-free score of the untrained child (zero_cost.Scorer's
        fitness), when it was computed.
      curve: validation accuracy after each epoch trained (with early stopping on).
      stopped_epoch: the epoch after which early stopping stopped the child (0: it
        trained every epoch); `accuracy` is then its accuracy at that epoch.
      stop_gain: what a stopped child's fitness adds to its accuracy: the median
        gain of the run's complete children from that epoch to the last
        (early_stopping.py).
      costs: {cost: value} where the search has an objective (objectives.py).
      infeasible: why the child breaks a budget of the objective ("" where it does
        not): it was not evaluated, and its fitness is a failed child's.
      factor: what the soft objective multiplies its fitness by (1 without one).
    """

    architecture: tuple
    accuracy: float
    reward: float = 0.0
    baseline: float = 0.0
    params: int = 0
    train_seconds: float = 0.0
    seconds: float = 0.0
    cached: bool = False
    failed: bool = False
    reason: str = ""
    traceback: str = ""
    score: float = None
    curve: list = None
    stopped_epoch: int = 0
    stop_gain: float = 0.0
    costs: dict = None
    infeasible: str = ""
    factor: float = 1.0

    @property
    def fitness(self):
        """What the search maximizes: the validation accuracy (for a child stopped
        early, plus its `stop_gain`) or, for a child that was scored and not trained,
        its score; times the soft objective's `factor`."""
        value = self.score if self.accuracy is None else self.accuracy + self.stop_gain
        return value if self.factor == 1.0 else value * self.factor


class NetworkManager:
    """Trains the children of a search and turns their accuracies into rewards.

    Args:
      dataset: a `data.Dataset`.
      space: the `StateSpace` the architectures come from.
      template: `toy`, `macro`, or a function `(space, architecture, input_shape,
        num_classes) -> keras.Model`.
      epochs: training epochs per child.
      batch_size: child minibatch size.
      learning_rate: Adam learning rate of the children.
      acc_beta: decay of the accuracy moving average (0.8, as in the small Keras implementation).
      clip_rewards: if > 0, rewards are clipped to [-clip_rewards, clip_rewards].
      cache: answer a repeated architecture from the cache instead of retraining.
      seed: seeds each child's initialization and data order (per architecture).
      max_failures: this many failed children in a row stop the search.
      template_args: extra keyword arguments for the template (e.g. `filters`).
      evaluation: `train` (train each child, reward its validation accuracy),
        `shared` (`shared` scores each child with shared weights; no cache, since the
        weights change) or one of config.SCORES (score each untrained child with
        NASWOT or a zero-cost proxy, reward the score: zero_cost.Scorer). With
        `shared` and a score nothing is trained until `train` is called for the
        final pick.
      proxy_batch: images in the scores' minibatch (drawn from the training split).
      proxy: the score of `scorer` when `evaluation` is not one (--strategy=proxy_ranking's
        ranking): one of config.SCORES.
      shared: the `weight_sharing.SharedEvaluator` of `evaluation="shared"`.
      benchmark: the `nb201.Benchmark` of `evaluation="benchmark"`: each child's
        fitness is its accuracy in the benchmark's table; nothing is built or
        cached (a lookup costs less than a cache hit).
      early_stop: measure every child after each epoch, and stop it when it is below
        `stop_thresholds` (set by the search before each step; early_stopping.py).
      objective: an `objectives.Objective` (None: accuracy alone); each child's costs
        come from `meter` (a `costs.CostMeter`) before it is evaluated, and a child over
        a budget is not evaluated (`ChildResult.infeasible`).
    """

    def __init__(
        self,
        dataset,
        space,
        *,
        template="toy",
        epochs=1,
        batch_size=128,
        learning_rate=1e-3,
        acc_beta=0.8,
        clip_rewards=0.0,
        cache=True,
        seed=0,
        max_failures=5,
        template_args=None,
        evaluation="train",
        proxy_batch=naswot.BATCH_SIZE,
        shared=None,
        early_stop=False,
        benchmark=None,
        proxy="naswot",
        objective=None,
        meter=None,
    ):
        if isinstance(template, str):
            if template not in TEMPLATES:
                raise ValueError(f"unknown template {template!r}; allowed: {sorted(TEMPLATES)}")
            template = TEMPLATES[template]
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
        if clip_rewards < 0:
            raise ValueError(f"clip_rewards must be >= 0 (0 = no clipping), got {clip_rewards}")
        if isinstance(max_failures, bool) or not isinstance(max_failures, int) or max_failures < 1:
            raise ValueError(f"max_failures must be an integer >= 1, got {max_failures!r}")
        if evaluation not in EVALUATIONS:
            raise ValueError(f"evaluation must be one of {list(EVALUATIONS)}, got {evaluation!r}")
        spec = specs.EVALUATIONS[evaluation]
        if spec.supernet != (shared is not None):
            raise ValueError(f"evaluation={evaluation!r}: a SharedEvaluator (shared=...) is for "
                             f"the evaluations on a supernet, and they need one")
        if spec.table != (benchmark is not None):
            raise ValueError(f"evaluation={evaluation!r}: a benchmark table (benchmark=...) is "
                             f"for the evaluations that look children up, and they need one")
        self.dataset = dataset
        self.space = space
        self.template = template
        self.template_args = dict(template_args or {})
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.clip_rewards = clip_rewards
        self.use_cache = cache and spec.cached
        self.seed = seed
        self.max_failures = max_failures
        self.baseline = EwaBaseline(acc_beta)
        self.cache = {}
        self.consecutive_failures = 0
        self.evaluation = evaluation
        self.proxy_batch = proxy_batch
        self.proxy = evaluation if spec.score else proxy
        if self.proxy not in config.SCORES:
            raise ValueError(f"proxy must be one of {list(config.SCORES)}, got {proxy!r}")
        self.shared = shared
        self.benchmark = benchmark
        self.early_stop = bool(early_stop) and spec.trains
        # `early_stopping.MedianRule.thresholds()` of the step in flight, or None.
        self.stop_thresholds = None
        self._scorer = None
        # A `workers.WorkerPool`: when set, children are trained (or scored untrained)
        # in its worker processes, a step's children at once; None: in this process.
        self.pool = None
        # Children trained in this process name themselves in this file while they train
        # (crash_guard.py; set by the search, None: not named), and children that killed
        # an earlier search process fail at once with this reason (architecture -> reason);
        # final retrainings that did: [(architecture, reason)].
        self.crash_marker = None
        self.crashed = {}
        self.final_crashes = []
        self.objective = objective or None
        self.meter = meter
        if self.objective is not None and meter is None:
            raise ValueError("an objective needs a cost meter (meter=costs.CostMeter(...))")

    def worker_settings(self):
        """The keyword arguments that rebuild this manager's child training in a
        worker process (`workers.ChildWorker`); no cache there, the search keeps it."""
        return dict(
            space=self.space,
            template=self.template,
            template_args=self.template_args,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            seed=self.seed,
            evaluation=self.evaluation,
            proxy_batch=self.proxy_batch,
            proxy=self.proxy,
            cache=False,
            early_stop=self.early_stop,
        )

    # ---------------------------------------------------------------- children

    def build_model(self, architecture):
        """Returns the Keras model of `architecture`, not compiled."""
        return self.template(
            self.space,
            architecture,
            self.dataset.input_shape,
            self.dataset.num_classes,
            **self.template_args,
        )

    def build(self, architecture):
        """Returns the compiled Keras model of `architecture`."""
        model = self.build_model(architecture)
        model.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        build_for_training(model, self.dataset.x_train[:1], self.dataset.y_train[:1])
        return model

    def child_seed(self, architecture):
        """The seed of a child: fixed per (manager seed, architecture), so that a
        retrained architecture trains exactly as it did the first time."""
        return (self.seed * 1_000_003 + zlib.crc32(repr(architecture).encode())) % (2**31 - 1)

    def train_final(self, architecture, epochs):
        """`train` for the final retraining of the best architecture, named in the crash
        marker as such (crash_guard.py). Returns (model, None), or (None, reason) when this
        retraining has killed the search process twice already (once with oneDNN on, once
        off): it is not tried a third time."""
        crashes = [reason for a, reason in self.final_crashes if a == tuple(architecture)]
        if len(crashes) >= 2:
            return None, crashes[-1]
        with crash_guard.training(self.crash_marker, architecture, "final"):
            return self.train(architecture, epochs=epochs)[0], None

    def train(self, architecture, epochs=None, watch=None):
        """Builds and trains one child on the training split.

        Args:
          watch: an `early_stopping.WatchChild` that measures the child after each
            epoch and may stop it.

        Returns:
          (model, train_seconds). Raises whatever building or training raises; a
          NaN loss raises FloatingPointError.
        """
        keras.utils.set_random_seed(self.child_seed(architecture))
        model = self.build(architecture)
        d = self.dataset
        epochs = epochs or self.epochs
        start = time.perf_counter()
        with warnings.catch_warnings():
            # Layers cut off by a zero or dropout-1.0 op get no gradient; that is the
            # child's problem (it scores low), not one to print for every child.
            warnings.filterwarnings("ignore", message="Gradients do not exist for variables")
            history = model.fit(
                d.x_train,
                d.y_train,
                epochs=epochs,
                batch_size=self.batch_size,
                verbose=0,
                callbacks=[keras.callbacks.TerminateOnNaN()] + ([watch] if watch else []),
            )
        train_seconds = time.perf_counter() - start
        losses = history.history.get("loss", [])
        if watch is not None and watch.stopped_epoch:
            epochs = watch.stopped_epoch
        if len(losses) < epochs or not np.all(np.isfinite(losses)):
            raise FloatingPointError("loss became NaN or infinite")
        return model, train_seconds

    @property
    def scorer(self):
        """The `zero_cost.Scorer` of this search (its score: `proxy`): a minibatch of
        the training split fixed by the seed; each network initialized as it would be
        for training.

        Raises:
          ValueError: the minibatch is larger than the training split.
        """
        if self._scorer is None:
            self._scorer = zero_cost.Scorer(
                self.build_model,
                self.dataset.x_train,
                self.dataset.y_train,
                proxy=self.proxy,
                batch_size=self.proxy_batch,
                seed=self.seed,
                seed_of=self.child_seed,
            )
        return self._scorer

    def score_all(self, architectures):
        """Scores of `architectures` (`zero_cost.Score`, in order), in the worker
        processes when there is a pool; a child whose worker died gets a failed score."""
        if self.pool is None:
            for architecture in architectures:
                if architecture in self.crashed:  # It killed the process once: not again.
                    yield zero_cost.Score(zero_cost.MIN_SCORE, failed=True, reason=self.crashed[architecture])
                    continue
                with crash_guard.training(self.crash_marker, architecture, "scoring"):
                    score = self.scorer.score(architecture)
                yield score
            return
        jobs = [("score", a, 0) for a in architectures]
        yield from self.pool.map(jobs, died=_died_score)

    def score(self, architecture):
        """Scores one untrained child (`proxy`); never raises for a child that fails."""
        s = next(self.score_all([architecture]))
        return ChildResult(
            architecture,
            None,
            params=s.params,
            seconds=s.seconds,
            failed=s.failed,
            reason=s.reason,
            traceback=s.traceback,
            score=s.score,
        )

    def score_shared(self, architecture, position=0):
        """Scores one child with the shared weights on one validation minibatch
        (`position` in the step picks the minibatch); never raises for a child that
        fails."""
        start = time.perf_counter()
        try:
            accuracy = self.shared.score(architecture, position)
            result = ChildResult(architecture, accuracy, params=self.shared.params(architecture))
        except Exception as e:  # pylint: disable=broad-except
            result = _failed(architecture, e)
        result.seconds = time.perf_counter() - start
        return result

    def look_up(self, architecture, position=0):
        """The child's reward in the benchmark's table (`evaluation="benchmark"`;
        extensions.Benchmark), with the benchmark's reward errors if it has any, and the
        parameters of its network where the benchmark knows them. `position` in the step
        numbers the query (the baseline's count of earlier children + position), which
        seeds fresh noise, so a resumed run asks with the same numbers. An architecture
        the table cannot answer fails as a child. Its `train_seconds` are the training
        time the benchmark simulates (`seconds`, where it has one), not measured here."""
        start = time.perf_counter()
        try:
            accuracy = float(self.benchmark.reward(architecture, self.baseline.count + position))
            params = getattr(self.benchmark, "params", None)
            result = ChildResult(architecture, accuracy, params=params(architecture) if params else 0)
            result.train_seconds = simulated_seconds(self.benchmark, architecture)
        except Exception as e:  # pylint: disable=broad-except  (a user's table too)
            result = _failed(architecture, e)
        result.seconds = time.perf_counter() - start
        return result

    def evaluate(self, architecture, position=0):
        """Trains one child and measures its validation accuracy; never raises for a
        child that fails (the failure is in the result). With a score or the
        `shared` evaluation the child is scored instead (`score`, `score_shared`;
        `position`, the child's place in its step, picks the shared minibatch); with
        `benchmark` its accuracy is looked up (`look_up`)."""
        if self.benchmark is not None:
            return self.look_up(architecture, position)
        if self.shared is not None:
            return self.score_shared(architecture, position)
        if specs.EVALUATIONS[self.evaluation].score:
            return self.score(architecture)
        if architecture in self.crashed:  # It killed the process once: not again.
            return ChildResult(architecture, 0.0, failed=True, reason=self.crashed[architecture])
        with crash_guard.training(self.crash_marker, architecture):
            return self._train_and_measure(architecture)

    def _train_and_measure(self, architecture):
        start = time.perf_counter()
        model = watch = None
        if self.early_stop:
            watch = early_stopping.WatchChild(
                lambda m: accuracy_of(m, self.dataset.x_val, self.dataset.y_val),
                self.stop_thresholds,
                self.epochs,
            )
        try:
            model, train_seconds = self.train(architecture, watch=watch)
            if watch is not None:
                accuracy = watch.curve[-1]  # Measured after the last epoch trained.
            else:
                accuracy = accuracy_of(model, self.dataset.x_val, self.dataset.y_val)
            result = ChildResult(
                architecture,
                float(accuracy),
                params=model.count_params(),
                train_seconds=train_seconds,
            )
            if watch is not None:
                result.curve = list(watch.curve)
                result.stopped_epoch, result.stop_gain = watch.stopped_epoch, watch.gain
        except Exception as e:  # pylint: disable=broad-except
            # Build errors, NaN losses and resource exhaustion fail this child only.
            result = _failed(architecture, e)
        finally:
            del model
            keras.backend.clear_session()  # Also runs the garbage collector.
        result.seconds = time.perf_counter() - start
        return result

    def get_rewards(self, architectures, on_result=None, done=()):
        """Evaluates the children of one controller step.

        All children of a step are scored against the same baseline: the moving
        average before the step or, in the very first step, the first accuracy. So a
        child's reward does not depend on its position in the step. The children are
        independent: with a pool (`--workers`, workers.py) they train at once.

        Args:
          architectures: the step's architectures.
          on_result: optional callback, called in order with each `ChildResult` as
            soon as its reward is known (for progress lines and logs).
          done: results of the step's first children, evaluated before an
            interruption; they are reused, not retrained, and not reported again.

        Returns:
          A list of `ChildResult`, in the order of `architectures`.

        Raises:
          SearchError: `max_failures` children in a row failed.
        """
        done = list(done)
        results = []
        baseline = self.baseline.value  # None before the first accuracy.
        scored = 0

        def score_ready(baseline):
            nonlocal scored
            for result in results[scored:]:
                result.baseline = baseline
                result.reward = self._clip(result.fitness - baseline)
                if on_result and scored >= len(done):
                    on_result(result)
                scored += 1

        for result in self._step_results(architectures, done):
            results.append(result)
            if not result.infeasible:  # Not evaluated: no evidence either way.
                self.consecutive_failures = self.consecutive_failures + 1 if result.failed else 0
            if baseline is None and not (result.failed or result.infeasible):
                baseline = result.fitness  # The first baseline is the first accuracy.
            if baseline is not None:
                score_ready(baseline)
            if self.consecutive_failures >= self.max_failures:
                score_ready(0.0 if baseline is None else baseline)
                raise SearchError(
                    f"{self.consecutive_failures} children failed in a row, the last with "
                    f"{result.reason}; check the search space and the child settings"
                )
        score_ready(0.0 if baseline is None else baseline)
        for result in results:
            if not (result.failed or result.infeasible):
                self.baseline.update(result.fitness)
        return results

    def _clip(self, reward):
        if self.clip_rewards > 0:
            return float(np.clip(reward, -self.clip_rewards, self.clip_rewards))
        return float(reward)

    def _step_results(self, architectures, done):
        """Yields the results of a step's children in their order: those in `done`,
        then cache hits and evaluations. With a pool, the children to evaluate go to
        the workers at once; a repeat of an architecture earlier in the step is the
        cache hit it would be in sequence."""
        # The objective's verdict of each child to evaluate, and the result of those that
        # are not (over a budget, or a network that cannot be measured).
        verdicts, early = {}, {}
        for i in range(len(done), len(architectures)):
            verdicts[i], result = self.judge(architectures[i])
            if result is not None:
                early[i] = result
        if self.pool is None or self.shared is not None:
            for i, architecture in enumerate(architectures):
                if i < len(done):
                    yield done[i]
                elif i in early:
                    yield early[i]
                else:
                    yield self._judged(self._lookup_or_evaluate(architecture, i), verdicts[i])
            return
        todo, seen = [], set(self.cache) if self.use_cache else set()
        for i in range(len(done), len(architectures)):
            if i in early:
                continue
            if architectures[i] not in seen:
                todo.append(i)
                if self.use_cache:
                    seen.add(architectures[i])
        evaluated = self.pool.map(
            [("evaluate", architectures[i], i, self.stop_thresholds) for i in todo], died=_died_child
        )
        todo = set(todo)
        for i, architecture in enumerate(architectures):
            if i < len(done):
                yield done[i]
            elif i in early:
                yield early[i]
            elif i in todo:
                result = next(evaluated)
                if self.use_cache and not result.failed:
                    self.cache[architecture] = dataclasses.replace(result)
                yield self._judged(result, verdicts[i])
            else:
                # Sequentially, the earlier copy would be in the cache by now, or,
                # if it failed, this one would be evaluated again.
                yield self._judged(self._lookup_or_evaluate(architecture, i), verdicts[i])

    def judge(self, architecture):
        """(the objective's `objectives.Verdict` of `architecture` from its costs, the
        child's result if it is not to be evaluated): (None, None) without an objective;
        a child over a budget is infeasible (a failed child's fitness, not a failure), one
        whose network cannot be built to be measured fails."""
        if self.objective is None:
            return None, None
        start = time.perf_counter()
        try:
            verdict = self.objective.judge(self.meter.measure(architecture))
        except Exception as e:  # pylint: disable=broad-except  (a builder that fails)
            result = _failed(architecture, e)
            result.seconds = time.perf_counter() - start
            return None, result
        if verdict.feasible:
            return verdict, None
        score = specs.EVALUATIONS[self.evaluation].score
        result = ChildResult(
            architecture,
            None if score else 0.0,
            score=zero_cost.MIN_SCORE if score else None,
            costs=verdict.costs,
            infeasible="; ".join(verdict.over),
            seconds=time.perf_counter() - start,
        )
        return verdict, result

    @staticmethod
    def _judged(result, verdict):
        """`result` with its costs and the soft objective's factor (a failed child keeps
        the failed fitness)."""
        if verdict is None:
            return result
        result.costs = verdict.costs
        if not result.failed:
            result.factor = verdict.factor
        return result

    def _lookup_or_evaluate(self, architecture, position=0):
        if self.use_cache and architecture in self.cache:
            hit = self.cache[architecture]
            return dataclasses.replace(hit, cached=True, seconds=0.0, train_seconds=0.0)
        if self.shared is not None:  # Not cached: see __init__.
            return self.score_shared(architecture, position)
        if self.pool is not None:
            (result,) = self.pool.map(
                [("evaluate", architecture, position, self.stop_thresholds)], died=_died_child
            )
        else:
            result = self.evaluate(architecture)
        if self.use_cache and not result.failed:
            self.cache[architecture] = dataclasses.replace(result)
        return result


def _died_child(job, reason, detail):
    """The result of a pool's job whose worker process died while it trained the child."""
    return ChildResult(job[1], 0.0, failed=True, reason=reason, traceback=detail)


def _died_score(job, reason, detail):
    """The score of a pool's job whose worker process died while scoring it."""
    del job
    return zero_cost.Score(zero_cost.MIN_SCORE, failed=True, reason=reason, traceback=detail)


def make_deterministic():
    """The same seed gives the same children on CPU: TensorFlow's kernels must be
    deterministic too (the other backends are on CPU). Per process: the search and
    every worker call it."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        tf.config.experimental.enable_op_determinism()
    if keras.backend.backend() == "torch":
        _cap_torch_onednn()


def _cap_torch_onednn():
    """On a CPU whose best vector ISA is AVX2 (no AVX-512: AMD Zen 1-3, older Intel),
    PyTorch 2.13's oneDNN corrupts the heap in the AVX2 kernel of a 1x1 convolution's
    weight gradient (`jit_1x1:avx2 backward_weights`, seen for a stride-2 1x1 conv on one
    input channel) and the process dies ("corrupted double-linked list"): with one thread,
    as every Ray worker has, in 3 of 3 processes of toy children (`bench/onednn_isa.py`).
    oneDNN's AVX kernels do not; they cost 8-22% more per child with two threads
    (BENCHMARKS §4). Capped in every torch process on such a CPU, in the search and in
    its workers alike, so that both run the same kernels and give the same children.
    A user's own ONEDNN_MAX_CPU_ISA wins. oneDNN reads it when it creates its first
    primitive, so this runs before the process's first convolution."""
    import torch  # pylint: disable=import-outside-toplevel

    if torch.backends.cpu.get_cpu_capability() == "AVX2":
        os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX")


def build_for_training(model, x, y):
    """Creates the loss's, metrics' and optimizer's variables of a compiled `model` from
    one batch's shapes (`x`, `y`), before its first training step.

    On TensorFlow without a distribution strategy Keras leaves them to be created
    while the training step is traced, and TensorFlow traces a function that creates
    variables twice: building them first saves one trace of every child's training
    step, the largest part of a small child's fixed cost, with the same weights bit
    for bit (BENCHMARKS.md, "Per-child fixed cost"). Keras does this itself on the
    other backends and under a strategy; `_symbolic_build` is the method it calls.
    """
    model._symbolic_build(data_batch=(x, y, None))  # pylint: disable=protected-access


def accuracy_of(model, x, y, batch_size=1000):
    """Classification accuracy of `model` on (x, y), in inference mode.

    A plain forward pass: `model.evaluate` would first trace a test function, which
    costs about three times as much for a child that is scored only once.
    """
    correct = 0
    for start in range(0, len(x), batch_size):
        probs = keras.ops.convert_to_numpy(model(x[start : start + batch_size], training=False))
        correct += int(np.sum(np.argmax(probs, axis=-1) == y[start : start + batch_size]))
    return correct / len(x)


def simulated_seconds(benchmark, architecture):
    """The training time a benchmark simulates for a query of `architecture` (its
    optional `seconds`), or 0.0 where it has none."""
    seconds = getattr(benchmark, "seconds", None)
    value = seconds(architecture) if seconds is not None else None
    return 0.0 if value is None else float(value)


def _failed(architecture, error):
    """The result of a child whose build, training or scoring raised `error` (call it
    inside the `except` block: the traceback is the one being handled)."""
    return ChildResult(
        architecture, 0.0, failed=True, reason=error_line(error), traceback=traceback.format_exc()
    )


