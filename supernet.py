"""The supernet of the macro space: one set of weights shared by every architecture.

ENAS weight sharing (Pham et al. 2018, and its released code melodyguan/enas). `Supernet` holds, for
every layer, the weights of every distinct op of the space's `op` decision once
(the copies `op#1 ... op#k` of a poisoned op are one op to the builder, so they
share one set, as in the poisoning papers), a skip mask per earlier layer, and the
stem, reductions and classifier of `templates.build_macro`. The architecture is an
input tensor of choice indices: the network is traced once and serves every
architecture. Each layer picks its op with `keras.ops.switch`, so only the chosen
branch is computed, on TensorFlow (`tf.switch_case`) and on JAX (`lax.switch`).

Two defects of the released ENAS code are avoided and tested
(tests/test_supernet.py): every op index reaches its own branch (the released
macro code's `tf.case` over late-binding lambdas always ran the last one), and the
gradient clipping really clips.

Branches are pure functions: JAX cannot update state inside `lax.switch`. So each
op is split into a first stage (the 1x1 input projection of the ENAS ops) and a
second stage (the k x k convolution, the pool, or the degraded op), and the batch
normalization after each stage sits outside the switch, with one row of
parameters and moving statistics per op (`SwitchBatchNorm`). The random numbers
that noise and dropout ops need are drawn outside the switch too.

Batch normalization (`bn`, train.py's --shared_bn): in training, batch statistics, and the chosen
op's moving statistics are updated. Scoring uses `moving` statistics (the released
ENAS code) or `batch` statistics of the scored minibatch (the PyTorch ports,
which found moving statistics averaged over architectures hurt validation).

`extract(architecture)` returns the stand-alone child `templates.build_macro` builds,
with the shared weights and moving statistics copied in: in inference mode with
moving statistics it computes what the supernet computes for that architecture.

This module uses `keras` and `keras.ops` only. It knows nothing about searches.
"""

import keras
import numpy as np
from keras import ops

import config
import operations
import templates
from state_space import op_of

BN_MODES = config.SHARED_BN  # train.py's --shared_bn
# ENAS trains the shared weights for hundreds of epochs with a new architecture per
# minibatch: its BN decay is 0.9 (ENAS's released code). The children use 0.5 (operations.py).
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-3  # keras.layers.BatchNormalization's, so that extracted children match.

# The ops' parameters: operations.py's tables, the ones the stand-alone children use.
_ENAS_CONV, _ENAS_POOL = operations.ENAS_CONV, operations.ENAS_POOL
_NOISE, _DROPOUT, _TCONV = operations.NOISE, operations.DROPOUT, operations.TCONV
_PLAIN = ("identity", "zero", "stretched3x3")
SUPPORTED_OPS = (
    tuple(_ENAS_CONV) + tuple(_ENAS_POOL) + tuple(_NOISE) + tuple(_DROPOUT) + tuple(_TCONV) + _PLAIN
)


class SupernetError(ValueError):
    """A space the supernet cannot hold; the message says what it can hold."""


def check_space(space):
    """Raises SupernetError unless `space` is a macro space the supernet can hold:
    one `op` decision whose ops all have a shared-weight branch, plus skip bits."""
    if set(space.states) != {"op"} or not space.skip_connections:
        raise SupernetError(
            f"weight sharing needs the macro space (one op decision per layer plus skip "
            f"connections); this space decides {list(space.states)}"
            f"{'' if space.skip_connections else ' without skip connections'}"
        )
    unknown = sorted({op_of(v) for v in space.states["op"]} - set(SUPPORTED_OPS))
    if unknown:
        raise SupernetError(
            f"op {unknown[0]!r} has no shared-weight branch; the supernet holds: "
            f"{', '.join(SUPPORTED_OPS)}"
        )


def op_branches(choices):
    """(the distinct ops of an op decision's choices, in order; the branch index of each
    choice): the copies of a poisoned op (`op#1 ... op#k`) share one branch."""
    ops_ = list(dict.fromkeys(op_of(c) for c in choices))
    return ops_, np.array([ops_.index(op_of(c)) for c in choices])


