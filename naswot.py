"""NASWOT: ranking untrained networks by how differently they see one minibatch.

Mellor et al., "Neural Architecture Search without Training" (ICML 2021). Every ReLU unit
of an untrained network splits the inputs into those that switch it on and those that
do not. For a minibatch of B inputs, input i gets the binary code c_i (one bit per
ReLU unit, N_A bits in all), and

    K[i, j] = N_A - Hamming(c_i, c_j) = sum over ReLU layers of c·cᵀ + (1-c)(1-c)ᵀ
    score   = log |det K|

A network whose units tell the inputs apart has a kernel far from singular and a
high score. Scoring takes one forward pass, no training.

Here:
- "every ReLU unit" is every output unit of a `keras.layers.ReLU` layer, of an
  `Activation("relu")` layer, and of any layer built with `activation="relu"` (a
  `Conv2D(..., activation="relu")` counts; its bit is pre-activation > 0, which is
  output > 0);
- the network runs in training mode, as in the reference code (PyTorch modules are
  in training mode when built): batch normalization uses the minibatch's statistics,
  and dropout and noise layers are active;
- the minibatch (default 128 images) is drawn once from the seed; the network is
  initialized from the seed the caller gives (the search uses the seed the child
  would be trained with), so a score is deterministic for a seed on CPU.

A singular kernel (two inputs with the same code) gets `MIN_SCORE`. K is an integer
matrix, so a nonsingular K has |det K| >= 1 and a score >= 0: `MIN_SCORE = -1` ranks
below every network whose score is defined. Scoring architectures of a search
(building each, seeding it, a network without ReLUs or one that fails as one failed
score) is `zero_cost.Scorer`'s, for NASWOT and the zero-cost proxies alike.

Backend-neutral: `keras` and `keras.ops` only.
"""

import keras
import numpy as np
from keras import ops

MIN_SCORE = -1.0
BATCH_SIZE = 128


def relu_layers(model):
    """The layers of `model` whose every output unit is a ReLU, in model order."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.ReLU):
            plain = not layer.negative_slope and not layer.threshold and layer.max_value is None
            if plain:
                found.append(layer)
        elif getattr(layer, "activation", None) is keras.activations.relu:
            found.append(layer)
    return found


def binary_codes(model, x):
    """One (B, n_l) 0/1 float32 tensor per ReLU layer of `model` on the batch `x`."""
    layers = relu_layers(model)
    if not layers:
        return []
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    outputs = probe(x if len(model.inputs) != 1 else [x], training=True)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    batch = ops.shape(x)[0]
    return [ops.cast(ops.reshape(out, (batch, -1)) > 0, "float32") for out in outputs]


def kernel(codes):
    """K = sum over layers of c·cᵀ + (1-c)(1-c)ᵀ = N_A - Hamming distances.

    Computed with one product of the concatenated codes C (B x N_A, row sums r):
    Hamming(i, j) = r_i + r_j - 2 C_i·C_j. Exact in float32 while N_A < 2**24
    (16.7 million units).
    """
    c = ops.concatenate(codes, axis=1) if len(codes) > 1 else codes[0]
    units = ops.shape(c)[1]
    r = ops.sum(c, axis=1, keepdims=True)
    return units - r - ops.transpose(r) + 2.0 * ops.matmul(c, ops.transpose(c))


def score_kernel(k):
    """log |det K|, or MIN_SCORE for a singular K (|det K| < 1 for an integer K)."""
    sign, logdet = ops.slogdet(ops.cast(k, "float64"))
    sign, logdet = float(ops.convert_to_numpy(sign)), float(ops.convert_to_numpy(logdet))
    if sign == 0 or not np.isfinite(logdet) or logdet < 0:
        return MIN_SCORE
    return logdet


def score_model(model, x):
    """The NASWOT score of an (untrained) Keras model on the minibatch `x`."""
    codes = binary_codes(model, x)
    if not codes:
        return MIN_SCORE
    return score_kernel(kernel(codes))
