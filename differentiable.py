"""Differentiable search on a supernet: DARTS (first order) and GDAS.

`--strategy=darts` (Liu et al. 2019) and `--strategy=gdas` (Dong & Yang 2019) with
`--evaluation=shared` on a supernet that computes a mixed op (`mixed`) and a sampled
one (`sampled`): today the NAS-Bench-201 supernet (nb201_supernet.py). Each keeps
architecture parameters `alpha`, one row per edge and one column per choice of the
edge (DARTS: 1e-3 times a standard normal draw), and trains them with the supernet's
weights, alternately, in the loop's supernet passes (`supernet_step`, called by
`weight_sharing.SharedEvaluator.train_epoch` for every training minibatch):

1. `alpha` one Adam step on a minibatch of the validation split (DARTS's settings:
   learning rate 3e-4, betas (0.5, 0.999), weight decay 1e-3 as an L2 term);
2. the weights one step on the training minibatch, with the supernet's own optimizer
   (--shared_lr and the rest), `alpha` held fixed.

DARTS weighs every op of an edge by softmax(alpha) (`NB201Supernet.mixed`); this is
DARTS's first-order approximation (the second order, an unrolled weight step inside
every alpha step, is not built: it needs a Hessian-vector product each step, about
three times a first-order step on this CPU, and NAS-Bench-201 reports the same
collapse for both orders). GDAS samples one op per edge with the Gumbel-max trick,
argmax of (log_softmax(alpha) + Gumbel noise) / tau, and computes only that op,
times a straight-through weight (one in value, the gradient of the tempered softmax);
tau falls linearly from `tau_max` (10) at the start of the search budget to
`tau_min` (0.1) at its end, GDAS's schedule.

Between passes the loop's steps score the derived cell (argmax of alpha per edge, the
first choice on ties): `propose(n)` returns it n times, and learning from the scores
changes nothing (the parameters learn in the passes). Every random draw (the
Gumbel noise) is keyed by (seed, epoch, minibatch), and `alpha` with its Adam state
is in the strategy's state (state.json), so a run resumed from a commit continues as
an uninterrupted one.

The alternation trains two views of one supernet with `train_on_batch` (the weights
with `alpha` fixed, `alpha` with the weights fixed); each view reads the other's
variables as constants, which TensorFlow's traced steps see change and XLA's (JAX)
would not: these strategies need the TensorFlow backend (the default).
"""

import keras
import numpy as np
from keras import ops

import supernet as supernet_lib

DEFAULTS = dict(
    arch_lr=3e-4, arch_beta_1=0.5, arch_beta_2=0.999, arch_weight_decay=1e-3,
    tau_max=10.0, tau_min=0.1,
)


class DifferentiableError(ValueError):
    """A supernet or backend these strategies cannot work with; the message says why."""


def temperature(progress, tau_max=DEFAULTS["tau_max"], tau_min=DEFAULTS["tau_min"]):
    """GDAS's temperature at `progress` (the spent fraction of the budget, 0 to 1):
    linear from tau_max to tau_min."""
    progress = min(max(float(progress), 0.0), 1.0)
    return tau_max - (tau_max - tau_min) * progress


def gumbel(rng, shape):
    """Standard Gumbel noise, -log(Exponential(1)) as GDAS draws it."""
    return -np.log(rng.exponential(size=shape)).astype("float32")


def gdas_weights(alpha, noise, tau):
    """GDAS's (choices, weights) of one sample: per edge the argmax of the tempered
    softmax of (log_softmax(alpha) + noise) / tau, and its straight-through weights,
    one-hot in value with the gradient of that softmax."""
    probs = ops.softmax((ops.log_softmax(alpha, axis=-1) + noise) / tau, axis=-1)
    choices = ops.argmax(probs, axis=-1)
    hard = ops.one_hot(choices, ops.shape(alpha)[-1])
    return choices, hard - ops.stop_gradient(probs) + probs


class _Hidden:
    """Holds an object out of Keras's sight: a view does not train what it holds so."""

    def __init__(self, obj):
        self.obj = obj


