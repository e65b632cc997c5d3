"""Operations: what one layer (or one NB201 edge) of a child computes, by name.

`OPS` maps an op's name to `fn(inputs, spec) -> outputs`, which adds its Keras layers
to a functional model; `spec` (a `LayerSpec`) says which layer it builds and how wide.
The templates (templates.py) call `apply_op` per layer; `@register_op("name")` adds an
op of your own. Three families:

- the ENAS macro ops (conv3x3 ... avgpool3x3) and the toy space's `conv`;
- NAS-Bench-201's five (none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3),
  as the benchmark's PyTorch code computes them;
- the degraded ops of search-space poisoning (poisoning.py names and describes them;
  their custom layers `Zero`, `RelativeGaussianNoise` and `StretchedConv2D` are
  registered with Keras, so a saved child loads back in safe mode).

The names are known without Keras too (`state_space.OP_NAMES`, poisoning.POISON_OPS),
so a space and its poisoning are checked before TensorFlow loads. This module uses
`keras` and `keras.ops` only.
"""

import dataclasses

import keras
from keras import ops

import poisoning
import state_space
from state_space import op_of

# Children train for a few epochs only: with Keras's default momentum of 0.99 the
# moving statistics of batch normalization would still sit near their initial values
# at evaluation time (measured: validation accuracy 0.10 against 0.91 with 0.5).
BN_MOMENTUM = 0.5


# ---------------------------------------------------------------------- the registry


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """What an op needs to know about the layer it builds.

    Attributes:
      index: the layer's position in the network.
      filters: output channels wanted.
      kernel_size: kernel size, for ops that take it from a decision.
      strides: 1, or 2 for a layer that halves the resolution.
    """

    index: int
    filters: int
    kernel_size: int = 3
    strides: int = 1

    def name(self, part):
        return f"layer{self.index}_{part}"


OPS = {}


def register_op(name):
    """Decorator: registers `fn(inputs, spec) -> outputs` as the op `name`.

    Raises:
      ValueError: if `name` is already registered.
    """

    def decorate(fn):
        if name in OPS:
            raise ValueError(f"op {name!r} is already registered")
        OPS[name] = fn
        state_space.OP_NAMES.add(name)  # Known to poisoning's checks from now on.
        return fn

    return decorate


def _conv_bn_relu(x, filters, kernel_size, spec, part, separable=False, strides=1):
    conv = keras.layers.SeparableConv2D if separable else keras.layers.Conv2D
    x = conv(
        filters, kernel_size, strides=strides, padding="same", use_bias=False, name=spec.name(part)
    )(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=spec.name(part + "_bn"))(x)
    return keras.layers.ReLU(name=spec.name(part + "_relu"))(x)


@register_op("conv")
def conv(x, spec):
    """A plain convolution with ReLU; its kernel size comes from the `kernel` decision."""
    return keras.layers.Conv2D(
        spec.filters,
        spec.kernel_size,
        strides=spec.strides,
        padding="same",
        activation="relu",
        name=spec.name("conv"),
    )(x)


def _enas_branch(kernel_size, separable):
    def op(x, spec):
        x = _conv_bn_relu(x, spec.filters, 1, spec, "inproj")
        return _conv_bn_relu(x, spec.filters, kernel_size, spec, "conv", separable)

    op.__doc__ = (
        f"ENAS branch: 1x1 conv-BN-ReLU, then {kernel_size}x{kernel_size} "
        f"{'separable ' if separable else ''}conv-BN-ReLU."
    )
    return op


def _enas_pool(pool):
    def op(x, spec):
        x = _conv_bn_relu(x, spec.filters, 1, spec, "inproj")
        return pool(3, strides=1, padding="same", name=spec.name("pool"))(x)

    op.__doc__ = f"ENAS branch: 1x1 conv-BN-ReLU, then a 3x3 {pool.__name__} with stride 1."
    return op


# The ENAS ops' parameters, read by their builders here and by supernet.py's branches.
ENAS_CONV = {
    "conv3x3": (3, False),
    "conv5x5": (5, False),
    "sepconv3x3": (3, True),
    "sepconv5x5": (5, True),
}
ENAS_POOL = {"maxpool3x3": keras.layers.MaxPooling2D, "avgpool3x3": keras.layers.AveragePooling2D}
for _name, (_kernel, _separable) in ENAS_CONV.items():
    register_op(_name)(_enas_branch(_kernel, _separable))
