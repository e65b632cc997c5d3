"""Search-space poisoning: each degraded op does what it claims; poisoned spaces count right."""

import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import frameworks_blocked

import manager
import operations
import poisoning
import state_space
from operations import LayerSpec

ROOT = pathlib.Path(__file__).resolve().parents[1]

RNG = np.random.default_rng(0)
X = RNG.normal(size=(4, 12, 12, 6)).astype("float32") + 0.5  # No exact zeros.


def apply(op_name, x=X, filters=6, training=False):
    """Builds `op_name` on an input like `x` and applies it in the given mode."""
    inputs = keras.Input(x.shape[1:])
    outputs = operations.OPS[op_name](inputs, LayerSpec(0, filters))
    model = keras.Model(inputs, outputs)
    return model, keras.ops.convert_to_numpy(model(x, training=training))


@pytest.fixture(autouse=True)
def _fresh_session():
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()


def test_every_poison_op_is_registered_with_a_docstring():
    assert list(poisoning.POISON_OPS) == [
        "identity",
        "zero",
        "noise2",
        "noise10",
        "dropout0.9",
        "dropout1.0",
        "tconv3x3",
        "tconv5x5",
        "stretched3x3",
    ]
    for name in poisoning.POISON_OPS:
        op = operations.OPS[name]
        assert op is operations.DEGRADED_OPS[name]
        assert op.__doc__ and len(op.__doc__) > 40, name


def test_every_op_name_known_without_keras_is_built_by_the_registry():
    known = state_space.OP_NAMES | set(poisoning.POISON_OPS)
    assert known <= set(operations.OPS)
    assert {"conv", *state_space.MACRO_OPS, *state_space.NB201_OPS} <= state_space.OP_NAMES


def test_an_op_registered_later_can_be_poisoned_beside():
    space = state_space.StateSpace(2)
    space.add_state("op", ["conv3x3", "mine_for_the_test"])
    with pytest.raises(ValueError, match="'mine_for_the_test'] are not registered ops"):
        poisoning.poison(space, "zero")
    try:
        operations.register_op("mine_for_the_test")(operations.OPS["identity"])
        assert poisoning.poison(space, "zero").states["op"] == ("conv3x3", "mine_for_the_test", "zero")
    finally:
        operations.OPS.pop("mine_for_the_test")
        state_space.OP_NAMES.discard("mine_for_the_test")


def test_identity_passes_its_input_through_in_both_modes():
    for training in (True, False):
        model, y = apply("identity", training=training)
        np.testing.assert_array_equal(y, X)
        assert model.count_params() == 0


def test_zero_outputs_zeros_in_both_modes():
    for training in (True, False):
        _, y = apply("zero", training=training)
        assert y.shape == X.shape and not y.any()


def test_dropout_1_zeroes_everything_in_training_and_is_the_identity_at_inference():
    _, train_out = apply("dropout1.0", training=True)
    assert train_out.shape == X.shape and not train_out.any()
    assert np.isfinite(train_out).all()
    _, infer_out = apply("dropout1.0", training=False)
    np.testing.assert_array_equal(infer_out, X)


def test_dropout_0_9_keeps_a_tenth_scaled_up_in_training_only():
    x = np.ones((8, 16, 16, 8), "float32")
    _, y = apply("dropout0.9", x=x, filters=8, training=True)
    kept = y != 0
    assert 0.07 < kept.mean() < 0.13
    np.testing.assert_allclose(y[kept], 10.0, rtol=1e-5)
    _, y = apply("dropout0.9", x=x, filters=8, training=False)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("name, sigma", [("noise2", 2.0), ("noise10", 10.0)])
def test_relative_noise_acts_in_training_only_and_scales_with_the_signal(name, sigma):
    x = np.full((8, 16, 16, 8), 3.0, "float32")
    x[:, :, :, 0] = 0.0  # Zero input, zero noise: the noise is relative.
    _, y = apply(name, x=x, filters=8, training=True)
    np.testing.assert_array_equal(y[..., 0], 0.0)
    relative = (y[..., 1:] - x[..., 1:]) / x[..., 1:]  # = sigma * N(0, 1)
    assert abs(relative.mean()) < 0.1 * sigma
    assert relative.std() == pytest.approx(sigma, rel=0.05)
    _, y = apply(name, x=x, filters=8, training=False)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("name, size", [("tconv3x3", 3), ("tconv5x5", 5)])
def test_transposed_convs_are_linear_layers_without_bn_or_relu(name, size):
    model, y = apply(name, filters=5)
    assert y.shape == (4, 12, 12, 5)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["Conv2DTranspose"]
    assert model.layers[1].kernel.shape == (size, size, 5, 6)
    assert (y < 0).any()  # No ReLU.
    # Linear (affine): f(2x) - f(0) = 2 (f(x) - f(0)).
    f = lambda v: keras.ops.convert_to_numpy(model(v))  # noqa: E731
    zero = np.zeros_like(X)
    np.testing.assert_allclose(f(2 * X) - f(zero), 2 * (f(X) - f(zero)), rtol=1e-4, atol=1e-4)


