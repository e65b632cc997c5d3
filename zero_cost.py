"""Zero-cost proxies: scores of an untrained network from one batch and one backward pass.

Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS" (ICLR 2021),
defined as in their released code (SamsungLabs/zero-cost-nas), over the weights of the
convolution and dense layers (their kernels; biases and BN are not counted):

- `grad_norm`: the sum over those layers of ||dL/dW||_2, L the cross-entropy of one
  batch of labelled images (64 in the paper), the network in training mode.
- `snip`: the sum over their weights of |W * dL/dW| (Lee et al., 2019), same batch.
- `synflow`: data-free (Tanaka et al., 2020). A copy of the network without batch
  normalization, in float64, every parameter replaced by its absolute value and the
  classifier's softmax dropped (the paper's networks end in logits), is run on one
  all-ones input; R is the sum of its outputs; score = sum over the kernels of
  |W * dR/dW|.
- `params` and `flops`: the naive baselines every proxy is compared with (ZiCo, ICLR
  2023: no proxy beat the parameter count consistently). FLOPs here are the
  multiply-accumulates of one image through the convolution and dense layers.

Gradients need the backend's autodiff (`gradients`, the one backend-specific piece:
TensorFlow's GradientTape, PyTorch's autograd, JAX's grad through
`stateless_call`); everything else is `keras` and `keras.ops`. JAX computes in float32
unless `jax_enable_x64` is on, synflow's copy included (tests/test_backends.py: the
three backends agree within 1e-7 on a small network).

In a search (`Scorer`), every score of config.SCORES, NASWOT's included, is a
fitness: NASWOT's log |det K| as it is, a proxy's value v as log(1 + v) (the same
ranking; values that span tens of orders of magnitude become rewards a controller
can subtract a baseline from). A network that cannot be built or run, one without
what the score needs (no ReLU for NASWOT, no kernel for a gradient proxy) and a
degenerate value (not finite) are one failed score, `MIN_SCORE`, with the reason;
every defined score is >= 0.
"""

import dataclasses
import time
import traceback

import keras
import numpy as np
from keras import ops

import naswot
from config import PROXIES, SCORES
from run_log import error_line

MIN_SCORE = naswot.MIN_SCORE  # -1: below every defined score (each is >= 0).
GRADIENT_PROXIES = ("grad_norm", "snip", "synflow")
NEEDS_LABELS = ("grad_norm", "snip")
BATCH_SIZE = 64  # Images in the batch of grad_norm and snip (the paper's).
_KERNELS = ("kernel", "depthwise_kernel", "pointwise_kernel")
_WEIGHTED = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv2DTranspose,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.Dense,
)


class ProxyError(ValueError):
    """A network that lacks what a proxy needs; the message says what."""


def kernels(model):
    """[(layer, [its kernel variables])] of the convolution and dense layers of `model`."""
    found = []
    for layer in model.layers:
        if isinstance(layer, _WEIGHTED):
            weights = [v for v in layer.trainable_weights if v.name in _KERNELS]
            if weights:
                found.append((layer, weights))
    if not found:
        raise ProxyError(
            f"network {model.name!r} has no trainable convolution or dense kernel: "
            f"the gradient proxies ({', '.join(GRADIENT_PROXIES)}) score those"
        )
    return found