class ArchitectureParameters(keras.layers.Layer):
    """`alpha`: one row per edge, one column per choice."""

    def __init__(self, edges, choices, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.edges, self.choices, self.seed = int(edges), int(choices), int(seed)

    def build(self, input_shape=None):
        init = keras.initializers.RandomNormal(stddev=1e-3, seed=self.seed)
        self.alpha = self.add_weight(shape=(self.edges, self.choices), initializer=init, name="alpha")
        self.built = True


class _WeightsView(keras.Model):
    """The supernet trained with `alpha` fixed (the supernet's optimizer)."""

    def __init__(self, strategy, net, **kwargs):
        super().__init__(**kwargs)
        self.strategy, self.net = _Hidden(strategy), net

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs, training=False):
        strategy = self.strategy.obj
        alpha = ops.stop_gradient(ops.convert_to_tensor(strategy.params.alpha))
        return strategy.forward(self.net, alpha, inputs, training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if self.net.l2 > 0 and training:
            loss = loss + self.net.l2 * supernet_lib.kernel_penalty(self.net)
        return loss


class _ArchitectureView(keras.Model):
    """`alpha` trained with the supernet's weights fixed (Adam)."""

    def __init__(self, strategy, net, **kwargs):
        super().__init__(**kwargs)
        self.strategy, self.hidden = _Hidden(strategy), _Hidden(net)
        self.params = strategy.params
        self.weight_decay = float(strategy.settings["arch_weight_decay"])

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs, training=False):
        return self.strategy.obj.forward(self.hidden.obj, self.params.alpha, inputs, training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if self.weight_decay > 0 and training:  # PyTorch Adam's weight decay: an L2 term.
            loss = loss + 0.5 * self.weight_decay * ops.sum(ops.square(self.params.alpha))
        return loss


class DifferentiableStrategy:
    """What DARTS and GDAS share (`Darts`, `Gdas`) on the supernet of `--evaluation=shared`:
    `alpha` and its Adam, the alternation, the derived cell, the state. A subclass says
    how the supernet is run with `alpha` (`forward`) and what a step feeds it (`_inputs`).

    Args:
      space: a space with one `op` decision per edge (the NB201 cell).
      seed: seeds `alpha` and the Gumbel noise.
      progress: `progress()` is the spent fraction of the budget (GDAS's temperature).
      **settings: `DEFAULTS` overrides.
    """

    name = None  # Its --strategy name.

    def __init__(self, space, seed, progress=None, **settings):
        method = self.name
        unknown = set(settings) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; allowed: {sorted(DEFAULTS)}")
        if list(space.states) != ["op"]:
            raise DifferentiableError(
                f"--strategy={method} needs a space with one op decision per edge (the NB201 "
                f"cell); this space decides {list(space.states)}"
            )
        self.space, self.seed = space, int(seed)
        self.settings = {**DEFAULTS, **settings}
        self.progress = progress or (lambda: 0.0)
        self.choices = list(space.states["op"])
        self.params = ArchitectureParameters(len(space.decisions), len(self.choices), seed=self.seed)
        self.params.build()
        s = self.settings
        self.optimizer = keras.optimizers.Adam(
            s["arch_lr"], beta_1=s["arch_beta_1"], beta_2=s["arch_beta_2"]
        )
        self.optimizer.build([self.params.alpha])
        self._views = None  # (weights view, architecture view, their supernet)

    # ------------------------------------------------------------------ the protocol

    def alpha(self):
        return keras.ops.convert_to_numpy(self.params.alpha)

    def probabilities(self):
        a = self.alpha()
        e = np.exp(a - a.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def derived(self):
        """The derived cell: the argmax of alpha on each edge (the first on ties)."""
        return tuple(self.choices[int(i)] for i in np.argmax(self.alpha(), axis=1))

    def propose(self, n):
        return [self.derived()] * n

    def learn(self, architectures, results):
        p = self.probabilities()
        entropy = float(np.mean(-np.sum(p * np.log(np.maximum(p, 1e-12)), axis=1)))
        return {"alpha/entropy": entropy, "alpha/max_probability": float(np.mean(p.max(axis=1)))}

    def forward(self, net, alpha, inputs, training):
        """The supernet's class probabilities with `alpha` (what `_inputs` made)."""
        raise NotImplementedError

    def _inputs(self, images, key, phase):
        """The views' inputs for `images` in minibatch `key`, phase 0 (alpha) or 1 (weights)."""
        raise NotImplementedError

    def _start_pass(self):
        """Called before the first minibatch of every supernet pass."""

    def supernet_step(self, shared, key, images, labels, val_images, val_labels):
        """One alternation on minibatch `key` = (epoch, minibatch) of a supernet pass:
        `alpha` on the validation minibatch, then the weights on the training one.

        Returns:
          dict with the weight step's `loss` and `accuracy`.
        """
        weights_view, arch_view = self._views_for(shared)
        if key[1] == 0:
            self._start_pass()
        arch_view.train_on_batch(self._inputs(val_images, key, 0), val_labels)
        return weights_view.train_on_batch(
            self._inputs(images, key, 1), labels, return_dict=True
        )

    def _views_for(self, shared):
        net = shared.net
        if self._views is not None and self._views[2] is net:
            return self._views[:2]
        if keras.backend.backend() != "tensorflow":
            raise DifferentiableError(
                f"--strategy={self.name} needs the TensorFlow backend (KERAS_BACKEND="
                f"tensorflow), got {keras.backend.backend()}"
            )
        if not hasattr(net, "mixed") or not hasattr(net, "sampled"):
            raise DifferentiableError(
                f"--strategy={self.name} needs a supernet with mixed and sampled ops "
                f"(--space=nb201)"
            )
        weights_view = _WeightsView(self, net, name=f"{self.name}_weights")
        weights_view.compile(
            optimizer=net.optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
            jit_compile=False,
        )
        arch_view = _ArchitectureView(self, net, name=f"{self.name}_alpha")
        arch_view.compile(
            optimizer=self.optimizer, loss="sparse_categorical_crossentropy", jit_compile=False
        )
        self._views = (weights_view, arch_view, net)
        return weights_view, arch_view

    # ------------------------------------------------------------------ state

    def get_state(self):
        """`alpha` and its Adam state, as exact floats (JSON keeps a float's repr)."""
        return {
            "variables": [
                keras.ops.convert_to_numpy(v).tolist()
                for v in [self.params.alpha, *self.optimizer.variables]
            ],
        }

    def set_state(self, state):
        for v, value in zip([self.params.alpha, *self.optimizer.variables], state["variables"]):
            v.assign(np.asarray(value, dtype=v.dtype))

    def save(self, directory):
        """Everything is in `get_state` (alpha changes in supernet passes, between steps)."""

    def load(self, directory):
        """Nothing to load; see `save`."""


class Darts(DifferentiableStrategy):
    """DARTS, first order: every op of an edge weighted by softmax(alpha)."""

    name = "darts"

    def forward(self, net, alpha, inputs, training):
        return net.mixed(inputs[0], ops.softmax(alpha, axis=-1), training=training)

    def _inputs(self, images, key, phase):
        return [images]


class Gdas(DifferentiableStrategy):
    """GDAS: one op per edge, sampled by Gumbel-max at the temperature `tau`, which
    falls over the budget (`temperature`)."""

    name = "gdas"

    def __init__(self, space, seed, progress=None, **settings):
        super().__init__(space, seed, progress, **settings)
        self.tau = self.temperature()

    def temperature(self):
        return temperature(self.progress(), self.settings["tau_max"], self.settings["tau_min"])

    def forward(self, net, alpha, inputs, training):
        choices, weights = gdas_weights(alpha, inputs[1][0], inputs[2][0, 0])
        return net.sampled(inputs[0], choices, weights, training=training)

    def _inputs(self, images, key, phase):
        rng = np.random.default_rng([self.seed, key[0], key[1], phase, 7])
        noise = gumbel(rng, tuple(self.params.alpha.shape))
        n = len(images)
        return [
            images,
            np.repeat(noise[None], n, axis=0),
            np.full((n, 1), self.tau, dtype="float32"),
        ]

    def _start_pass(self):
        self.tau = self.temperature()

    def learn(self, architectures, results):
        return {**super().learn(architectures, results), "alpha/temperature": self.tau}

    def get_state(self):
        return {**super().get_state(), "tau": self.tau}

    def set_state(self, state):
        super().set_state(state)
        self.tau = float(state["tau"])


# The strategies by their --strategy names.
METHODS = {"darts": Darts, "gdas": Gdas}
