"""Search-space poisoning: degraded operations, and spaces that contain them.

Does a controller learn, or does a strong search space do the work? Two attacks
answer it (REFERENCES §4):

- injection: `poison(space, ops, instances=k)` widens a space's `op` decision with
  degraded ops, each in k copies ("multiple-instance poisoning": with 6 clean ops a
  uniform sampler picks poison with probability k / (6 + k) per layer); a
  controller that learns should pick them far less often than that. An op the space
  already offers can be the poison too (NAS-Bench-201's `none`, the zero op of the
  poisoning papers): it is marked poisoned and copied until it holds k choices in
  all, so k = 1 marks it without widening the space;
- removal: `remove_ops(space, ...)` takes ops out, to see how much the result owes
  to them.

The degraded ops are registered in `manager.OPS` beside the clean ones, under the
names used on the command line and in logs: identity, zero, noise2, noise10,
dropout0.9, dropout1.0, tconv3x3, tconv5x5, stretched3x3. Their custom layers are
registered with Keras, so a saved child loads back in safe mode.

Metrics: `poisoned_layers(space, architecture)`, `poison_rate(space,
architecture)` and `prior(space)`, the rate of a uniform sampler.
"""

import keras
from keras import ops

import manager
import state_space

_PACKAGE = "nas_poisoning"

# ---------------------------------------------------------------------- layers


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Zero(keras.layers.Layer):
    """Outputs zeros of the input's shape: the layer contributes nothing."""

    def call(self, inputs):
        return ops.zeros_like(inputs)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RelativeGaussianNoise(keras.layers.Layer):
    """x + sigma * x * N(0, 1) in training; the identity at inference.

    The noise scales with the signal, so it cannot be trained away by growing the
    weights; a reward measured at inference never sees it.
    """

    def __init__(self, sigma, seed=None, **kwargs):
        super().__init__(**kwargs)
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training or self.sigma == 0:
            return inputs
        noise = keras.random.normal(ops.shape(inputs), seed=self.seed_generator)
        return inputs + self.sigma * inputs * ops.cast(noise, inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma, "seed": self.seed}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class StretchedConv2D(keras.layers.Layer):
    """A 3x3 convolution with a very large dilation (50 by default), "same" padding.

    Its eight outer taps sit `dilation` pixels from the centre; on a map smaller
    than the dilation they only ever see the zero padding, so the layer is a 1x1
    convolution with the centre tap, paying for a 3x3 one. Computed as exactly that
    1x1 convolution when the map is that small (TensorFlow's dilated convolution
    is about 14x slower than a plain one on 28x28 maps), as the dilated
    convolution otherwise.
    """

    def __init__(self, filters, kernel_size=3, dilation_rate=50, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.dilation_rate = int(dilation_rate)

    def build(self, input_shape):
        k = self.kernel_size
        self.kernel = self.add_weight(
            name="kernel",
            shape=(k, k, input_shape[-1], self.filters),
            initializer="glorot_uniform",
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, inputs):
        height, width = inputs.shape[1], inputs.shape[2]
        reach = self.kernel_size // 2 * self.dilation_rate
        if height is not None and width is not None and reach >= max(height, width):
            centre = self.kernel_size // 2
            kernel = self.kernel[centre : centre + 1, centre : centre + 1]
            return ops.conv(inputs, kernel, padding="same") + self.bias
        outputs = ops.conv(inputs, self.kernel, padding="same", dilation_rate=self.dilation_rate)
        return outputs + self.bias

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "dilation_rate": self.dilation_rate,
        }


# ---------------------------------------------------------------------- ops

# Each op takes (x, LayerSpec) and returns the layer's output; the template resizes
# or projects an output whose shape differs from the layer's input.


def identity(x, spec):
    """Passes its input through: no parameters, no learning; the layer is wasted."""
    return keras.layers.Identity(name=spec.name("identity"))(x)


def zero(x, spec):
    """Outputs zeros: the layer cuts its path; only skip connections carry signal on."""
    return Zero(name=spec.name("zero"))(x)


def _noise(sigma):
    def op(x, spec):
        return RelativeGaussianNoise(sigma, name=spec.name(f"noise{sigma}"))(x)

    op.__doc__ = (
        f"x + {sigma}*x*N(0,1) in training, the identity at inference: the child trains "
        f"on a signal drowned in noise and is scored without it."
    )
    return op


def _dropout(rate):
    def op(x, spec):
        return keras.layers.Dropout(rate, name=spec.name(f"dropout{rate}"))(x)

    kept = "no unit survives" if rate >= 1 else f"a fraction {1 - rate:.1f} of the units survives"
    op.__doc__ = (
        f"Dropout with p = {rate}: in training {kept}; at inference it is the identity, "
        f"so the child is scored on a signal it never trained on."
    )
    return op


def _transposed(kernel_size):
    def op(x, spec):
        return keras.layers.Conv2DTranspose(
            spec.filters, kernel_size, padding="same", name=spec.name(f"tconv{kernel_size}")
        )(x)

    op.__doc__ = (
        f"A {kernel_size}x{kernel_size} transposed convolution, stride 1, with no batch "
        f"normalization and no ReLU: a linear layer that unbalances the scale of its sum."
    )
    return op


def stretched3x3(x, spec):
    """A 3x3 convolution with dilation 50 (`StretchedConv2D`): on maps below 50 pixels
    it is a 1x1 convolution that costs a 3x3 one; no batch normalization, no ReLU."""
    return StretchedConv2D(spec.filters, name=spec.name("stretched3x3"))(x)


