"""Templates: the networks built around a space's ops, one per kind of space.

A template is `fn(space, architecture, input_shape, num_classes, **args) ->
keras.Model` (extensions.Builder); `TEMPLATES` names the built-in ones, entries of the
registry `BUILDERS`, where `--template=PATH.py:NAME` finds a user's builder the same
way (the `NetworkManager` takes a name or any such function):

- `toy`: a plain stack of one op per layer (the small Keras implementation's);
- `macro`: the ENAS macro network with skip connections (Pham et al. 2018);
- `nb201`: the NAS-Bench-201 network, one cell on every cell position (Dong & Yang 2020).

Each layer's op comes from operations.py (`apply_op`), so a degraded op of
poisoning builds wherever a clean one does. This module uses `keras` only.
"""

import math

import keras

import extensions
from operations import BN_MOMENTUM, NB201_BN, EdgeSpec, LayerSpec, apply_op, relu_conv_bn

def _match(x, like, name):
    """Resizes `x` to the height, width and channels of `like` (Zoph & Le 2016's compilation rules)."""
    _, h, w, c = x.shape
    _, th, tw, tc = like.shape
    if (h, w) != (th, tw):
        factor = max(math.ceil(h / th), math.ceil(w / tw))
        if factor > 1 and math.ceil(h / factor) == th and math.ceil(w / factor) == tw:
            x = keras.layers.AveragePooling2D(factor, padding="same", name=name + "_pool")(x)
        else:
            x = keras.layers.Resizing(th, tw, name=name + "_resize")(x)
    if c != tc:
        x = keras.layers.Conv2D(tc, 1, use_bias=False, name=name + "_proj")(x)
    return x


def build_toy(space, architecture, input_shape, num_classes, filters=32):
    """A plain stack: one op per layer (default `conv`), strides 2, 1, 2, 1, ...,
    then global average pooling and a softmax classifier (the small Keras implementation).

    Per layer it reads the decisions `op`, `kernel`, `filters` and `stride` when the
    space has them; `filters` is the default width otherwise.
    """
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for i, values in enumerate(space.layers(architecture)):
        spec = LayerSpec(
            i,
            int(values.get("filters", filters)),
            int(values.get("kernel", 3)),
            int(values.get("stride", 2 if i % 2 == 0 else 1)),
        )
        x = apply_op(values.get("op", "conv"), x, spec)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="toy_child")


def build_macro(space, architecture, input_shape, num_classes, filters=24, dropout=0.1):
    """The ENAS macro network (Pham et al. 2018).

    A 3x3 conv-BN stem, then one op per layer whose output, plus the outputs of the
    earlier layers chosen by its skip decisions, is batch-normalized; after layers
    L/3 and 2L/3 the resolution halves. Layer 0 takes the stem. Earlier outputs of
    another resolution or width are pooled (or resized) and projected to match.
    Global average pooling, dropout and a softmax classifier close the network.
    """
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
    layers = space.layers(architecture)
    distance = len(layers) // 3
    reductions = {distance - 1, 2 * distance - 1} if distance > 0 else set()
    outputs = []
    for i, values in enumerate(layers):
        spec = LayerSpec(i, int(values.get("filters", filters)), int(values.get("kernel", 3)))
        y = apply_op(values.get("op", "conv3x3"), x, spec)
        y = _match(y, x, spec.name("out")) if y.shape[1:] != x.shape[1:] else y
        sources = [_match(outputs[j], y, spec.name(f"skip{j}")) for j in values.get("inputs", ())]
        if sources:
            y = keras.layers.Add(name=spec.name("add"))([y] + sources)
        y = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=spec.name("bn"))(y)
        outputs.append(y)
        x = y
        if i in reductions:
            x = keras.layers.MaxPooling2D(2, padding="same", name=spec.name("reduce"))(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    out = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, out, name="macro_child")


# ---------------------------------------------------------------------- NAS-Bench-201


def _nb201_cell(x, ops, filters, prefix):
    """One cell: node j = sum over i < j of op(i->j)(node i); the output is node 3."""
    nodes, edge = [x], 0
    for j in range(1, 4):
        terms = []
        for i in range(j):
            spec = EdgeSpec(edge, filters, prefix=f"{prefix}_e{i}{j}")
            terms.append(apply_op(ops[edge], nodes[i], spec))
            edge += 1
        nodes.append(terms[0] if j == 1 else keras.layers.Add(name=f"{prefix}_node{j}")(terms))
    return nodes[3]