def test_stretched_conv_is_a_1x1_conv_on_small_maps():
    model, y = apply("stretched3x3", filters=5)
    layer = model.layers[1]
    assert isinstance(layer, operations.StretchedConv2D) and layer.dilation_rate == 50
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    bias = RNG.normal(size=5).astype("float32")
    layer.bias.assign(bias)
    y = keras.ops.convert_to_numpy(model(X))
    # The same weights in Keras's own dilated convolution: the stretched conv is that op.
    reference = keras.layers.Conv2D(5, 3, dilation_rate=50, padding="same")
    reference.build(X.shape)
    reference.set_weights([kernel, bias])
    np.testing.assert_allclose(y, keras.ops.convert_to_numpy(reference(X)), atol=1e-5)
    # ... and, on a 12x12 map, only its centre tap is ever used: a 1x1 convolution.
    one_by_one = np.einsum("bhwc,cf->bhwf", X, kernel[1, 1]) + bias
    np.testing.assert_allclose(y, one_by_one, atol=1e-5)


def test_stretched_conv_on_a_map_larger_than_its_dilation_uses_every_tap():
    layer = operations.StretchedConv2D(2, dilation_rate=3)
    x = RNG.normal(size=(2, 9, 9, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    reference = keras.layers.Conv2D(2, 3, dilation_rate=3, padding="same")
    reference.build(x.shape)
    reference.set_weights([keras.ops.convert_to_numpy(w) for w in (layer.kernel, layer.bias)])
    np.testing.assert_allclose(y, keras.ops.convert_to_numpy(reference(x)), atol=1e-5)
    centre_only = np.einsum("bhwc,cf->bhwf", x, keras.ops.convert_to_numpy(layer.kernel)[1, 1])
    assert not np.allclose(y, centre_only, atol=1e-3)


def test_a_child_with_every_poison_op_trains_saves_and_loads_in_safe_mode(tiny_dataset, tmp_path):
    space = state_space.StateSpace(len(poisoning.POISON_OPS))
    space.add_state("op", list(poisoning.POISON_OPS))
    space.add_skip_connections()
    ops = list(poisoning.POISON_OPS)
    architecture = tuple(ops[d.layer] if d.kind == "categorical" else 1 for d in space.decisions)
    assert [layer["op"] for layer in space.layers(architecture)] == list(poisoning.POISON_OPS)
    net = manager.NetworkManager(
        tiny_dataset, space, template="macro", epochs=1, template_args={"filters": 4}
    )
    model, _ = net.train(architecture)  # Raises if it cannot build or train (a NaN loss too).
    path = tmp_path / "child.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = tiny_dataset.x_val[:8]
    predicted = model.predict(x, verbose=0)
    assert np.isfinite(predicted).all()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), predicted, atol=1e-5)


# ---------------------------------------------------------------------- spaces


def test_poison_adds_k_copies_of_each_op_and_leaves_the_original_alone():
    clean = state_space.macro_space(4)
    before = clean.signature()
    space = poisoning.poison(clean, ["dropout1.0", "stretched3x3"], instances=6)
    assert clean.signature() == before and not clean.poisoned
    ops = space.states["op"]
    assert ops[:6] == state_space.MACRO_OPS and len(ops) == 6 + 2 * 6
    assert ops[6:] == tuple(f"dropout1.0#{i}" for i in range(1, 7)) + tuple(
        f"stretched3x3#{i}" for i in range(1, 7)
    )
    assert space.poisoned == {"op": frozenset(ops[6:])}
    assert space.skip_connections and space.num_layers == 4
    assert space.signature() != clean.signature()  # A checkpoint of one does not fit the other.
    # One copy keeps the plain name; the builder maps copies to their op.
    assert poisoning.poison(clean, "zero").states["op"][6:] == ("zero",)
    assert state_space.op_of("stretched3x3#4") == "stretched3x3" and state_space.op_of("zero") == "zero"


@pytest.mark.parametrize("k", [1, 2, 6, 36])
def test_prior_is_k_over_6_plus_k_and_matches_uniform_sampling(k):
    space = poisoning.poison(state_space.macro_space(6), "identity", instances=k)
    assert poisoning.prior(space) == pytest.approx(k / (6 + k))
    two = poisoning.poison(state_space.macro_space(6), "identity,zero", instances=k)
    assert poisoning.prior(two) == pytest.approx(2 * k / (6 + 2 * k))
    samples = two.sample(np.random.default_rng(k), 3000)
    rate = np.mean([poisoning.poison_rate(two, a) for a in samples])
    assert rate == pytest.approx(2 * k / (6 + 2 * k), abs=0.015)