def gradients(model, loss_of, inputs, variables):
    """dL/dv (NumPy arrays, in the order of `variables`; zeros for a variable the loss
    does not reach), L = loss_of(model(inputs, training=True))."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        with tf.GradientTape() as tape:
            loss = loss_of(model(inputs, training=True))
        grads = tape.gradient(loss, [v.value for v in variables])
    elif backend == "torch":
        import torch  # pylint: disable=import-outside-toplevel

        loss = loss_of(model(inputs, training=True))
        grads = torch.autograd.grad(loss, [v.value for v in variables], allow_unused=True)
    elif backend == "jax":
        import jax  # pylint: disable=import-outside-toplevel

        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]
        wanted = {id(v): i for i, v in enumerate(model.trainable_variables)}

        def loss_fn(values):
            outputs, _ = model.stateless_call(values, frozen, inputs, training=True)
            return loss_of(outputs)

        every = jax.grad(loss_fn)(trainable)
        grads = [every[wanted[id(v)]] for v in variables]
    else:
        raise ProxyError(f"the gradient proxies need the tensorflow, torch or jax backend, not {backend}")
    return [
        np.zeros(v.shape, dtype=np.float64) if g is None else np.asarray(ops.convert_to_numpy(g), np.float64)
        for v, g in zip(variables, grads)
    ]


def _labelled_gradients(model, x, y):
    layers = kernels(model)
    variables = [v for _, vs in layers for v in vs]
    labels = ops.convert_to_tensor(y, "int32")

    def loss_of(outputs):  # The mean cross-entropy of the softmax outputs.
        return ops.mean(keras.losses.sparse_categorical_crossentropy(labels, outputs))

    grads = gradients(model, loss_of, ops.convert_to_tensor(x), variables)
    it = iter(grads)
    return [(layer, [(np.asarray(ops.convert_to_numpy(v.value), np.float64), next(it)) for v in vs])
            for layer, vs in layers]


def grad_norm(model, x, y):
    """Sum over the convolution and dense layers of the L2 norm of dL/dW."""
    return float(sum(
        np.sqrt(sum(float(np.sum(g * g)) for _, g in pairs))
        for _, pairs in _labelled_gradients(model, x, y)
    ))


def snip(model, x, y):
    """Sum over the convolution and dense kernels of |W * dL/dW|."""
    return float(sum(
        float(np.sum(np.abs(w * g))) for _, pairs in _labelled_gradients(model, x, y) for w, g in pairs
    ))


def _identity(name, dtype):
    return keras.layers.Lambda(lambda t: t, name=name, dtype=dtype)


def linear_copy(model, dtype="float64"):
    """The copy synflow scores: no batch normalization (an identity in its place), in
    `dtype`, every weight replaced by its absolute value, no softmax at the end."""

    def clone(layer):
        if isinstance(layer, keras.layers.BatchNormalization):
            return _identity(layer.name, dtype)  # Called as BN was: with its training and mask.
        if isinstance(layer, keras.layers.Softmax):
            return _identity(layer.name, dtype)
        config = dict(layer.get_config(), dtype=dtype)
        if config.get("activation") == "softmax":  # A Dense or an Activation layer.
            config["activation"] = "linear"
        return layer.__class__.from_config(config)

    try:
        copy = keras.models.clone_model(model, clone_function=clone)
    except Exception as e:  # pylint: disable=broad-except
        raise ProxyError(
            f"synflow needs a copy of the network without batch normalization in {dtype}, "
            f"which could not be made: {error_line(e)}"
        ) from None
    for layer in copy.layers:
        if layer.weights:
            source = model.get_layer(layer.name)
            layer.set_weights([np.abs(np.asarray(w, np.float64)).astype(dtype) for w in source.get_weights()])
    return copy


def synflow(model):
    """Sum over the convolution and dense kernels of |W * dR/dW| on `linear_copy`, R
    the sum of its outputs on one all-ones input (no data)."""
    copy = linear_copy(model)
    ones = ops.ones((1, *model.inputs[0].shape[1:]), dtype="float64")
    layers = kernels(copy)
    variables = [v for _, vs in layers for v in vs]
    grads = gradients(copy, ops.sum, ones, variables)
    total = sum(float(np.sum(np.abs(np.asarray(ops.convert_to_numpy(v.value)) * g)))
                for v, g in zip(variables, grads))
    if not np.isfinite(total):
        raise ProxyError("synflow overflowed float64 on this network")
    return total


def flops(model):
    """Multiply-accumulates per image of the convolution and dense layers of `model`."""
    total = 0
    for layer in model.layers:
        out = layer.output.shape
        spatial = int(np.prod(out[1:-1])) if len(out) > 2 else 1
        if isinstance(layer, keras.layers.SeparableConv2D):
            kh, kw, cin, mult = layer.depthwise_kernel.shape
            total += spatial * kh * kw * cin * mult + spatial * cin * mult * out[-1]
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw, cin, mult = layer.kernel.shape
            total += spatial * kh * kw * cin * mult
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            kh, kw, cout, cin = layer.kernel.shape
            total += int(np.prod(layer.input.shape[1:-1])) * kh * kw * cin * cout
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            total += spatial * int(np.prod(layer.kernel.shape))
    return int(total)


def score(proxy, model, x=None, y=None):
    """The value of `proxy` (one of PROXIES) for the untrained `model`; `x`, `y` one
    labelled batch for grad_norm and snip."""
    if proxy == "params":
        return float(model.count_params())
    if proxy == "flops":
        return float(flops(model))
    if proxy == "synflow":
        return synflow(model)
    if proxy in NEEDS_LABELS:
        if x is None or y is None:
            raise ProxyError(f"{proxy} needs a batch of labelled images")
        return grad_norm(model, x, y) if proxy == "grad_norm" else snip(model, x, y)
    raise ProxyError(f"unknown proxy {proxy!r}: choose one of {', '.join(PROXIES)}")


def fitness(proxy, value):
    """The fitness of a proxy's `value` in a search: log(1 + value) (NASWOT's score
    is a log already).

    Raises:
      ProxyError: a degenerate value (not finite, or negative).
    """
    if proxy == "naswot":
        return float(value)
    if not np.isfinite(value) or value < 0:
        raise ProxyError(f"{proxy} is {value}: a degenerate score for this network")
    return float(np.log1p(value))


@dataclasses.dataclass
class Score:
    """The training-free score of one architecture.

    Attributes:
      score: the fitness (`fitness`), or MIN_SCORE for a failed score.
      relu_units: N_A, the ReLU units of NASWOT's codes (0 for the other scores).
      params: parameters of the network (0 when it could not be built).
      seconds: build + scoring.
      failed: the network could not be built or scored; `reason` says why.
    """

    score: float
    relu_units: int = 0
    params: int = 0
    seconds: float = 0.0
    failed: bool = False
    reason: str = ""
    traceback: str = ""  # The whole traceback of a failed score.


class Scorer:
    """Scores architectures of a search with one of config.SCORES, on one minibatch
    drawn once from the seed (NASWOT, grad_norm and snip read it; synflow, params and
    flops read none).

    Args:
      build: `architecture -> keras.Model` (uncompiled is enough).
      x, y: images and labels to draw the minibatch from (labels: grad_norm, snip).
      proxy: the score's name.
      batch_size: images of the minibatch (NASWOT's B, 128 in the paper); <= len(x).
      seed: picks the minibatch.
      seed_of: `architecture -> int`, the seed a network is initialized with
        (default: `seed` for every architecture).
    """

    def __init__(self, build, x, y=None, proxy="naswot", batch_size=naswot.BATCH_SIZE, seed=0,
                 seed_of=None):
        if proxy not in SCORES:
            raise ValueError(f"unknown score {proxy!r}: choose one of {', '.join(SCORES)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise ValueError(f"the scores' batch size must be an integer >= 2, got {batch_size!r}")
        if len(x) < batch_size:
            raise ValueError(
                f"the scores' batch size {batch_size} is larger than the {len(x)} images to "
                f"draw from"
            )
        if proxy in NEEDS_LABELS and y is None:
            raise ValueError(f"{proxy} needs labels (y)")
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(x), batch_size, replace=False))
        self.batch = np.asarray(x[rows])
        self.labels = None if y is None else np.asarray(y[rows])
        self.build = build
        self.proxy = proxy
        self.seed = seed
        self.seed_of = seed_of or (lambda architecture: seed)

    def score(self, architecture):
        """The `Score` of one architecture; never raises for a network that fails."""
        start = time.perf_counter()
        model = None
        try:
            keras.utils.set_random_seed(self.seed_of(architecture))
            model = self.build(architecture)
            value, units = self._value(model)
            result = Score(value, relu_units=units, params=model.count_params())
        except Exception as e:  # pylint: disable=broad-except
            detail = "" if isinstance(e, ProxyError) else traceback.format_exc()
            result = Score(MIN_SCORE, failed=True, reason=error_line(e), traceback=detail)
        finally:
            del model
            keras.backend.clear_session()
        result.seconds = time.perf_counter() - start
        return result

    def _value(self, model):
        """(fitness, ReLU units) of the built `model`."""
        if self.proxy != "naswot":
            return fitness(self.proxy, score(self.proxy, model, self.batch, self.labels)), 0
        codes = naswot.binary_codes(model, self.batch)
        if not codes:
            raise ProxyError(
                f"network {model.name!r} has no ReLU unit: NASWOT scores the on/off codes of "
                f"ReLUs"
            )
        units = int(sum(ops.shape(c)[1] for c in codes))
        return naswot.score_kernel(naswot.kernel(codes)), units
