"""The supernet of the NAS-Bench-201 cell: every op of every edge in one network.

Weight sharing on NAS-Bench-201 (Dong & Yang 2020): `NB201Supernet` holds the
network `templates.build_nb201` builds (stem, three stages of `cells` cells at C, 2C
and 4C channels, the residual reductions between them, the head) with, on each of
the 6 edges of each cell, every distinct op of the space's `op` decision once: the
1x1 and 3x3 ReLU-convolution-BN ops, the 3x3 average pool, the identity, and `none`
(the copies `none#1 ... none#k` of a poisoned op are one op, as in the macro
supernet). Three ways through it:

- `call([images, architectures])`: one path, the architecture's op on each edge
  (`keras.ops.switch`, so only the chosen branch is computed): ENAS and random
  search with weight sharing train and score this way; with the same weights it
  computes exactly what the stand-alone network of the architecture computes
  (`extract`, tests/test_nb201_supernet.py).
- `mixed(images, weights)`: DARTS's mixed op, on each edge the sum of every op's
  output weighted by the edge's row of `weights` (one column per choice).
- `sampled(images, choices, weights)`: GDAS's, one op per edge (the sampled
  choice) times its weight, plus the other weights (zero in value; they carry
  the straight-through gradient to the architecture parameters, as GDAS does).

Batch normalization sits outside the switch, one row of parameters and statistics
per op (`supernet.SwitchBatchNorm`): the branches stay pure functions, as JAX needs.
Its momentum and epsilon are the benchmark's (PyTorch's defaults), and unlike the
search cells of DARTS and GDAS the edges' BN keeps its affine parameters, so that a
path is the benchmark's network.

This module uses `keras` and `keras.ops` only. It knows nothing about searches.
"""

import keras
import numpy as np
from keras import ops

from operations import NB201_BN
from state_space import NB201_EDGES, op_of
import supernet as supernet_lib
import templates

SUPPORTED_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
_CONV = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
_CONV_NAMES = {"nor_conv_1x1": "conv1x1", "nor_conv_3x3": "conv3x3"}


def check_space(space):
    """Raises SupernetError unless `space` is an NB201 cell whose ops the supernet holds."""
    if (
        list(space.states) != ["op"]
        or space.skip_connections
        or len(space.decisions) != len(NB201_EDGES)
    ):
        raise supernet_lib.SupernetError(
            f"the NB201 supernet needs the NB201 cell (one op decision on each of its 6 "
            f"edges); this space decides {list(space.states)} on {len(space.decisions)} layers"
        )
    unknown = sorted({op_of(v) for v in space.states["op"]} - set(SUPPORTED_OPS))
    if unknown:
        raise supernet_lib.SupernetError(
            f"op {unknown[0]!r} has no shared-weight branch in the NB201 supernet; it holds: "
            f"{', '.join(SUPPORTED_OPS)}"
        )


def _norm(branches, name):
    return supernet_lib.SwitchBatchNorm(
        branches, momentum=NB201_BN["momentum"], epsilon=NB201_BN["epsilon"], name=name
    )


class _Edge:
    """The shared weights of one edge: a convolution per conv op, one BN row per op."""

    def __init__(self, prefix, ops_, filters):
        self.prefix = prefix
        self.convs = [
            keras.layers.Conv2D(
                filters, _CONV[op], padding="same", use_bias=False,
                name=f"{prefix}_{_CONV_NAMES[op]}_conv",
            )
            if op in _CONV
            else None
            for op in ops_
        ]
        self.norm = _norm(len(ops_), f"{prefix}_bn")

    def layers(self):
        return [c for c in self.convs if c is not None] + [self.norm]


class _Reduction:
    """NB201's residual block between stages (`templates._nb201_reduction`)."""

    def __init__(self, name, filters):
        self.name = name
        self.conv_a = keras.layers.Conv2D(
            filters, 3, strides=2, padding="valid", use_bias=False, name=f"{name}_a_conv"
        )
        self.norm_a = _norm(1, f"{name}_a_bn")
        self.conv_b = keras.layers.Conv2D(
            filters, 3, padding="same", use_bias=False, name=f"{name}_b_conv"
        )
        self.norm_b = _norm(1, f"{name}_b_bn")
        self.proj = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")

    def layers(self):
        return [self.conv_a, self.norm_a, self.conv_b, self.norm_b, self.proj]