def test_poisoned_layers_counts_layers_that_chose_a_poisoned_op():
    space = poisoning.poison(state_space.macro_space(3), "noise10", instances=2)
    ops = {d.key: d for d in space.decisions}
    assert list(ops) == [
        "layer0_op",
        "layer1_op",
        "layer1_skip0",
        "layer2_op",
        "layer2_skip0",
        "layer2_skip1",
    ]
    arch = ("noise10#1", "conv3x3", 1, "noise10#2", 0, 1)
    assert poisoning.poisoned_layers(space, arch) == 2
    assert poisoning.poison_rate(space, arch) == pytest.approx(2 / 3)
    assert poisoning.poisoned_layers(space, ("conv3x3", "conv5x5", 1, "avgpool3x3", 0, 0)) == 0
    assert (
        state_space.macro_space(3).poisoned_layers(("conv3x3", "conv5x5", 1, "avgpool3x3", 0, 0))
        == 0
    )
    with pytest.raises(ValueError, match="not a choice"):
        poisoning.poisoned_layers(space, ("nope", "conv5x5", 1, "avgpool3x3", 0, 0))


def test_remove_ops_by_name_or_by_keep_list():
    clean = state_space.macro_space(4)
    fewer = poisoning.remove_ops(clean, "maxpool3x3, avgpool3x3")
    assert fewer.states["op"] == ("conv3x3", "conv5x5", "sepconv3x3", "sepconv5x5")
    kept = poisoning.remove_ops(clean, keep=["conv5x5", "sepconv5x5", "avgpool3x3"])
    assert kept.states["op"] == ("conv5x5", "sepconv5x5", "avgpool3x3")  # The seed study's space.
    assert clean.states["op"] == state_space.MACRO_OPS and kept.skip_connections
    # Removal and injection combine; removing a poisoned op removes all its copies.
    both = poisoning.poison(kept, "zero,identity", instances=2)
    assert poisoning.prior(both) == pytest.approx(4 / 7)
    left = poisoning.remove_ops(both, "zero")
    assert left.states["op"] == ("conv5x5", "sepconv5x5", "avgpool3x3", "identity#1", "identity#2")
    assert left.poisoned == {"op": frozenset({"identity#1", "identity#2"})}


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s: poisoning.poison(s, "nope"), "unknown poison op 'nope'; allowed: identity"),
        (lambda s: poisoning.poison(s, ""), "at least one op"),
        (lambda s: poisoning.poison(s, "zero", instances=0), "instances must be an integer >= 1"),
        (lambda s: poisoning.poison(s, "zero", instances=True), "instances must be an integer"),
        (lambda s: poisoning.poison(s, "zero", instances=1.5), "instances must be an integer"),
        (lambda s: poisoning.poison(s, "zero,zero"), "listed twice"),
        (lambda s: poisoning.poison(s, "zero", state="kernel"), "no 'kernel' decision"),
        (lambda s: poisoning.poison(state_space.toy_space(), "zero"), "no 'op' decision"),
        (lambda s: poisoning.poison(poisoning.poison(s, "zero"), "zero"), "already a choice"),
        (lambda s: poisoning.remove_ops(s), "exactly one of"),
        (lambda s: poisoning.remove_ops(s, "zero", keep="conv3x3"), "exactly one of"),
        (lambda s: poisoning.remove_ops(s, "conv7x7"), "'conv7x7' is not a choice of 'op'"),
        (lambda s: poisoning.remove_ops(s, keep=[]), "keep at least one"),
        (lambda s: poisoning.remove_ops(s, list(state_space.MACRO_OPS)), "keep at least one"),
    ],
)
def test_bad_arguments_raise_value_error_saying_what_is_allowed(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call(state_space.macro_space(3))


def test_a_state_of_non_ops_cannot_be_poisoned():
    space = state_space.StateSpace(2).add_state("op", ["a", "b"])
    with pytest.raises(ValueError, match="does not choose ops"):
        poisoning.poison(space, "zero")


def test_mark_poisoned_checks_its_values():
    space = state_space.macro_space(2)
    with pytest.raises(ValueError, match="unknown state"):
        space.mark_poisoned("kernel", ["conv3x3"])
    with pytest.raises(ValueError, match="not a choice"):
        space.mark_poisoned("op", ["zero"])
    space.mark_poisoned("op", ["maxpool3x3"])
    assert space.poison_prior() == pytest.approx(1 / 6)


def test_poisoning_edits_spaces_where_no_framework_can_be_imported(tmp_path):
    """poisoning.py needs no Keras: a bad poisoning is refused before TensorFlow loads
    (train.py, assess.py). The control line shows the blocked environment blocks."""
    env = frameworks_blocked(tmp_path / "blocked")
    script = (
        "import poisoning, state_space\n"
        "space = poisoning.poison(state_space.macro_space(3), 'zero,stretched3x3', instances=2)\n"
        "space = poisoning.remove_ops(space, 'conv5x5')\n"
        "print(len(space.states['op']), poisoning.prior(space))\n"
    )
    run = lambda code: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    done = run(script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["9", str(4 / 9)]
    control = run("import operations")
    assert control.returncode != 0 and "was imported, but" in control.stderr
