"""Tests for manager.py: building children, failed children, rewards, the cache, the
validation split, and memory over many children.

Children train on the `tiny_dataset` fixture (8x8x1 images, 4 classes) for one epoch,
so one child costs about a second, most of it tf.function tracing. The reward tests
replace `NetworkManager.evaluate` with a stub that returns chosen accuracies: they
check the reward arithmetic exactly without training anything.
"""

import dataclasses
import weakref

import keras
import numpy as np
import psutil
import pytest

import manager
import templates
from manager import ChildResult, EwaBaseline, NetworkManager, SearchError
from state_space import MACRO_OPS, StateSpace, macro_space, toy_space

# A toy architecture (kernel, filters per layer) used wherever any one will do.
TOY_ARCH = (3, 32, 1, 16, 3, 64, 1, 32)


def make_manager(dataset, space, **kwargs):
    kwargs.setdefault("template", "toy")
    kwargs.setdefault("epochs", 1)
    kwargs.setdefault("batch_size", 32)
    return NetworkManager(dataset, space, **kwargs)


@pytest.fixture
def fresh_session():
    """For tests that build models outside `evaluate` (which clears the session itself)."""
    yield
    keras.backend.clear_session()


def layers_of(model, cls):
    return [layer for layer in model.layers if type(layer) is cls]


def count_calls(monkeypatch, obj, name):
    """Wraps obj.name (a bound method) so that its calls are counted."""
    calls = []
    original = getattr(obj, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, wrapper)
    return calls


# ---------------------------------------------------------------------- building


