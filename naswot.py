"""NASWOT: ranking untrained networks by how differently they see one minibatch.

Mellor et al., "Neural Architecture Search without Training" (ICML 2021; REFERENCES
§5). Every ReLU unit of an untrained network splits the inputs into those that
switch it on and those that do not. For a minibatch of B inputs, input i gets the
binary code c_i (one bit per ReLU unit, N_A bits in all), and

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

A network with no ReLU unit, a singular kernel (two inputs with the same code), or
a network that fails to build or run gets `MIN_SCORE`. K is an integer matrix, so
a nonsingular K has |det K| >= 1 and a score >= 0: `MIN_SCORE = -1` ranks below
every network whose score is defined.

Backend-neutral: `keras` and `keras.ops` only.
"""

import dataclasses
import traceback
import time

import keras
import numpy as np
from keras import ops

from run_log import error_line

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


@dataclasses.dataclass
class Score:
    """The NASWOT score of one architecture.

    Attributes:
      score: log |det K|, or MIN_SCORE (failed, no ReLU, or singular kernel).
      relu_units: N_A, the ReLU units the codes have (0 when it failed).
      params: parameters of the network (0 when it could not be built).
      seconds: build + forward pass + determinant.
      failed: the network could not be built or run; `reason` says why.
    """

    score: float
    relu_units: int = 0
    params: int = 0
    seconds: float = 0.0
    failed: bool = False
    reason: str = ""
    traceback: str = ""  # The whole traceback of a failed score.


class Scorer:
    """Scores architectures on one fixed minibatch.

    Args:
      build: `architecture -> keras.Model` (uncompiled is enough).
      x: images to draw the minibatch from.
      batch_size: B, the minibatch size (128 in the paper); at most len(x).
      seed: picks the minibatch.
      seed_of: `architecture -> int`, the seed a network is initialized with
        (default: `seed` for every architecture).
    """

    def __init__(self, build, x, batch_size=BATCH_SIZE, seed=0, seed_of=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise ValueError(f"naswot batch size must be an integer >= 2, got {batch_size!r}")
        if len(x) < batch_size:
            raise ValueError(
                f"naswot batch size {batch_size} is larger than the {len(x)} images to draw from"
            )
        rng = np.random.default_rng(seed)
        self.batch = np.asarray(x[np.sort(rng.choice(len(x), batch_size, replace=False))])
        self.build = build
        self.seed = seed
        self.seed_of = seed_of or (lambda architecture: seed)

    def score(self, architecture):
        """The `Score` of one architecture; never raises for a network that fails."""
        start = time.perf_counter()
        model = None
        try:
            keras.utils.set_random_seed(self.seed_of(architecture))
            model = self.build(architecture)
            codes = binary_codes(model, self.batch)
            units = int(sum(ops.shape(c)[1] for c in codes))
            value = score_kernel(kernel(codes)) if codes else MIN_SCORE
            result = Score(value, relu_units=units, params=model.count_params())
        except Exception as e:  # pylint: disable=broad-except
            result = Score(MIN_SCORE, failed=True, reason=error_line(e), traceback=traceback.format_exc())
        finally:
            del model
            keras.backend.clear_session()
        result.seconds = time.perf_counter() - start
        return result
