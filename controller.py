"""The controller: an autoregressive LSTM policy over a StateSpace, trained by REINFORCE.

Each decision of `space.decisions` is one step of the LSTM: the step's input is the
embedding of the previous decision's sampled choice, and a softmax head per state
scores that decision's choices. Skip connections are anchor points (Zoph & Le, 2016;
ENAS): after a layer's states, one more LSTM step produces the layer's anchor, and the
probability that an earlier layer j feeds layer i is sigmoid(v . tanh(W_prev h_j +
W_curr h_i)).

Sampling never takes the argmax of the policy: it draws from it with the Gumbel-max
trick, the noise coming from a seeded NumPy generator, so that runs repeat exactly and
the generator's state can be saved.

This module uses `keras` and `keras.ops` only, so it runs on the TensorFlow, JAX and
PyTorch backends. It knows nothing about child networks or rewards.
"""

import json
import os
import warnings
import weakref

import keras
import numpy as np
from keras import ops

import config
from run_log import atomic_write, error_line, load_arrays, save_arrays, write_json

WEIGHTS_FILE = "controller.weights.npz"  # every variable of the scorer, in order

# Defaults, with their source (ENAS, NAS: see config.CONTROLLER_DEFAULTS), and the checks
# of every setting: config.py, so that train.py refuses a bad one before Keras loads.
DEFAULTS = config.CONTROLLER_DEFAULTS


class ControllerError(ValueError):
    """A bad controller setting or a checkpoint that does not fit."""