class NB201Supernet(keras.Model):
    """Every cell of a NAS-Bench-201 space in one network.

    Call it with `[images, architectures]`: `architectures` holds choice indices
    (`space.encode`), shape (batch, 6), int32; the first row is the architecture of
    the whole batch (one architecture per minibatch).

    Args:
      space: an NB201 StateSpace (`state_space.nb201_space`, poisoned or not).
      input_shape: the shape of one image.
      num_classes: classes of the classifier.
      channels: channels of the first stage (the benchmark's: 16).
      cells: cells per stage (the benchmark's: 5).
      bn: `moving` or `batch` statistics when scoring (as `supernet.Supernet`).
      l2: weight of the L2 penalty on every kernel, added to the training loss.
      seed: seeds the initial weights.

    Raises:
      supernet.SupernetError: a space it cannot hold; ValueError: a bad `bn`.
    """

    def __init__(
        self, space, input_shape, num_classes, channels=16, cells=5, bn="batch", l2=0.0, seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_space(space)
        if bn not in supernet_lib.BN_MODES:
            raise ValueError(f"bn must be one of {list(supernet_lib.BN_MODES)}, got {bn!r}")
        self.space = space
        self.image_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
        self.channels = int(channels)
        self.cells_per_stage = int(cells)
        self.bn = bn
        self.l2 = float(l2)
        self.ops, self.branch_of_choice = supernet_lib.op_branches(space.states["op"])
        # Choice -> op: `mixed` adds the weights of an op's copies onto it.
        self.merge = np.zeros((len(self.branch_of_choice), len(self.ops)))
        self.merge[np.arange(len(self.branch_of_choice)), self.branch_of_choice] = 1.0
        self.is_conv = np.array([op in _CONV for op in self.ops])
        keras.utils.set_random_seed(seed)  # Initializers draw their seeds when made.
        c = self.channels
        self.stem = keras.layers.Conv2D(c, 3, padding="same", use_bias=False, name="stem_conv")
        self.stem_norm = _norm(1, "stem_bn")
        self.reductions = [_Reduction(f"reduce{s}", c * 2**s) for s in (1, 2)]
        self.edges = []  # Per cell: its 6 edges.
        for index in range(3 * self.cells_per_stage):
            filters = c * 2 ** (index // self.cells_per_stage)
            self.edges.append(
                [_Edge(f"cell{index}_e{i}{j}", self.ops, filters) for i, j in NB201_EDGES]
            )
        self.head_norm = _norm(1, "head_bn")
        self.classifier = keras.layers.Dense(num_classes, activation="softmax", name="classifier")
        # What Keras tracks (weights, saving): the plain objects' layers.
        self.shared_layers = [self.stem, self.stem_norm, self.head_norm]
        self.shared_layers += [layer for r in self.reductions for layer in r.layers()]
        self.shared_layers += [layer for cell in self.edges for e in cell for layer in e.layers()]

    def build(self, input_shape=None):
        # Every layer before any trace: the branches must exist whatever the first path.
        h, w = self.image_shape[:2]
        self.stem.build((None, h, w, self.image_shape[-1]))
        self.stem_norm.build((None, h, w, self.channels))
        for index, cell in enumerate(self.edges):
            stage = index // self.cells_per_stage
            filters = self.channels * 2**stage
            size = (None,) + self._stage_size(stage) + (filters,)
            for edge in cell:
                for conv in edge.convs:
                    if conv is not None:
                        conv.build(size)
                edge.norm.build(size)
        for s, r in zip((1, 2), self.reductions):
            before = (None,) + self._stage_size(s - 1) + (self.channels * 2 ** (s - 1),)
            after = (None,) + self._stage_size(s) + (self.channels * 2**s,)
            r.conv_a.build(before[:1] + (before[1] + 2, before[2] + 2) + before[3:])
            r.norm_a.build(after)
            r.conv_b.build(after)
            r.norm_b.build(after)
            r.proj.build(after[:3] + before[3:])
        self.head_norm.build((None,) + self._stage_size(2) + (4 * self.channels,))
        self.classifier.build((None, 4 * self.channels))
        self.built = True

    def _stage_size(self, stage):
        """(height, width) of a stage's cells (each reduction halves, rounding up)."""
        h, w = self.image_shape[:2]
        for _ in range(stage):
            h, w = -(-h // 2), -(-w // 2)
        return (h, w)

    # ------------------------------------------------------------------ forward passes

    def call(self, inputs, training=False, update_statistics=None):
        """Class probabilities of `images` on the path of the architecture in
        `inputs[1][0]`. `update_statistics` (default: `training`) lets a training-mode
        pass leave the moving statistics alone."""
        images, architectures = inputs
        choices = ops.cast(architectures[0], "int32")
        branch_of = ops.convert_to_tensor(self.branch_of_choice, "int32")

        def edge(cell, e, x, norm):
            return self._one_path(cell[e], ops.take(branch_of, choices[e]), x, norm)

        return self._forward(images, edge, training, update_statistics)

    def mixed(self, images, weights, training=False, update_statistics=None):
        """DARTS's forward pass: on edge e, the sum over choices k of `weights[e, k]`
        times the choice's op (copies of an op add their weights onto it)."""
        dtype = self.compute_dtype
        per_op = ops.matmul(ops.cast(weights, dtype), ops.convert_to_tensor(self.merge, dtype))

        def edge(cell, e, x, norm):
            total = None
            for b, op in enumerate(self.ops):
                if op == "none":  # Zero whatever its weight: nothing to compute.
                    continue
                term = per_op[e, b] * self._one_op(cell[e], b, x, norm)
                total = term if total is None else total + term
            return ops.zeros_like(x) if total is None else total

        return self._forward(images, edge, training, update_statistics)

    def sampled(self, images, choices, weights, training=False, update_statistics=None):
        """GDAS's forward pass: on edge e only the op of `choices[e]` is computed, times
        `weights[e, choices[e]]`, plus the sum of the edge's other weights (zero in
        value with GDAS's straight-through weights, which carry their gradient)."""
        choices = ops.cast(choices, "int32")
        weights = ops.cast(weights, self.compute_dtype)
        branch_of = ops.convert_to_tensor(self.branch_of_choice, "int32")
        width = len(self.branch_of_choice)

        def edge(cell, e, x, norm):
            chosen = ops.one_hot(choices[e], width)
            own = ops.sum(weights[e] * chosen)
            rest = ops.sum(weights[e]) - own
            return self._one_path(cell[e], ops.take(branch_of, choices[e]), x, norm) * own + rest

        return self._forward(images, edge, training, update_statistics)

    def _forward(self, images, edge, training, update_statistics):
        if update_statistics is None:
            update_statistics = training
        batch_stats = self.bn == "batch"

        def norm(layer, x, index):
            if isinstance(index, int):  # Keras takes tensors only as positional arguments.
                index = ops.convert_to_tensor(index, "int32")
            return layer(
                x, index, training=training, update=update_statistics, batch_statistics=batch_stats
            )

        x = norm(self.stem_norm, self.stem(images), 0)
        for index, cell in enumerate(self.edges):
            stage = index // self.cells_per_stage
            if stage and index % self.cells_per_stage == 0:
                x = self._reduction(self.reductions[stage - 1], x, norm)
            nodes = [x]
            e = 0
            for j in range(1, 4):
                total = None
                for i in range(j):
                    term = edge(cell, e, nodes[i], norm)
                    total = term if total is None else total + term
                    e += 1
                nodes.append(total)
            x = nodes[3]
        x = ops.relu(norm(self.head_norm, x, 0))
        x = ops.mean(x, axis=[1, 2])
        return self.classifier(x)

    def _reduction(self, r, x, norm):
        y = r.conv_a(ops.pad(ops.relu(x), [[0, 0], [1, 1], [1, 1], [0, 0]]))
        y = norm(r.norm_a, y, 0)
        y = norm(r.norm_b, r.conv_b(ops.relu(y)), 0)
        shortcut = ops.average_pool(x, 2, strides=2, padding="same")
        return r.proj(shortcut) + y

    def _one_op(self, edge, b, x, norm):
        """Op `b` of `edge` on x (BN included)."""
        op = self.ops[b]
        if op == "none":
            return ops.zeros_like(x)
        if op == "skip_connect":
            return x
        if op == "avg_pool_3x3":
            return ops.average_pool(x, 3, strides=1, padding="same")
        return norm(edge.norm, edge.convs[b](ops.relu(x)), b)

    def _one_path(self, edge, branch, x, norm):
        """The op of `branch` (a tensor) on x: one switch, the BN of the conv ops after it
        (outside the switch, its row chosen by `branch`)."""

        def branch_fn(b):
            op, conv = self.ops[b], edge.convs[b]
            if conv is not None:
                return lambda t: conv(ops.relu(t))
            if op == "none":
                return lambda t: ops.zeros_like(t)
            if op == "avg_pool_3x3":
                return lambda t: ops.average_pool(t, 3, strides=1, padding="same")
            return lambda t: t

        h = ops.switch(branch, [branch_fn(b) for b in range(len(self.ops))], x)
        if not self.is_conv.any():
            return h
        conv = ops.take(ops.convert_to_tensor(self.is_conv), branch)
        return ops.where(conv, norm(edge.norm, h, branch), h)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if self.l2 > 0 and training:
            loss = loss + self.l2 * supernet_lib.kernel_penalty(self)
        return loss

    # ------------------------------------------------------------------ helpers

    def encode(self, architectures):
        """Architectures (values) -> int32 array (n, 6) of choice indices."""
        return np.array([self.space.encode(a) for a in architectures], dtype="int32")

    def seed_generators(self):
        """No op of the NB201 cell draws random numbers."""
        return []

    def count_child_params(self, architecture):
        """The parameter count of `extract(architecture)`, without building it (moving
        statistics included, as `keras.Model.count_params` counts them)."""
        if not self.built:
            self.build()
        total = self.stem.count_params() + 4 * self.channels + self.classifier.count_params()
        total += 4 * 4 * self.channels  # The head's BN.
        for s, r in zip((1, 2), self.reductions):
            filters = self.channels * 2**s
            total += r.conv_a.count_params() + r.conv_b.count_params() + r.proj.count_params()
            total += 2 * 4 * filters
        for cell in self.edges:
            for e, value in enumerate(architecture):
                b = self.ops.index(op_of(value))
                conv = cell[e].convs[b]
                if conv is not None:
                    total += conv.count_params() + 4 * conv.filters
        return int(total)

    def extract(self, architecture):
        """The stand-alone network of `architecture` (`templates.build_nb201`) with the
        shared weights and the moving statistics of its path copied in.

        Returns:
          An uncompiled `keras.Model`.
        """
        if not self.built:
            self.build()
        child = templates.build_nb201(
            self.space, tuple(architecture), self.image_shape, self.num_classes,
            channels=self.channels, cells=self.cells_per_stage,
        )
        child.get_layer("stem_conv").set_weights(self.stem.get_weights())
        child.get_layer("stem_bn").set_weights(self.stem_norm.row(0))
        for r in self.reductions:
            for layer in (r.conv_a, r.conv_b, r.proj):
                child.get_layer(layer.name).set_weights(layer.get_weights())
            for norm in (r.norm_a, r.norm_b):
                child.get_layer(norm.name).set_weights(norm.row(0))
        for cell in self.edges:
            for e, value in enumerate(architecture):
                b = self.ops.index(op_of(value))
                edge = cell[e]
                if edge.convs[b] is not None:
                    name = f"{edge.prefix}_{_CONV_NAMES[self.ops[b]]}"
                    child.get_layer(f"{name}_conv").set_weights(edge.convs[b].get_weights())
                    child.get_layer(f"{name}_bn").set_weights(edge.norm.row(b))
        child.get_layer("head_bn").set_weights(self.head_norm.row(0))
        child.get_layer("classifier").set_weights(self.classifier.get_weights())
        return child