def test_build_toy_model(tiny_dataset, fresh_session):
    space = toy_space(4)
    model = make_manager(tiny_dataset, space).build(TOY_ARCH)
    assert model.output_shape == (None, tiny_dataset.num_classes)
    convs = layers_of(model, keras.layers.Conv2D)
    assert [c.name for c in convs] == [f"layer{i}_conv" for i in range(4)]
    # Each layer reads its own kernel and filters decisions; strides go 2, 1, 2, 1.
    assert [c.kernel_size for c in convs] == [(3, 3), (1, 1), (3, 3), (1, 1)]
    assert [c.filters for c in convs] == [32, 16, 64, 32]
    assert [c.strides for c in convs] == [(2, 2), (1, 1), (2, 2), (1, 1)]
    assert not layers_of(model, keras.layers.Add)  # The toy template has no skips.
    assert model.get_layer("classifier").activation is keras.activations.softmax
    # The model is compiled and predicts a distribution per image.
    probs = model.predict(tiny_dataset.x_val[:5], verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_build_macro_model_with_skips(tiny_dataset, fresh_session):
    space = macro_space(3)
    m = make_manager(tiny_dataset, space, template="macro", template_args={"filters": 8})
    # Decisions: layer0 op | layer1 op, skip0 | layer2 op, skip0, skip1.
    arch = ("conv3x3", "maxpool3x3", 1, "sepconv5x5", 1, 1)
    model = m.build(arch)
    assert model.output_shape == (None, tiny_dataset.num_classes)
    assert model.get_layer("stem").filters == 8
    assert model.get_layer("layer0_conv").kernel_size == (3, 3)
    assert isinstance(model.get_layer("layer1_pool"), keras.layers.MaxPooling2D)
    assert isinstance(model.get_layer("layer2_conv"), keras.layers.SeparableConv2D)
    assert model.get_layer("layer2_conv").kernel_size == (5, 5)
    adds = {layer.name: layer for layer in layers_of(model, keras.layers.Add)}
    assert sorted(adds) == ["layer1_add", "layer2_add"]
    assert len(adds["layer1_add"].input) == 2  # Its op plus layer 0.
    assert len(adds["layer2_add"].input) == 3  # Its op plus layers 0 and 1.
    # Three layers: the resolution halves after layers 0 and 1 (8 -> 4 -> 2); the
    # skips from the larger earlier layers are pooled to match.
    assert model.get_layer("layer2_add").output.shape[1:] == (2, 2, 8)
    assert model.get_layer("layer2_skip0_pool").output.shape[1:] == (2, 2, 8)


def test_build_macro_without_skips_chains_layers(tiny_dataset, fresh_session):
    space = macro_space(3)
    m = make_manager(tiny_dataset, space, template="macro", template_args={"filters": 8})
    model = m.build(("conv5x5", "sepconv3x3", 0, "avgpool3x3", 0, 0))
    assert not layers_of(model, keras.layers.Add)
    assert model.output_shape == (None, 4)
    # Layer 0 takes the stem; every later layer takes the previous one (after its
    # reduction).
    assert model.get_layer("layer0_inproj").input is model.get_layer("stem_bn").output
    assert model.get_layer("layer1_inproj").input is model.get_layer("layer0_reduce").output
    assert model.get_layer("layer2_inproj").input is model.get_layer("layer1_reduce").output
    assert isinstance(model.get_layer("layer2_pool"), keras.layers.AveragePooling2D)


@pytest.mark.parametrize("input_shape", [(8, 8, 1), (7, 7, 1), (5, 6, 3)])
def test_build_macro_all_skips_matches_resolutions(input_shape, fresh_session):
    space = macro_space(6)
    ops = iter(MACRO_OPS)
    arch = tuple(next(ops) if d.kind == "categorical" else 1 for d in space.decisions)
    assert space.layers(arch)[5]["inputs"] == (0, 1, 2, 3, 4)
    model = templates.build_macro(space, arch, input_shape, 4, filters=8)
    assert model.output_shape == (None, 4)
    # 15 skip connections: one Add per layer but the first, layer 5 adding six tensors.
    assert len(layers_of(model, keras.layers.Add)) == 5
    assert len(model.get_layer("layer5_add").input) == 6
    # Layers 0-1 keep the input size, 2-3 have it halved, 4-5 halved again (to 2x2 for
    # all three input sizes); skips from the larger layers 0-3 are pooled to match,
    # layer 4 already matches layer 5.
    assert model.get_layer("layer5_add").output.shape[1:] == (2, 2, 8)
    names = {layer.name for layer in model.layers}
    assert {f"layer5_skip{j}_pool" for j in range(4)} <= names
    assert not any(name.startswith("layer5_skip4_") for name in names)
    x = np.random.default_rng(0).uniform(size=(3, *input_shape)).astype("float32")
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (3, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_unknown_template_and_bad_settings(tiny_dataset):
    space = toy_space(2)
    with pytest.raises(ValueError, match="unknown template 'nope'"):
        make_manager(tiny_dataset, space, template="nope")
    with pytest.raises(ValueError, match="epochs"):
        make_manager(tiny_dataset, space, epochs=0)
    with pytest.raises(ValueError, match="clip_rewards"):
        make_manager(tiny_dataset, space, clip_rewards=-1)


def test_max_failures_below_one_is_rejected(tiny_dataset):
    with pytest.raises(ValueError, match="max_failures"):
        make_manager(tiny_dataset, toy_space(2), max_failures=0)


# ---------------------------------------------------------------------- failures


def op_space():
    space = StateSpace(2)
    space.add_state("op", ["conv", "nope"])
    return space


def test_unknown_op_fails_the_child_not_the_search(tiny_dataset):
    m = make_manager(tiny_dataset, op_space(), max_failures=5)
    seen = []
    results = m.get_rewards([("conv", "nope"), ("nope", "conv")], on_result=seen.append)
    assert len(seen) == 2
    for r in results:
        assert r.failed and not r.cached
        assert r.accuracy == 0.0 and r.params == 0
        assert "nope" in r.reason and r.reason.startswith("ValueError")
    assert m.consecutive_failures == 2
    assert m.baseline.value is None  # Failed children do not enter the baseline.
    assert m.cache == {}  # Failures are not cached.


def test_max_failures_in_a_row_raise_search_error(tiny_dataset):
    m = make_manager(tiny_dataset, op_space(), max_failures=3)
    bad, good = ("conv", "nope"), ("conv", "conv")
    # Two failures, a success (resets the count), two failures: no error yet.
    results = m.get_rewards([bad, bad, good, bad, bad])
    assert [r.failed for r in results] == [True, True, False, True, True]
    assert m.consecutive_failures == 2
    # The count carries over steps: the next failure is the third in a row.
    seen = []
    with pytest.raises(SearchError) as info:
        m.get_rewards([bad, good], on_result=seen.append)
    message = str(info.value)
    assert "3 children failed in a row" in message
    assert "nope" in message  # It names the last reason.
    assert len(seen) == 1  # Stopped right after the third failure.


def nan_template(space, architecture, input_shape, num_classes):
    """A model whose loss is NaN from the first batch: inf * image, then a Dense layer
    with weights of both signs gives inf - inf."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Rescaling(float("inf"))(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize(
    "kwargs",
    [{"template": nan_template}, {"learning_rate": 1e30}],
    ids=["inf-template", "huge-learning-rate"],
)
def test_nan_loss_fails_the_child(tiny_dataset, kwargs):
    m = make_manager(tiny_dataset, toy_space(4), **kwargs)
    (result,) = m.get_rewards([TOY_ARCH])
    assert result.failed
    assert result.accuracy == 0.0
    assert "NaN" in result.reason
    assert result.reason.startswith("FloatingPointError")


# ---------------------------------------------------------------------- rewards


def ewa(accuracies, beta):
    """Bias-corrected EWA in closed form: sum (1-b) b^(n-k) a_k / (1 - b^n)."""
    n = len(accuracies)
    weighted = sum((1 - beta) * beta ** (n - k) * a for k, a in enumerate(accuracies, 1))
    return weighted / (1 - beta**n)


def test_ewa_baseline_math():
    b = EwaBaseline(0.8)
    assert b.value is None
    accs = [0.5, 0.7, 0.3, 0.9, 0.65]
    for n, acc in enumerate(accs, 1):
        b.update(acc)
        assert b.value == pytest.approx(ewa(accs[:n], 0.8), abs=1e-12)
    assert EwaBaseline(0.8).value is None
    first = EwaBaseline(0.95)
    first.update(0.42)
    assert first.value == pytest.approx(0.42, abs=1e-12)  # Bias correction.
    # beta = 0: the baseline is the last accuracy.
    zero = EwaBaseline(0.0)
    for acc in accs:
        zero.update(acc)
    assert zero.value == pytest.approx(accs[-1])
    # State round trip.
    copy = EwaBaseline(0.5)
    copy.set_state(b.get_state())
    assert copy.value == b.value and copy.beta == 0.8


@pytest.mark.parametrize("beta", [-0.1, 1.0, 1.5])
def test_acc_beta_out_of_range(tiny_dataset, beta):
    with pytest.raises(ValueError, match="acc_beta"):
        EwaBaseline(beta)
    with pytest.raises(ValueError, match=r"acc_beta must be in \[0, 1\)"):
        make_manager(tiny_dataset, toy_space(2), acc_beta=beta)


def stub_evaluate(m, accuracies):
    """Makes `m.evaluate` answer from a dict architecture -> accuracy (None: failed)."""
    calls = []

    def evaluate(architecture):
        calls.append(architecture)
        acc = accuracies[architecture]
        if acc is None:
            return ChildResult(architecture, 0.0, failed=True, reason="ValueError: stub")
        return ChildResult(architecture, acc, params=10, train_seconds=0.5, seconds=0.6)

    m.evaluate = evaluate
    return calls


def test_rewards_share_the_step_baseline(tiny_dataset):
    m = make_manager(tiny_dataset, toy_space(2), acc_beta=0.8)
    accs = {("a",): 0.5, ("b",): 0.7, ("c",): 0.3, ("d",): 0.9, ("e",): 0.1, ("f",): None}
    stub_evaluate(m, accs)

    seen = []
    step1 = m.get_rewards([("a",), ("b",), ("c",)], on_result=lambda r: seen.append(r.reward))
    # The first child's baseline is its own accuracy, and the whole step shares it.
    assert [r.baseline for r in step1] == [0.5, 0.5, 0.5]
    assert [r.reward for r in step1] == pytest.approx([0.0, 0.2, -0.2])
    assert seen == [r.reward for r in step1]  # Rewards are known when reported.
    assert m.baseline.value == pytest.approx(ewa([0.5, 0.7, 0.3], 0.8))

    before = m.baseline.value
    step2 = m.get_rewards([("d",), ("f",), ("e",)])
    assert [r.baseline for r in step2] == [before] * 3
    assert [r.reward for r in step2] == pytest.approx([0.9 - before, -before, 0.1 - before])
    assert step2[1].failed
    # The failed child is left out of the moving average.
    assert m.baseline.value == pytest.approx(ewa([0.5, 0.7, 0.3, 0.9, 0.1], 0.8))


def test_rewards_do_not_depend_on_order_after_the_first_step(tiny_dataset):
    rewards = []
    for order in ([("b",), ("c",)], [("c",), ("b",)]):
        m = make_manager(tiny_dataset, toy_space(2))
        stub_evaluate(m, {("a",): 0.5, ("b",): 0.7, ("c",): 0.3})
        m.get_rewards([("a",)])
        rewards.append({r.architecture: r.reward for r in m.get_rewards(order)})
    assert rewards[0] == pytest.approx(rewards[1])
    assert rewards[0] == pytest.approx({("b",): 0.2, ("c",): -0.2})


def test_first_step_failed_children_share_the_baseline(tiny_dataset):
    m = make_manager(tiny_dataset, toy_space(2))
    stub_evaluate(m, {("x",): None, ("a",): 0.5, ("y",): None})
    results = m.get_rewards([("x",), ("a",), ("y",)])
    assert results[2].baseline == 0.5  # Holds.
    assert results[0].baseline == results[1].baseline == results[2].baseline
    assert results[0].reward == results[2].reward


def test_clip_rewards(tiny_dataset):
    m = make_manager(tiny_dataset, toy_space(2), clip_rewards=0.1)
    stub_evaluate(m, {("a",): 0.5, ("b",): 0.9, ("c",): 0.1, ("d",): 0.55})
    results = m.get_rewards([("a",), ("b",), ("c",), ("d",)])
    assert [r.reward for r in results] == pytest.approx([0.0, 0.1, -0.1, 0.05])
    assert all(r.baseline == 0.5 for r in results)  # Clipping leaves the baseline alone.
    assert m.baseline.value == pytest.approx(ewa([0.5, 0.9, 0.1, 0.55], 0.8))


# ---------------------------------------------------------------------- cache


def test_cache_answers_a_repeat_without_retraining(tiny_dataset, monkeypatch):
    space = toy_space(2)
    arch = TOY_ARCH[:4]
    m = make_manager(tiny_dataset, space, cache=True)
    trains = count_calls(monkeypatch, m, "train")
    first, second = m.get_rewards([arch, arch])
    assert len(trains) == 1
    assert not first.cached and first.train_seconds > 0 and first.params > 0
    # The very first child: its baseline is its own accuracy, its reward 0.
    assert first.baseline == first.accuracy and first.reward == 0.0
    assert second.cached and not second.failed
    assert second.accuracy == first.accuracy and second.params == first.params
    assert second.train_seconds == 0.0 and second.seconds == 0.0
    assert second.baseline == first.baseline and second.reward == 0.0
    # A later step hits the cache too, and the cached entry itself was not modified.
    (third,) = m.get_rewards([arch])
    assert third.cached and len(trains) == 1
    assert not m.cache[arch].cached

    # Without the cache the repeat is retrained, with the same per-architecture seed,
    # hence the same accuracy.
    m2 = make_manager(tiny_dataset, space, cache=False)
    trains2 = count_calls(monkeypatch, m2, "train")
    a, b = m2.get_rewards([arch, arch])
    assert len(trains2) == 2
    assert not a.cached and not b.cached
    assert a.accuracy == b.accuracy == first.accuracy
    assert m2.cache == {}


def test_child_seed_is_per_architecture(tiny_dataset):
    space = toy_space(4)
    m = make_manager(tiny_dataset, space, seed=1)
    other = (1, 16) * 4
    assert m.child_seed(TOY_ARCH) == make_manager(tiny_dataset, space, seed=1).child_seed(TOY_ARCH)
    assert m.child_seed(TOY_ARCH) != m.child_seed(other)
    assert m.child_seed(TOY_ARCH) != make_manager(tiny_dataset, space, seed=2).child_seed(TOY_ARCH)


# ---------------------------------------------------------------------- validation split


def test_accuracy_is_measured_on_validation_not_test(tiny_dataset, monkeypatch):
    d = tiny_dataset
    seen = []
    original = manager.accuracy_of

    def spy(model, x, y, *args, **kwargs):
        seen.append((x, y))
        return original(model, x, y, *args, **kwargs)

    monkeypatch.setattr(manager, "accuracy_of", spy)

    def wrong(y):
        return ((y + 1) % d.num_classes).astype("int32")

    # Same training split; the validation labels are right and the test labels all
    # wrong, then the other way round. Training is identical (same per-architecture
    # seed), so only the split that is scored can make the difference.
    val_right = dataclasses.replace(d, x_test=d.x_val, y_test=wrong(d.y_val))
    val_wrong = dataclasses.replace(d, y_val=wrong(d.y_val), x_test=d.x_val, y_test=d.y_val)
    arch = (3, 32) * 2
    accuracies = []
    for dataset in (val_right, val_wrong):
        m = make_manager(dataset, toy_space(2), epochs=4, learning_rate=1e-2)
        (result,) = m.get_rewards([arch])
        assert not result.failed, result.reason
        accuracies.append(result.accuracy)
        x, y = seen[-1]
        assert x is dataset.x_val and y is dataset.y_val
    assert len(seen) == 2  # One evaluation per child, nothing else scored.
    assert accuracies[0] >= 0.8  # The quadrant task is easy: 1.0 when measured.
    assert accuracies[1] <= 0.2


# ---------------------------------------------------------------------- memory


def test_memory_does_not_grow_without_bound(tiny_dataset):
    """20 children in a row: no child model outlives its evaluation, and resident
    memory grows only a little between the 5th and the 20th child.

    Measured on this machine (TF 2.21, Keras 3.15, CPU): about +4.2 MB per child,
    linearly (60 children: 611 -> 860 MB), so ~63 MB from child 5 to 20. That growth
    is TensorFlow's: a plain build / fit / clear_session / gc loop without manager.py
    leaks the same ~4 MB per model (its traced tf.function graphs stay alive). The
    bound of 150 MB leaves margin for allocator noise and catches anything that
    leaks about twice as much per child or more; the weak references catch a child
    model kept alive directly, which these tiny models are too small to show in RSS.
    """
    models = []

    def toy_recording_models(*args, **kwargs):
        model = templates.build_toy(*args, **kwargs)
        models.append(weakref.ref(model))
        return model

    space = toy_space(1)  # One layer: the cheapest toy child (about 1 s each).
    m = make_manager(tiny_dataset, space, template=toy_recording_models, cache=False)
    archs = space.sample(np.random.default_rng(0), 20)
    process = psutil.Process()
    rss = []
    for arch in archs:
        result = m.evaluate(arch)
        assert not result.failed, result.reason
        assert models[-1]() is None, "the child model is still alive after evaluate()"
        rss.append(process.memory_info().rss)
    assert len(models) == 20
    growth_mb = (rss[19] - rss[4]) / 2**20
    print(f"RSS growth child 5 -> 20: {growth_mb:.1f} MB")
    assert growth_mb < 150, f"resident memory grew by {growth_mb:.0f} MB over 15 children"
