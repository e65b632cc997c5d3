"""NASWOT scores: the kernel and score against hand computation, and the Scorer's promises."""

import math

import keras
import numpy as np
import pytest

import manager
import naswot
import state_space
import zero_cost

# Three inputs, e1, e2, e3: each input's pre-activations in a bias-free Dense layer
# are one row of its kernel, so the ReLU codes can be read off the weights.
W = np.array([[1, -1, 1, -1], [1, 1, -1, -1], [-1, -1, -1, 1]], dtype="float32")
V = np.array([[1, -1], [0, 0], [0, 0], [0, 1]], dtype="float32")


def tiny_network():
    """Dense(4, relu) -> Dense(2) -> ReLU layer -> Dense(3, softmax); weights W and V."""
    inputs = keras.Input((3,))
    h = keras.layers.Dense(4, activation="relu", use_bias=False, name="dense_relu")(inputs)
    h = keras.layers.Dense(2, use_bias=False, name="linear")(h)
    h = keras.layers.ReLU(name="relu")(h)
    h = keras.layers.LeakyReLU(negative_slope=0.1, name="leaky")(h)  # Not a ReLU: no bits.
    outputs = keras.layers.Dense(3, activation="softmax", name="classifier")(h)
    model = keras.Model(inputs, outputs)
    model.get_layer("dense_relu").set_weights([W])
    model.get_layer("linear").set_weights([V])
    return model


def test_relu_layers_are_relu_activations_and_relu_layers_only():
    model = tiny_network()
    assert [layer.name for layer in naswot.relu_layers(model)] == ["dense_relu", "relu"]


def test_score_equals_the_hand_computed_kernel():
    # Codes by hand: layer 1 is (W row > 0); layer 2 is (relu(W row) @ V > 0).
    #   e1: 1010 | 10    e2: 1100 | 10    e3: 0001 | 01        N_A = 6
    # Hamming: d(1,2) = 2, d(1,3) = 5, d(2,3) = 5, so K = 6 - d:
    k_by_hand = np.array([[6, 4, 1], [4, 6, 1], [1, 1, 6]], dtype="float64")
    # det K = 6 * 35 - 4 * 23 + 1 * (4 - 6) = 116.
    x = np.eye(3, dtype="float32")
    model = tiny_network()
    codes = naswot.binary_codes(model, x)
    assert [keras.ops.convert_to_numpy(c).tolist() for c in codes] == [
        [[1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 1]],
        [[1, 0], [1, 0], [0, 1]],
    ]
    k = keras.ops.convert_to_numpy(naswot.kernel(codes))
    np.testing.assert_array_equal(k, k_by_hand)
    assert naswot.score_model(model, x) == pytest.approx(math.log(116), abs=1e-9)


def test_kernel_is_units_minus_hamming_for_random_codes():
    rng = np.random.default_rng(0)
    codes = [rng.integers(0, 2, size=(7, n)).astype("float32") for n in (5, 11, 3)]
    c = np.concatenate(codes, axis=1)
    hamming = (c[:, None, :] != c[None, :, :]).sum(-1)
    k = keras.ops.convert_to_numpy(naswot.kernel([keras.ops.convert_to_tensor(x) for x in codes]))
    np.testing.assert_array_equal(k, c.shape[1] - hamming)


def test_singular_kernel_and_no_relu_get_the_minimal_score():
    model = tiny_network()
    # Two identical inputs have identical codes: two equal rows, det K = 0.
    x = np.stack([np.eye(3)[0], np.eye(3)[0], np.eye(3)[2]]).astype("float32")
    assert naswot.score_model(model, x) == naswot.MIN_SCORE
    linear = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    assert naswot.score_model(linear, np.eye(3, dtype="float32")) == naswot.MIN_SCORE
    # Every defined score is >= 0 (integer K), so the minimal score ranks last.
    assert naswot.MIN_SCORE < 0


def child_manager(tiny_dataset, space, template="toy", seed=3, **kwargs):
    return manager.NetworkManager(
        tiny_dataset, space, template=template, proxy_batch=16, seed=seed, **kwargs
    )


def test_scorer_counts_relu_units_inside_conv_layers_and_is_deterministic(tiny_dataset):
    space = state_space.toy_space(2)
    m = child_manager(tiny_dataset, space)
    arch = (3, 16, 1, 32)  # 8x8 -> stride 2 -> 4x4x16, then stride 1 -> 4x4x32.
    first, again = m.scorer.score(arch), m.scorer.score(arch)
    assert not first.failed and first.score > 0
    assert first.relu_units == 4 * 4 * 16 + 4 * 4 * 32  # Conv2D(activation="relu") bits.
    assert first.score == again.score  # Same seed, same minibatch, same initialization.
    assert first.params == m.build(arch).count_params()
    # Another seed draws another minibatch and initialization: another score.
    other = child_manager(tiny_dataset, space, seed=4).scorer.score(arch)
    assert other.score != first.score


def test_scorer_of_a_failing_network_gives_the_minimal_score(tiny_dataset):
    def build(architecture):
        raise ValueError("cannot build this one")

    s = zero_cost.Scorer(build, tiny_dataset.x_train, batch_size=16).score((1,))
    assert s.failed and s.score == naswot.MIN_SCORE
    assert s.reason == "ValueError: cannot build this one"


def test_scorer_rejects_a_batch_larger_than_the_data(tiny_dataset):
    with pytest.raises(ValueError, match="larger than the 96 images"):
        zero_cost.Scorer(lambda a: None, tiny_dataset.x_train, batch_size=128)


def test_naswot_evaluation_scores_children_untrained(tiny_dataset, monkeypatch):
    space = state_space.macro_space(2)
    m = child_manager(tiny_dataset, space, template="macro", evaluation="naswot")
    monkeypatch.setattr(m, "train", lambda *a, **k: pytest.fail("a child was trained"))
    archs = space.sample(np.random.default_rng(0), 3)
    results = m.get_rewards(archs)
    for r in results:
        assert r.accuracy is None and r.score > 0 and r.fitness == r.score
        assert r.reward == pytest.approx(r.score - results[0].score)  # First baseline: first.
    assert m.baseline.value == pytest.approx(
        (0.2 * (0.8**2 * results[0].score + 0.8 * results[1].score + results[2].score))
        / (1 - 0.8**3)
    )