def _nb201_reduction(x, filters, name):
    """NB201's ResNet basic block between stages: ReLU-Conv3x3/2-BN then ReLU-Conv3x3-BN,
    plus a shortcut of 2x2 average pooling (stride 2) and a 1x1 convolution (no bias,
    no BN)."""
    y = relu_conv_bn(x, filters, 3, name + "_a", strides=2)
    y = relu_conv_bn(y, filters, 3, name + "_b")
    # "same" equals PyTorch's pooling on even sizes, and keeps odd ones (7x7 -> 4x4)
    # the size of the strided convolution's output.
    shortcut = keras.layers.AveragePooling2D(2, strides=2, padding="same", name=name + "_pool")(x)
    shortcut = keras.layers.Conv2D(filters, 1, use_bias=False, name=name + "_proj")(shortcut)
    return keras.layers.Add(name=name + "_add")([shortcut, y])


def build_nb201(space, architecture, input_shape, num_classes, channels=16, cells=5):
    """The NAS-Bench-201 network (Dong & Yang 2020) with one cell on every cell position.

    Stem: 3x3 convolution (no bias) and BN. Three stages of `cells` cells with
    `channels`, 2x and 4x channels, a residual reduction block between stages. Head:
    BN, ReLU, global average pooling, a softmax classifier. The benchmark's network
    is channels=16, cells=5 (1,531,546 trainable parameters for the all-3x3 cell at
    32x32x3 with 10 classes); smaller values give CPU-sized versions. The edges'
    ops come from the registry: degraded ops (poisoning.py) build on an edge too.
    """
    ops = [values["op"] for values in space.layers(architecture)]
    if len(ops) != 6:
        raise ValueError(f"an NB201 cell has 6 edges, got an architecture of {len(ops)}")
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.ZeroPadding2D(1, name="stem_pad")(inputs)
    x = keras.layers.Conv2D(channels, 3, use_bias=False, name="stem_conv")(x)
    x = keras.layers.BatchNormalization(**NB201_BN, name="stem_bn")(x)
    index = 0
    for stage in range(3):
        filters = channels * 2**stage
        if stage:
            x = _nb201_reduction(x, filters, f"reduce{stage}")
        for _ in range(cells):
            x = _nb201_cell(x, ops, filters, f"cell{index}")
            index += 1
    x = keras.layers.BatchNormalization(**NB201_BN, name="head_bn")(x)
    x = keras.layers.ReLU(name="head_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, out, name="nb201_child")


TEMPLATES = {"toy": build_toy, "macro": build_macro, "nb201": build_nb201}
# The search settings each built-in template takes: {its argument: the SearchConfig
# field that gives it}. A user's builder takes none (its own defaults hold).
SETTINGS = {
    "toy": {},
    "macro": {"filters": "filters"},
    "nb201": {"channels": "nb201_channels", "cells": "nb201_cells"},
}
BUILDERS = extensions.Registry("network builder", "--template", TEMPLATES)


def template_args(config):
    """The settings a search's template takes from its config (`SETTINGS`)."""
    fields = SETTINGS.get(config.template, {})
    return {argument: getattr(config, field) for argument, field in fields.items()}


def make_builder(name, given=None):
    """(builder, where) of `--template=name`: a built-in template, the builder a
    reference names, or `given` (a builder passed in Python), checked.

    Raises:
      extensions.ExtensionError: a bad reference, or not a builder.
    """
    if given is not None:
        return extensions.check_builder(given, f"the builder {name}"), f"the builder {name}"
    where = f"--template={name}"
    builder = BUILDERS.get(name)
    return (builder if BUILDERS.is_builtin(name) else extensions.check_builder(builder, where)), where


def check_build(builder, space, input_shape, num_classes, settings, where):
    """Builds one architecture of `space` (its first choices) with a user's builder and
    checks what comes back (a model with a softmax over `num_classes`): a broken
    builder is refused before any child trains.

    Raises:
      extensions.ExtensionError: a builder that raises or returns a wrong model.
    """
    architecture = space.decode([0] * len(space.decisions))
    try:
        model = builder(space, architecture, tuple(input_shape), num_classes, **settings)
    except Exception as e:  # pylint: disable=broad-except  (the user's code)
        raise extensions.ExtensionError(
            f"{where} raised {extensions.error_at(e)} building {space.format(architecture)}"
        ) from None
    extensions.check_model(model, num_classes, where)