class _Policy(keras.layers.Layer):
    """The LSTM policy. `unroll` walks the decisions; `choose` picks each choice."""

    def __init__(
        self,
        space,
        lstm_units,
        lstm_layers,
        embedding_size,
        temperature,
        tanh_constant,
        exploration,
        init_range,
        seed,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.space = space
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        self.exploration = exploration
        seeds = iter(range(seed * 1000, seed * 1000 + 1000))

        def init():
            return keras.initializers.RandomUniform(-init_range, init_range, seed=next(seeds))

        self.cells = [
            keras.layers.LSTMCell(
                lstm_units,
                kernel_initializer=init(),
                recurrent_initializer=init(),
                bias_initializer=init(),
            )
            for _ in range(lstm_layers)
        ]
        self.state_names = list(space.states)
        self.embeddings = [
            keras.layers.Embedding(
                len(space.states[n]), embedding_size, embeddings_initializer=init()
            )
            for n in self.state_names
        ]
        # One softmax head per layer and state: its bias lets each decision move on
        # its own, which learns several times faster than heads shared by layers.
        self.heads = [
            keras.layers.Dense(
                len(space.states[n]), kernel_initializer=init(), bias_initializer=init()
            )
            for _ in range(space.num_layers)
            for n in self.state_names
        ]
        self.go = self.add_weight(shape=(1, embedding_size), initializer=init(), name="go")
        if space.skip_connections:
            self.attn_prev = keras.layers.Dense(
                lstm_units, use_bias=False, kernel_initializer=init()
            )
            self.attn_curr = keras.layers.Dense(
                lstm_units, use_bias=False, kernel_initializer=init()
            )
            # One attention vector v and one bias per (layer, earlier layer) pair, like
            # the per-decision heads: with a v shared by all pairs (as in ENAS), Adam moves
            # the shared term far faster than any per-pair parameter, every bit follows the
            # majority, and the tanh cap then freezes the minority bits on the wrong side.
            num_pairs = max(space.num_layers * (space.num_layers - 1) // 2, 1)
            self.attn_v = self.add_weight(
                shape=(num_pairs, lstm_units), initializer=init(), name="attn_v"
            )
            self.skip_bias = self.add_weight(
                shape=(num_pairs,), initializer=init(), name="skip_bias"
            )
            self.skip_input = keras.layers.Dense(
                embedding_size, use_bias=False, kernel_initializer=init()
            )
        self.lstm_units = lstm_units

    def _step(self, inputs, states):
        new_states = []
        for cell, state in zip(self.cells, states):
            inputs, state = cell(inputs, state)
            new_states.append(state)
        return inputs, new_states

    def _shape_logits(self, logits):
        if self.temperature != 1.0:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * ops.tanh(logits)
        return logits

    def unroll(self, batch_size, choose, final_step=False):
        """Runs the policy over every decision.

        Args:
            batch_size: number of architectures processed side by side.
            choose: `choose(d, logits) -> int tensor (batch,)`, the choice for decision d.
            final_step: run the LSTM once more on the last decision's input (the
                embedding of the last choice, or the last layer's skip context), so
                that `hidden` has seen every decision.

        Returns:
            (log_prob, entropy, probs, choices, hidden): the summed log-probabilities
            and entropies of the chosen architectures (batch,), the per-decision
            choice probabilities concatenated (batch, total choices), the choices
            (batch, decisions), and the LSTM's output after its last step (batch,
            lstm_units): with `final_step`, the hidden state after the last
            decision, which the probe (probe.py) reads.
        """
        inputs = ops.repeat(self.go, batch_size, axis=0)
        zeros = ops.zeros((batch_size, self.lstm_units))
        states = [[zeros, zeros] for _ in self.cells]
        anchors, anchors_proj = [], []
        log_probs, entropies, probs, choices = [], [], [], []

        def record(d, logits):
            index = choose(d, logits)
            log_p = ops.log_softmax(logits, axis=-1)
            p = ops.exp(log_p)
            one_hot = ops.one_hot(index, ops.shape(logits)[-1])
            log_probs.append(ops.sum(one_hot * log_p, axis=-1))
            entropies.append(-ops.sum(p * log_p, axis=-1))
            probs.append(p)
            choices.append(index)
            return index

        d = 0
        for layer in range(self.space.num_layers):
            for s in range(len(self.state_names)):
                output, states = self._step(inputs, states)
                head = self.heads[layer * len(self.state_names) + s]
                index = record(d, self._shape_logits(head(output)))
                inputs = self.embeddings[s](index)
                d += 1
            if not self.space.skip_connections:
                continue
            output, states = self._step(inputs, states)
            if layer == 0:
                inputs = ops.repeat(self.go, batch_size, axis=0)
            else:
                query = ops.tanh(
                    ops.stack(anchors_proj, axis=1) + ops.expand_dims(self.attn_curr(output), 1)
                )
                first = layer * (layer - 1) // 2
                attention = ops.sum(query * self.attn_v[first : first + layer], axis=-1)
                skip_logits = self._shape_logits(attention + self.skip_bias[first : first + layer])
                bits = []
                for j in range(layer):
                    # A skip bit is a two-way softmax over (off, on) = (0, logit): sigmoid(logit).
                    two_way = ops.stack(
                        [ops.zeros_like(skip_logits[:, j]), skip_logits[:, j]], axis=-1
                    )
                    bits.append(ops.cast(record(d, two_way), "float32"))
                    d += 1
                bits = ops.stack(bits, axis=1)
                context = ops.sum(ops.expand_dims(bits, -1) * ops.stack(anchors, axis=1), axis=1)
                context = context / ops.expand_dims(1.0 + ops.sum(bits, axis=1), -1)
                inputs = self.skip_input(context)
            anchors.append(output)
            anchors_proj.append(self.attn_prev(output))
        if final_step:
            output, _ = self._step(inputs, states)
        return (
            ops.sum(ops.stack(log_probs, 1), 1),
            ops.sum(ops.stack(entropies, 1), 1),
            ops.concatenate(probs, axis=1),
            ops.stack(choices, axis=1),
            output,
        )


class _Scorer(keras.Model):
    """Teacher forcing: given choice indices, returns [log_prob, entropy, probs...];
    with `hidden`, the LSTM's output after the last decision instead (the hidden
    state the probe compares)."""

    def __init__(self, policy, hidden=False, **kwargs):
        super().__init__(**kwargs)
        self.policy = policy
        self.hidden = hidden

    def build(self, input_shape):
        # The policy's layers are built by their first call inside `call`.
        self.built = True

    def call(self, indices):
        indices = ops.cast(indices, "int32")
        log_prob, entropy, probs, _, hidden = self.policy.unroll(
            ops.shape(indices)[0], lambda d, logits: indices[:, d], final_step=self.hidden
        )
        if self.hidden:
            return hidden
        return ops.concatenate(
            [ops.expand_dims(log_prob, 1), ops.expand_dims(entropy, 1), probs], axis=1
        )


class _Sampler(keras.Model):
    """Gumbel-max sampling: given Gumbel noise, returns the sampled choice indices.

    With `scheduled`, the uniform mix and a factor on the logits are variables
    (`mix`, `sharpen`) that may change between calls without tracing again (the
    budget-aware controller's schedule); otherwise the policy's fixed `exploration`.
    """

    def __init__(self, policy, offsets, scheduled=False, **kwargs):
        super().__init__(**kwargs)
        self.policy = policy
        self.offsets = offsets
        self.scheduled = scheduled
        if scheduled:
            self.mix = self.add_weight(shape=(), initializer="zeros", trainable=False, name="mix")
            self.sharpen = self.add_weight(
                shape=(), initializer="ones", trainable=False, name="sharpen"
            )

    def build(self, input_shape):
        self.built = True

    def call(self, noise):
        policy = self.policy

        def choose(d, logits):
            start, stop = self.offsets[d], self.offsets[d + 1]
            if self.scheduled:
                log_p = ops.log_softmax(logits * self.sharpen, axis=-1)
                log_p = ops.log((1.0 - self.mix) * ops.exp(log_p) + self.mix / (stop - start))
                return ops.cast(ops.argmax(log_p + noise[:, start:stop], axis=-1), "int32")
            log_p = ops.log_softmax(logits, axis=-1)
            if policy.exploration > 0:
                mixed = (1.0 - policy.exploration) * ops.exp(log_p) + policy.exploration / (
                    stop - start
                )
                log_p = ops.log(mixed)
            return ops.cast(ops.argmax(log_p + noise[:, start:stop], axis=-1), "int32")

        _, _, _, choices, _ = policy.unroll(ops.shape(noise)[0], choose)
        return choices


def _reinforce_loss(entropy_weight, skip_columns=None, skip_weight=0.0, skip_target=0.4):
    """Per row: s * (-(A * sum log pi) - w * H [+ skip_weight * mean KL(p_skip ||
    skip_target)]) - r * sum log pi, averaged over the batch by Keras.

    The targets are (A, s, r) per row: a sampled architecture has (advantage, n / n_s,
    0), an architecture of the memory buffer (0, 0, memory_weight * n / n_m), where n
    = n_s + n_m rows; so the mean over the batch is the REINFORCE loss of the samples
    plus memory_weight times the mean reconstruction loss (negative log-likelihood)
    of the buffer's batch. `skip_columns` are the columns of `outputs` that hold each
    skip bit's probability of "on" (ENAS's skip penalty)."""

    def loss(targets, outputs):
        value = -targets[:, 0] * outputs[:, 0] - entropy_weight * outputs[:, 1]
        if skip_weight > 0 and skip_columns is not None and len(skip_columns):
            value = value + skip_weight * ops.mean(
                _skip_kl(ops.take(outputs, skip_columns, axis=1), skip_target), axis=1
            )
        return targets[:, 1] * value - targets[:, 2] * outputs[:, 0]

    return loss


def _skip_kl(p, target):
    """KL(Bernoulli(p) || Bernoulli(target)), elementwise."""
    eps = 1e-7
    p = ops.clip(p, eps, 1.0 - eps)
    return p * ops.log(p / target) + (1.0 - p) * ops.log((1.0 - p) / (1.0 - target))


class _Models:
    """A controller's Keras models, which share one policy. Their traced functions
    (a traced graph function on TensorFlow) live on these objects: a later controller of the same
    shape takes them over (`_idle`) instead of tracing its own."""

    def __init__(self, policy, scorer, sampler):
        self.policy, self.scorer, self.sampler = policy, scorer, sampler
        self.scheduled = None  # Made by the first sample() with a schedule.
        self.hidden = None  # Made by the first hidden_states().


# The models of controllers that no longer exist, by (backend, space signature,
# settings). A new controller with the same key copies its own freshly initialised
# weights and optimizer state into idle models and uses those, so a process that runs
# many searches one after another (assess.py on NAS-Bench-201) traces each function
# once, not once per run: tracing is about 4 s per controller on TensorFlow, half of a
# 1,000-query table-lookup run. Results are unchanged (tests/test_controller.py).
_idle = {}


def _key(space, hparams):
    return json.dumps(
        [keras.backend.backend(), space.signature(), hparams], sort_keys=True, default=repr
    )


class Controller:
    """Samples architectures from a StateSpace and learns from their advantages.

    Args:
        space: the `StateSpace` to search.
        seed: seeds the weights and the sampling generator.
        lstm_units, lstm_layers, embedding_size, learning_rate, entropy_weight,
        temperature, tanh_constant, exploration, grad_clip, init_range: see
            `DEFAULTS` for values and sources. `exploration` mixes that much uniform
            probability into each decision while sampling (the update still uses the
            policy's own log-probabilities, so it is slightly off-policy).

    Raises:
        ControllerError: a setting out of range.
    """

    def __init__(self, space, *, seed=0, **hparams):
        try:
            self.hparams = config.check_controller(hparams)
        except config.ConfigError as e:
            raise ControllerError(str(e)) from None
        space.num_architectures  # Raises if the space has no decisions.
        self.space = space
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.updates = 0
        h = self.hparams
        policy = _Policy(
            space,
            h["lstm_units"],
            h["lstm_layers"],
            h["embedding_size"],
            h["temperature"],
            h["tanh_constant"],
            h["exploration"],
            h["init_range"],
            self.seed,
            name="policy",
        )
        sizes = [len(d.choices) for d in space.decisions]
        self._offsets = [0] + list(np.cumsum(sizes))
        self._models = _Models(
            policy,
            _Scorer(policy, name="controller_scorer"),
            _Sampler(policy, self._offsets, name="controller_sampler"),
        )
        # The memory buffer: encoded architectures of earlier updates, oldest first.
        self.memory = np.zeros((0, len(sizes)), "int32")
        # Column of each skip bit's "on" probability in the scorer's outputs.
        self._skip_columns = np.array(
            [2 + self._offsets[d] + 1 for d, x in enumerate(space.decisions) if x.kind == "skip"],
            dtype="int32",
        )
        self._scorer.compile(
            optimizer=keras.optimizers.Adam(h["learning_rate"], global_clipnorm=h["grad_clip"]),
            loss=_reinforce_loss(
                h["entropy_weight"], self._skip_columns, h["skip_weight"], h["skip_target"]
            ),
            jit_compile=False,
        )
        # Build every variable now, so that weights can be loaded before any update.
        self._scorer(np.zeros((1, len(sizes)), "int32"))
        self._scorer.optimizer.build(self._scorer.trainable_variables)
        self._adopt_idle_models(_key(space, self.hparams))

    def _adopt_idle_models(self, key):
        """Takes over idle models of a gone controller with the same key, if any (see
        `_idle`), with this controller's initial weights and optimizer state; and
        hands this controller's models to `_idle` when it is garbage-collected."""
        idle = _idle.setdefault(key, [])
        if idle:
            models = idle.pop()
            for source, target in (
                (self._scorer.weights, models.scorer.weights),
                (self._scorer.optimizer.variables, models.scorer.optimizer.variables),
            ):
                if len(source) != len(target):  # Not the same shape after all: keep ours.
                    break
                for a, b in zip(source, target):
                    b.assign(a)
            else:
                models.scorer.reset_metrics()
                self._models = models
        weakref.finalize(self, idle.append, self._models)

    @property
    def _policy(self):
        return self._models.policy

    @property
    def _scorer(self):
        return self._models.scorer

    @property
    def _sampler(self):
        return self._models.sampler

    # ------------------------------------------------------------------ policy

    def sample(self, n, exploration=None, sharpen=None):
        """Draws n architectures from the current policy (never the argmax).

        Args:
            exploration, sharpen: a schedule for this draw (the budget-aware
                controller): each decision samples from (1 - exploration) *
                softmax(sharpen * logits) + exploration * uniform. None: the
                policy's own `exploration` and no sharpening.

        Returns:
            A list of n architectures (tuples of values).
        """
        if n < 1:
            raise ControllerError(f"sample(n) needs n >= 1, got {n}")
        noise = self.rng.gumbel(size=(n, self._offsets[-1])).astype("float32")
        sampler = self._sampler
        if exploration is not None or sharpen is not None:
            if self._models.scheduled is None:
                self._models.scheduled = _Sampler(
                    self._policy, self._offsets, scheduled=True, name="scheduled_sampler"
                )
            sampler = self._models.scheduled
            sampler.mix.assign(self.hparams["exploration"] if exploration is None else exploration)
            sampler.sharpen.assign(1.0 if sharpen is None else sharpen)
        indices = np.asarray(sampler.predict_on_batch(noise))
        return [self.space.decode(row) for row in indices]

    def _score(self, architectures):
        indices = np.array([self.space.encode(a) for a in architectures], dtype="int32")
        return indices, np.asarray(self._scorer.predict_on_batch(indices))

    def update(self, architectures, advantages):
        """One REINFORCE step: loss = -mean(A * sum log pi) - entropy_weight * mean(H),
        plus, with a memory buffer, memory_weight * the mean reconstruction loss of
        `memory_batch` architectures drawn from it (`reconstruction_loss`). The step's
        architectures join the buffer after the step.

        Args:
            architectures: the sampled architectures (tuples of values).
            advantages: one reward-minus-baseline per architecture.

        Returns:
            dict with `loss`, `entropy` (mean summed entropy), `log_prob` (mean summed
            log-probability), `mean_advantage`, `probabilities` (as `probabilities()`
            returns them), `memory_loss` (the reconstruction loss of the buffer's
            batch, None without one), all measured before the step, and `updates`
            (the number of updates so far).
        """
        advantages = np.asarray(advantages, dtype="float32").reshape(-1, 1)
        if len(architectures) == 0 or len(architectures) != len(advantages):
            raise ControllerError(
                f"update() needs one advantage per architecture, got {len(architectures)} "
                f"architectures and {len(advantages)} advantages"
            )
        if not np.all(np.isfinite(advantages)):
            raise ControllerError(f"advantages must be finite, got {advantages.ravel().tolist()}")
        h = self.hparams
        indices = np.array([self.space.encode(a) for a in architectures], dtype="int32")
        recalled = self._recall()
        n_s, n_m = len(indices), len(recalled)
        outputs = np.asarray(self._scorer.predict_on_batch(np.concatenate([indices, recalled])))
        outputs, memory_outputs = outputs[:n_s], outputs[n_s:]
        if h["reward_entropy"] > 0:
            # ENAS: reward = accuracy + w * entropy of the sample.
            advantages = advantages + h["reward_entropy"] * outputs[:, 1:2]
        loss = float(np.mean(-advantages[:, 0] * outputs[:, 0] - h["entropy_weight"] * outputs[:, 1]))
        if h["skip_weight"] > 0 and len(self._skip_columns):
            kl = _skip_kl(outputs[:, self._skip_columns], h["skip_target"])
            loss += h["skip_weight"] * float(np.mean(keras.ops.convert_to_numpy(kl)))
        memory_loss = float(np.mean(-memory_outputs[:, 0])) if n_m else None
        n = n_s + n_m
        targets = np.zeros((n, 3), "float32")
        targets[:n_s, 0] = advantages[:, 0]
        targets[:n_s, 1] = n / n_s
        if n_m:
            targets[n_s:, 2] = h["memory_weight"] * n / n_m
            loss += h["memory_weight"] * memory_loss
        with warnings.catch_warnings():
            # The last decision's embedding feeds no later step, so it gets no gradient:
            # by design, not a warning to print at every update.
            warnings.filterwarnings("ignore", message="Gradients do not exist for variables")
            self._scorer.train_on_batch(np.concatenate([indices, recalled]), targets)
        self.updates += 1
        self._remember(indices)
        return {
            "loss": loss,
            "entropy": float(np.mean(outputs[:, 1])),
            "log_prob": float(np.mean(outputs[:, 0])),
            "mean_advantage": float(np.mean(advantages)),
            "skip_rate": self._skip_rate(outputs),
            "probabilities": self._mean_probabilities(outputs),
            "memory_loss": memory_loss,
            "updates": self.updates,
        }

    # ------------------------------------------------------------------ memory

    def _recall(self):
        """The buffer's batch for this update (drawn without replacement by the
        sampling generator), empty before `memory_start` updates or without a buffer."""
        h = self.hparams
        if not h["memory_size"] or self.updates < h["memory_start"] or not len(self.memory):
            return np.zeros((0, self.memory.shape[1]), "int32")
        size = min(h["memory_batch"], len(self.memory))
        return self.memory[np.sort(self.rng.choice(len(self.memory), size, replace=False))]

    def _remember(self, indices):
        """Adds encoded architectures to the buffer, dropping the oldest beyond memory_size."""
        if self.hparams["memory_size"]:
            self.memory = np.concatenate([self.memory, indices])[-self.hparams["memory_size"] :]

    def reconstruction_loss(self, architectures):
        """The memory buffer's loss on `architectures`: the mean over them of the
        teacher-forced negative log-likelihood, summed over every decision (the first
        included) of -log softmax(logits)[choice], the softmax taken once."""
        return float(np.mean(-self._score(architectures)[1][:, 0]))

    def hidden_states(self, architectures):
        """The LSTM's hidden state after the last decision of each architecture,
        teacher-forced (an array (len(architectures), lstm_units))."""
        if self._models.hidden is None:
            self._models.hidden = _Scorer(self._policy, hidden=True, name="controller_hidden")
        indices = np.array([self.space.encode(a) for a in architectures], dtype="int32")
        return np.asarray(self._models.hidden.predict_on_batch(indices))

    def _skip_rate(self, outputs):
        """Mean probability of a skip bit being on, along the scored architectures."""
        if not len(self._skip_columns):
            return None
        return float(np.mean(outputs[:, self._skip_columns]))

    def probabilities(self, architectures):
        """Each decision's choice probabilities along the given architectures.

        The policy is autoregressive, so a decision's distribution depends on the
        choices before it; this returns the mean over `architectures` (e.g. the
        step's samples) of the conditional distributions.

        Returns:
            A list with one array per decision, of length len(decision.choices).
        """
        return self._mean_probabilities(self._score(architectures)[1])

    def _mean_probabilities(self, outputs):
        mean = outputs[:, 2:].mean(axis=0)
        return [mean[a:b] for a, b in zip(self._offsets[:-1], self._offsets[1:])]

    def entropy(self, architectures):
        """Mean summed entropy of the policy along `architectures`."""
        return float(np.mean(self._score(architectures)[1][:, 1]))

    # ------------------------------------------------------------------ state

    def get_state(self):
        """The JSON-serializable state that is not in the weights."""
        return {"updates": self.updates, "rng": self.rng.bit_generator.state}

    def set_state(self, state):
        self.updates = int(state["updates"])
        self.rng.bit_generator.state = state["rng"]

    def save(self, directory):
        """Writes hyperparameters, weights, optimizer state and sampler state.

        Files: `controller.json`, `controller.weights.npz`, `optimizer.npz`, and
        `memory.npy` (the memory buffer, encoded) when there is one. Each is
        written to a temporary name first and renamed, so a crash leaves the old
        copy intact.
        """
        os.makedirs(directory, exist_ok=True)
        meta = {
            "space": self.space.signature(),
            "seed": self.seed,
            "hparams": self.hparams,
            "state": self.get_state(),
        }
        save_arrays(os.path.join(directory, WEIGHTS_FILE), self._scorer.weights)
        save_arrays(os.path.join(directory, "optimizer.npz"), self._scorer.optimizer.variables)
        if self.hparams["memory_size"]:
            memory = os.path.join(directory, "memory.npy")
            with atomic_write(memory, "wb") as f:
                np.save(f, self.memory)
        write_json(os.path.join(directory, "controller.json"), meta)

    @classmethod
    def load(cls, directory, space, hparams=None):
        """Rebuilds a controller saved by `save` for the same `space`.

        Args:
            directory: the folder `save` wrote.
            space: the StateSpace the controller must be for.
            hparams: if given, the settings the checkpoint must have been made with.

        Raises:
            ControllerError: missing or damaged files, or a checkpoint made for
                another space or other controller sizes.
        """
        path = os.path.join(directory, "controller.json")
        try:
            with open(path) as f:
                meta = json.load(f)
            signature, hparams_saved = meta["space"], dict(meta["hparams"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ControllerError(
                f"cannot read controller checkpoint {path}: {error_line(e, kind=False)}"
            ) from None
        if _json_roundtrip(signature) != _json_roundtrip(space.signature()):
            raise ControllerError(
                f"controller checkpoint {path} was made for another search space: "
                f"{signature} vs {space.signature()}"
            )
        if hparams is not None:
            expected = {**DEFAULTS, **hparams}
            differ = [
                f"{k}={hparams_saved.get(k)!r} (expected {v!r})"
                for k, v in expected.items()
                if hparams_saved.get(k, DEFAULTS[k]) != v
            ]
            if differ:
                raise ControllerError(
                    f"controller checkpoint {path} has other settings: {', '.join(differ)}"
                )
        hparams_saved = {k: v for k, v in hparams_saved.items() if k in DEFAULTS}
        controller = cls(space, seed=meta.get("seed", 0), **hparams_saved)
        try:
            load_arrays(os.path.join(directory, WEIGHTS_FILE), controller._scorer.weights)
            load_arrays(
                os.path.join(directory, "optimizer.npz"), controller._scorer.optimizer.variables
            )
            if controller.hparams["memory_size"]:
                memory = np.load(os.path.join(directory, "memory.npy"), allow_pickle=False)
                if memory.ndim != 2 or memory.shape[1] != controller.memory.shape[1]:
                    raise ValueError(f"memory.npy holds an array of shape {memory.shape}")
                controller.memory = memory.astype("int32")
            controller.set_state(meta["state"])
        except Exception as e:  # pylint: disable=broad-except
            raise ControllerError(
                f"cannot load controller checkpoint from {directory}: {error_line(e, kind=False)}"
            ) from None
        return controller


def _json_roundtrip(value):
    return json.loads(json.dumps(value))