POISON_OPS = {
    "identity": identity,
    "zero": zero,
    "noise2": _noise(2),
    "noise10": _noise(10),
    "dropout0.9": _dropout(0.9),
    "dropout1.0": _dropout(1.0),
    "tconv3x3": _transposed(3),
    "tconv5x5": _transposed(5),
    "stretched3x3": stretched3x3,
}

for _name, _op in POISON_OPS.items():
    manager.register_op(_name)(_op)


# ---------------------------------------------------------------------- spaces


def _split(ops_or_names):
    if isinstance(ops_or_names, str):
        ops_or_names = ops_or_names.split(",")
    names = [str(n).strip() for n in ops_or_names]
    return [n for n in names if n]


def _op_state(space, state):
    if state not in space.states:
        raise ValueError(
            f"the space has no {state!r} decision to poison (its decisions: "
            f"{list(space.states) or 'none'}); poisoning needs a space of ops, e.g. --space=macro"
        )
    values = space.states[state]
    unknown = [v for v in values if manager.op_of(v) not in manager.OPS]
    if unknown:
        raise ValueError(
            f"state {state!r} does not choose ops: {unknown} are not registered ops "
            f"(registered: {sorted(manager.OPS)})"
        )
    return values


def _rebuilt(space, state, values, poisoned):
    """A new space like `space` with `values` for `state`; the original is untouched."""
    new = space.empty_copy()  # The same kind of space: an NB201 cell stays one.
    for name, choices in space.states.items():
        new.add_state(name, values if name == state else choices)
    if space.skip_connections:
        new.add_skip_connections()
    for name, marked in space.poisoned.items():
        kept = [v for v in marked if v in new.states[name]]
        if kept:
            new.mark_poisoned(name, kept)
    if poisoned:
        new.mark_poisoned(state, poisoned)
    return new


def poison(space, ops, instances=1, state="op"):
    """Returns a copy of `space` whose `state` decision gains each op of `ops`
    `instances` times, the copies marked as poisoned.

    With instances k > 1 the copies are named `op#1` ... `op#k`: distinct choices
    for the controller, the same op for the builder. An op the decision already
    offers (NB201's `none`, say) is marked poisoned and gains the copies `op#2` ...
    `op#k`, so that it holds k choices in all, as an injected op does.

    Args:
      space: a StateSpace with an op decision (e.g. `state_space.macro_space()`).
      ops: op names (a list, or a comma-separated string): degraded ops from
        `POISON_OPS`, or ops the decision already offers.
      instances: k, the choices each op holds (>= 1).
      state: the name of the op decision.

    Raises:
      ValueError: unknown op, k < 1, or a space without that op decision.
    """
    names = _split(ops)
    if not names:
        raise ValueError(f"poison needs at least one op; allowed: {', '.join(POISON_OPS)}")
    values = _op_state(space, state)
    offered = list(dict.fromkeys(manager.op_of(v) for v in values))
    for name in names:
        if name not in POISON_OPS and name not in offered:
            raise ValueError(
                f"unknown poison op {name!r}; allowed: {', '.join(POISON_OPS)} (degraded ops), "
                f"or an op of {state!r} to count as poison: {', '.join(offered)}"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"poison op listed twice in {names}; list each op once")
    if isinstance(instances, bool) or not isinstance(instances, int) or instances < 1:
        raise ValueError(f"poison instances must be an integer >= 1, got {instances!r}")
    sep = manager.INSTANCE_SEPARATOR
    added, poisoned = [], []
    for name in names:
        if name in offered:
            marked = space.poisoned.get(state, ())
            if name not in values or any(manager.op_of(v) == name for v in marked):
                raise ValueError(
                    f"op {name!r} is already a choice of {state!r} with copies or marked as "
                    f"poison; poison an op once"
                )
            copies = [f"{name}{sep}{i}" for i in range(2, instances + 1)]
            added += copies
            poisoned += [name, *copies]
        else:
            copies = [name] if instances == 1 else [f"{name}{sep}{i}" for i in range(1, instances + 1)]
            added += copies
            poisoned += copies
    return _rebuilt(space, state, tuple(values) + tuple(added), poisoned)


def remove_ops(space, ops=None, *, keep=None, state="op"):
    """Returns a copy of `space` without some ops (removal poisoning).

    Give either the ops to remove (`ops`) or the ops to keep (`keep`), as a list or
    a comma-separated string.

    Raises:
      ValueError: both or neither given, an op that is not a choice, removing
        every op, or a space without that op decision.
    """
    if (ops is None) == (keep is None):
        raise ValueError("remove_ops needs exactly one of ops (to remove) or keep")
    values = _op_state(space, state)
    names = _split(ops if keep is None else keep)
    offered = {manager.op_of(v) for v in values}
    for name in names:
        if name not in offered:
            raise ValueError(
                f"op {name!r} is not a choice of {state!r}; its ops: "
                f"{', '.join(dict.fromkeys(manager.op_of(v) for v in values))}"
            )
    if keep is None:
        left = tuple(v for v in values if manager.op_of(v) not in names)
    else:
        left = tuple(v for v in values if manager.op_of(v) in names)
    if not left:
        raise ValueError(f"cannot remove every op of {state!r}; keep at least one")
    return _rebuilt(space, state, left, ())


def poisoned_layers(space, architecture):
    """The number of layers of `architecture` that chose a poisoned op."""
    return space.poisoned_layers(architecture)


def poison_rate(space, architecture):
    """The fraction of poisoned layers of `architecture`."""
    return space.poisoned_layers(architecture) / space.num_layers


def prior(space):
    """The poison rate of a uniform sampler: k / (n + k) for n clean and k poisoned
    choices of one op decision (REFERENCES §4)."""
    return space.poison_prior()