for _name, _pool in ENAS_POOL.items():
    register_op(_name)(_enas_pool(_pool))


# ---------------------------------------------------------------------- NAS-Bench-201's ops

# The benchmark's networks are PyTorch's: batch normalization with PyTorch's defaults
# (momentum 0.1 there is 0.9 here; epsilon 1e-5), explicit padding of 1 on every
# 3x3 convolution (Keras's "same" pads a stride-2 convolution on one side only).
NB201_BN = dict(momentum=0.9, epsilon=1e-5)


@dataclasses.dataclass(frozen=True)
class EdgeSpec(LayerSpec):
    """The LayerSpec of one edge of an NB201 cell: its layers are named after the
    cell and the edge (`cell7_e13_conv`), so 15 cells of 6 edges stay distinct."""

    prefix: str = ""

    def name(self, part):
        return f"{self.prefix}_{part}"


def relu_conv_bn(x, filters, kernel_size, name, strides=1):
    """NB201's ReLUConvBN: ReLU, convolution (padding (k - 1) / 2, no bias), BN."""
    x = keras.layers.ReLU(name=name + "_relu")(x)
    pad = (kernel_size - 1) // 2
    if pad:
        x = keras.layers.ZeroPadding2D(pad, name=name + "_pad")(x)
    x = keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="valid", use_bias=False, name=name + "_conv"
    )(x)
    return keras.layers.BatchNormalization(**NB201_BN, name=name + "_bn")(x)


@register_op("none")
def nb201_none(x, spec):
    """NB201's `none`: the input times zero (a real zero, not a missing edge)."""
    return keras.layers.Rescaling(0.0, name=spec.name("none"))(x)


@register_op("skip_connect")
def nb201_skip(x, spec):
    """NB201's `skip_connect`: the identity."""
    return keras.layers.Identity(name=spec.name("skip"))(x)


@register_op("nor_conv_1x1")
def nb201_conv1x1(x, spec):
    """NB201's `nor_conv_1x1`: ReLU, 1x1 convolution (no bias), BN."""
    return relu_conv_bn(x, spec.filters, 1, spec.name("conv1x1"))


@register_op("nor_conv_3x3")
def nb201_conv3x3(x, spec):
    """NB201's `nor_conv_3x3`: ReLU, 3x3 convolution (padding 1, no bias), BN."""
    return relu_conv_bn(x, spec.filters, 3, spec.name("conv3x3"))


@register_op("avg_pool_3x3")
def nb201_avg_pool(x, spec):
    """NB201's `avg_pool_3x3`: 3x3 average, stride 1, padding 1 not counted in the
    average (Keras's "same" average pooling divides by the pixels inside)."""
    return keras.layers.AveragePooling2D(3, strides=1, padding="same", name=spec.name("pool"))(x)


# ---------------------------------------------------------------------- degraded ops (poisoning)

# Their layers are registered with Keras under the package poisoning.py had them in
# before, so children saved by earlier versions load back.
_PACKAGE = "nas_poisoning"


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


# The degraded ops' parameters, read by their builders here and by supernet.py's branches.
NOISE = {"noise2": 2, "noise10": 10}
DROPOUT = {"dropout0.9": 0.9, "dropout1.0": 1.0}
TCONV = {"tconv3x3": 3, "tconv5x5": 5}

DEGRADED_OPS = {
    "identity": identity,
    "zero": zero,
    **{name: _noise(sigma) for name, sigma in NOISE.items()},
    **{name: _dropout(rate) for name, rate in DROPOUT.items()},
    **{name: _transposed(k) for name, k in TCONV.items()},
    "stretched3x3": stretched3x3,
}
if set(DEGRADED_OPS) != set(poisoning.POISON_OPS):  # One list of names, poisoning.py's.
    raise ImportError(f"degraded ops {sorted(DEGRADED_OPS)} differ from poisoning.POISON_OPS")
for _name, _op in DEGRADED_OPS.items():
    register_op(_name)(_op)


def apply_op(choice, x, spec):
    """The output of the op a choice names (its copy suffix `#i` dropped: `op_of`)."""
    op_name = op_of(choice)
    if op_name not in OPS:
        raise ValueError(f"unknown op {op_name!r}; registered ops: {sorted(OPS)}")
    return OPS[op_name](x, spec)