def kernel_penalty(model):
    """The sum of squares of every kernel of `model` (its L2 penalty before the weight)."""
    kernels = [w for w in model.trainable_weights if len(w.shape) > 1 and "kernel" in w.path]
    return sum(ops.sum(ops.square(w)) for w in kernels)


@keras.saving.register_keras_serializable(package="nas_supernet")
class SwitchBatchNorm(keras.layers.Layer):
    """Batch normalization with one row of parameters and statistics per branch.

    `call(x, index)` normalizes with row `index`: batch statistics in training (and
    the row's moving statistics move towards them when `update` is true), the row's
    moving statistics otherwise unless `batch_statistics` is set. Rows that were not
    chosen are left alone. `affine=False` rows have no gamma/beta (the branches
    that have no batch normalization use `enabled` to skip it).
    """

    def __init__(self, branches, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.branches = int(branches)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        shape = (self.branches, input_shape[-1])
        self.gamma = self.add_weight(shape=shape, initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=shape, initializer="zeros", name="beta")
        self.moving_mean = self.add_weight(
            shape=shape, initializer="zeros", name="moving_mean", trainable=False
        )
        self.moving_variance = self.add_weight(
            shape=shape, initializer="ones", name="moving_variance", trainable=False
        )

    def call(self, x, index, training=False, update=True, batch_statistics=False):
        gamma = ops.take(self.gamma, index, axis=0)
        beta = ops.take(self.beta, index, axis=0)
        if training or batch_statistics:
            mean, variance = ops.moments(x, axes=[0, 1, 2])
            if training and update:
                chosen = ops.expand_dims(ops.one_hot(index, self.branches), -1) > 0
                m = self.momentum
                moving_mean = ops.convert_to_tensor(self.moving_mean)
                moving_variance = ops.convert_to_tensor(self.moving_variance)
                self.moving_mean.assign(
                    ops.where(chosen, moving_mean * m + mean * (1.0 - m), moving_mean)
                )
                self.moving_variance.assign(
                    ops.where(chosen, moving_variance * m + variance * (1.0 - m), moving_variance)
                )
        else:
            mean = ops.take(self.moving_mean, index, axis=0)
            variance = ops.take(self.moving_variance, index, axis=0)
        return ops.batch_normalization(
            x, mean, variance, axis=-1, offset=beta, scale=gamma, epsilon=self.epsilon
        )

    def row(self, index):
        """[gamma, beta, moving_mean, moving_variance] of one branch, as Keras's
        BatchNormalization orders its weights."""
        return [
            keras.ops.convert_to_numpy(v)[index]
            for v in (self.gamma, self.beta, self.moving_mean, self.moving_variance)
        ]

    def get_config(self):
        return {
            **super().get_config(),
            "branches": self.branches,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
        }


class _Layer:
    """The shared weights of one layer of the supernet: a branch per distinct op."""

    def __init__(self, index, ops_, filters):
        self.ops = ops_
        self.first, self.second = [], []  # Per branch: a Keras layer, or None.
        name = f"layer{index}"
        for op in ops_:
            first = second = None
            if op in _ENAS_CONV or op in _ENAS_POOL:
                first = keras.layers.Conv2D(
                    filters, 1, padding="same", use_bias=False, name=f"{name}_{op}_inproj"
                )
            if op in _ENAS_CONV:
                k, separable = _ENAS_CONV[op]
                conv = keras.layers.SeparableConv2D if separable else keras.layers.Conv2D
                second = conv(filters, k, padding="same", use_bias=False, name=f"{name}_{op}_conv")
            elif op in _ENAS_POOL:
                second = _ENAS_POOL[op](3, strides=1, padding="same", name=f"{name}_{op}_pool")
            elif op in _TCONV:
                second = keras.layers.Conv2DTranspose(
                    filters, _TCONV[op], padding="same", name=f"{name}_{op}"
                )
            elif op == "stretched3x3":
                second = operations.StretchedConv2D(filters, name=f"{name}_{op}")
            self.first.append(first)
            self.second.append(second)
        n = len(ops_)
        # Which branches normalize (and ReLU) after each stage.
        self.bn1 = np.array([op in _ENAS_CONV or op in _ENAS_POOL for op in ops_])
        self.bn2 = np.array([op in _ENAS_CONV for op in ops_])
        self.norm1 = SwitchBatchNorm(n, name=f"{name}_inproj_bn")
        self.norm2 = SwitchBatchNorm(n, name=f"{name}_conv_bn")
        self.norm_out = SwitchBatchNorm(1, name=f"{name}_bn")

    def layers(self):
        own = [l for l in self.first + self.second if l is not None]
        return own + [self.norm1, self.norm2, self.norm_out]


class Supernet(keras.Model):
    """Every architecture of a macro space in one network (ENAS weight sharing).

    Call it with `[images, architectures]`: `architectures` holds choice indices
    (`space.encode`), shape (batch, decisions), int32; the first row is the
    architecture of the whole batch (one architecture per minibatch, as in ENAS).

    Args:
      space: a macro StateSpace (`state_space.macro_space`, poisoned or not).
      input_shape: the shape of one image.
      num_classes: classes of the classifier.
      filters: channels of every layer (as `build_macro`'s `filters`).
      dropout: dropout rate before the classifier (as `build_macro`).
      bn: `moving` or `batch` statistics when scoring (see the module docs).
      l2: weight of the L2 penalty on every kernel, added to the training loss
        (ENAS: 2.5e-4). As in ENAS it reaches the branches a minibatch did not run.
      seed: seeds the initial weights and the dropout/noise generator.

    Raises:
      SupernetError: a space it cannot hold; ValueError: a bad `bn`.
    """

    def __init__(
        self,
        space,
        input_shape,
        num_classes,
        filters=24,
        dropout=0.1,
        bn="moving",
        l2=0.0,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_space(space)
        if bn not in BN_MODES:
            raise ValueError(f"bn must be one of {list(BN_MODES)}, got {bn!r}")
        self.space = space
        self.image_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
        self.filters = int(filters)
        self.dropout_rate = float(dropout)
        self.bn = bn
        self.l2 = float(l2)
        self.ops, self.branch_of_choice = op_branches(space.states["op"])
        decisions = space.decisions
        self.op_decision = [
            next(d for d, x in enumerate(decisions) if x.layer == i and x.name == "op")
            for i in range(space.num_layers)
        ]
        self.skip_decision = [
            [
                next(d for d, x in enumerate(decisions) if x.layer == i and x.source == j)
                for j in range(i)
            ]
            for i in range(space.num_layers)
        ]
        distance = space.num_layers // 3
        self.reductions = {distance - 1, 2 * distance - 1} if distance > 0 else set()
        # Initializers draw their seeds when the layers are made: seed them here.
        keras.utils.set_random_seed(seed)
        self.needs_noise = any(op in _NOISE for op in self.ops)
        self.needs_dropout = any(op in _DROPOUT for op in self.ops)
        self.stem = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name="stem")
        self.stem_norm = SwitchBatchNorm(1, name="stem_bn")
        self.cells = [_Layer(i, self.ops, filters) for i in range(space.num_layers)]
        # The cells are plain objects; this list is what Keras tracks (weights, saving).
        self.shared_layers = [layer for cell in self.cells for layer in cell.layers()]
        self.head_dropout = keras.layers.Dropout(dropout, seed=seed, name="dropout")
        self.classifier = keras.layers.Dense(num_classes, activation="softmax", name="classifier")
        self.noise_seed = keras.random.SeedGenerator(seed + 1, name="op_noise_seed")

    def build(self, input_shape=None):
        # Build every layer before any trace: JAX cannot create variables inside
        # `lax.switch`, and the branches must exist whatever the first architecture.
        shape = (None,) + self.image_shape
        self.stem.build(shape)
        inner = (None,) + self._sizes()[0] + (self.filters,)
        self.stem_norm.build(inner)
        for i, cell in enumerate(self.cells):
            size = (None,) + self._sizes()[i] + (self.filters,)
            for layer in cell.first + cell.second:
                if layer is not None:
                    layer.build(size)
            for norm in (cell.norm1, cell.norm2, cell.norm_out):
                norm.build(size)
        self.classifier.build((None, self.filters))
        self.built = True

    def _sizes(self):
        """(height, width) of each layer's input."""
        h, w = self.image_shape[:2]
        sizes = []
        for i in range(self.space.num_layers):
            sizes.append((h, w))
            if i in self.reductions:
                h, w = -(-h // 2), -(-w // 2)
        return sizes

    def call(self, inputs, training=False, update_statistics=None):
        """Class probabilities of `images` under the architecture in `inputs[1][0]`.

        `update_statistics` (default: `training`) lets a training-mode pass leave
        the moving statistics alone (rewards measured in training mode)."""
        images, architectures = inputs
        if update_statistics is None:
            update_statistics = training
        arch = ops.cast(architectures[0], "int32")
        batch_stats = self.bn == "batch"
        branch_of = ops.convert_to_tensor(self.branch_of_choice, "int32")
        zero = ops.convert_to_tensor(0, "int32")

        def norm(layer, x, index):
            return layer(
                x, index, training=training, update=update_statistics, batch_statistics=batch_stats
            )

        x = norm(self.stem_norm, self.stem(images), zero)
        outputs = []
        for i, cell in enumerate(self.cells):
            branch = ops.take(branch_of, arch[self.op_decision[i]])
            y = self._apply(cell, branch, x, training, norm)
            skip = None
            for j, d in enumerate(self.skip_decision[i]):
                source = self._resize(outputs[j], y)
                term = source * ops.cast(arch[d], source.dtype)
                skip = term if skip is None else skip + term
            if skip is not None:
                y = y + skip
            y = norm(cell.norm_out, y, zero)
            outputs.append(y)
            x = y
            if i in self.reductions:
                x = ops.max_pool(x, 2, strides=2, padding="same")
        x = ops.mean(x, axis=[1, 2])
        x = self.head_dropout(x, training=training)
        return self.classifier(x)

    def _apply(self, cell, branch, x, training, norm):
        """The op of `branch` on x: two switches (stage 1, stage 2) with the batch
        normalization of each stage between them, outside the switch."""
        dtype = x.dtype
        flags1 = ops.take(ops.convert_to_tensor(cell.bn1), branch)
        flags2 = ops.take(ops.convert_to_tensor(cell.bn2), branch)

        def first(index):
            layer = cell.first[index]
            return (lambda t: layer(t)) if layer is not None else (lambda t: t)

        h = ops.switch(branch, [first(b) for b in range(len(cell.ops))], x)
        h = ops.where(flags1, ops.relu(norm(cell.norm1, h, branch)), h)
        operands = [h]
        # Random numbers for noise and dropout ops, drawn outside the switch.
        random = training and (self.needs_noise or self.needs_dropout)
        if random:
            if self.needs_noise:
                operands.append(ops.cast(keras.random.normal(ops.shape(h), seed=self.noise_seed), dtype))
            else:
                operands.append(ops.zeros_like(h))
            if self.needs_dropout:
                operands.append(ops.cast(keras.random.uniform(ops.shape(h), seed=self.noise_seed), dtype))
            else:
                operands.append(ops.zeros_like(h))

        def second(index):
            op, layer = cell.ops[index], cell.second[index]
            if layer is not None:
                return lambda t, *rest: layer(t)
            if op == "zero":
                return lambda t, *rest: ops.zeros_like(t)
            if op in _NOISE and random:
                sigma = float(_NOISE[op])
                return lambda t, noise, uniform: t + sigma * t * noise
            if op in _DROPOUT and random:
                rate = _DROPOUT[op]
                if rate >= 1.0:
                    return lambda t, noise, uniform: ops.zeros_like(t)
                return lambda t, noise, uniform: ops.where(
                    uniform >= rate, t / (1.0 - rate), ops.zeros_like(t)
                )
            return lambda t, *rest: t  # identity, and noise/dropout at inference.

        y = ops.switch(branch, [second(b) for b in range(len(cell.ops))], *operands)
        return ops.where(flags2, ops.relu(norm(cell.norm2, y, branch)), y)

    def _resize(self, source, like):
        """An earlier layer's output pooled to `like`'s resolution, as `build_macro`'s
        skip connections do (average pooling by the size ratio)."""
        h, th = source.shape[1], like.shape[1]
        if h == th:
            return source
        factor = -(-h // th)
        return ops.average_pool(source, factor, strides=factor, padding="same")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if self.l2 > 0 and training:
            loss = loss + self.l2 * kernel_penalty(self)
        return loss

    # ------------------------------------------------------------------ helpers

    def encode(self, architectures):
        """Architectures (values) -> int32 array (n, decisions) of choice indices."""
        return np.array([self.space.encode(a) for a in architectures], dtype="int32")

    def seed_generators(self):
        """The random generators of the supernet: op noise/dropout, head dropout."""
        generators = [self.noise_seed]
        if getattr(self.head_dropout, "seed_generator", None) is not None:
            generators.append(self.head_dropout.seed_generator)
        return generators

    def count_child_params(self, architecture):
        """The parameter count of `extract(architecture)`, without building it
        (moving statistics included, as `keras.Model.count_params` counts them)."""
        if not self.built:
            self.build()
        norm = 4 * self.filters
        total = self.stem.count_params() + norm + self.classifier.count_params()
        for i, values in enumerate(self.space.layers(architecture)):
            cell = self.cells[i]
            b = self.ops.index(op_of(values["op"]))
            for layer in (cell.first[b], cell.second[b]):
                total += layer.count_params() if layer is not None else 0
            total += norm * (1 + int(cell.bn1[b]) + int(cell.bn2[b]))
        return int(total)

    def extract(self, architecture):
        """The stand-alone child of `architecture` (`templates.build_macro`), with the
        shared weights and the moving statistics of its ops copied in.

        Returns:
          An uncompiled `keras.Model`.
        """
        if not self.built:
            self.build()
        child = templates.build_macro(
            self.space,
            tuple(architecture),
            self.image_shape,
            self.num_classes,
            filters=self.filters,
            dropout=self.dropout_rate,
        )
        child.get_layer("stem").set_weights(self.stem.get_weights())
        child.get_layer("stem_bn").set_weights(self.stem_norm.row(0))
        for i, values in enumerate(self.space.layers(architecture)):
            cell = self.cells[i]
            op = op_of(values["op"])
            b = self.ops.index(op)
            name = f"layer{i}"
            if op in _ENAS_CONV or op in _ENAS_POOL:
                child.get_layer(f"{name}_inproj").set_weights(cell.first[b].get_weights())
                child.get_layer(f"{name}_inproj_bn").set_weights(cell.norm1.row(b))
            if op in _ENAS_CONV:
                child.get_layer(f"{name}_conv").set_weights(cell.second[b].get_weights())
                child.get_layer(f"{name}_conv_bn").set_weights(cell.norm2.row(b))
            elif op in _TCONV:
                child.get_layer(f"{name}_tconv{_TCONV[op]}").set_weights(cell.second[b].get_weights())
            elif op == "stretched3x3":
                child.get_layer(f"{name}_{op}").set_weights(cell.second[b].get_weights())
            child.get_layer(f"{name}_bn").set_weights(cell.norm_out.row(0))
        child.get_layer("classifier").set_weights(self.classifier.get_weights())
        return child

