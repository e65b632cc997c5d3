"""The zero-cost proxies against values computed by hand in NumPy, and their failures."""

import keras
import numpy as np
import pytest

import manager
import state_space
import templates
import zero_cost


def _dense_net(bn=False, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((3,))
    h = keras.layers.Dense(4, activation="relu", bias_initializer="random_normal", name="d1")(inputs)
    if bn:
        h = keras.layers.BatchNormalization(name="bn")(h)
    out = keras.layers.Dense(2, activation="softmax", bias_initializer="random_normal", name="d2")(h)
    return keras.Model(inputs, out)


def _by_hand(model, x, y):
    """dL/dW1, dL/dW2 of the mean cross-entropy, by backpropagation in NumPy."""
    w1, b1 = (np.asarray(w, np.float64) for w in model.get_layer("d1").get_weights())
    w2, b2 = (np.asarray(w, np.float64) for w in model.get_layer("d2").get_weights())
    z1 = x @ w1 + b1
    h = np.maximum(z1, 0)
    z2 = h @ w2 + b2
    p = np.exp(z2 - z2.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    dz2 = (p - np.eye(2)[y]) / len(x)
    dw2 = h.T @ dz2
    dz1 = (dz2 @ w2.T) * (z1 > 0)
    return (w1, x.T @ dz1), (w2, dw2)


@pytest.fixture
def batch():
    rng = np.random.default_rng(1)
    return rng.normal(size=(5, 3)).astype("float32"), np.array([0, 1, 1, 0, 1])


def test_grad_norm_is_the_sum_of_the_layers_gradient_norms(batch):
    x, y = batch
    model = _dense_net()
    (_, g1), (_, g2) = _by_hand(model, x.astype(np.float64), y)
    expected = np.linalg.norm(g1) + np.linalg.norm(g2)
    assert zero_cost.score("grad_norm", model, x, y) == pytest.approx(expected, rel=1e-4)


def test_snip_is_the_sum_of_weight_times_gradient(batch):
    x, y = batch
    model = _dense_net()
    (w1, g1), (w2, g2) = _by_hand(model, x.astype(np.float64), y)
    expected = np.abs(w1 * g1).sum() + np.abs(w2 * g2).sum()
    assert zero_cost.score("snip", model, x, y) == pytest.approx(expected, rel=1e-4)


def test_synflow_drops_batch_norm_and_softmax_and_uses_absolute_weights():
    model = _dense_net(bn=True)
    w1, b1 = (np.abs(np.asarray(w, np.float64)) for w in model.get_layer("d1").get_weights())
    w2, _ = (np.abs(np.asarray(w, np.float64)) for w in model.get_layer("d2").get_weights())
    a = np.ones(3) @ w1 + b1  # Positive: every ReLU is on.
    # R = sum_k (a |W2| + |b2|)_k:  dR/dW2[j, k] = a_j;  dR/dW1[i, j] = sum_k |W2[j, k]|.
    expected = (w1 * w2.sum(axis=1)).sum() + (w2 * a[:, None]).sum()
    assert zero_cost.score("synflow", model) == pytest.approx(expected, rel=1e-12)
    assert model.get_layer("d1").get_weights()[0].min() < 0  # The network itself is untouched.


def test_params_and_flops_count_the_network():
    model = _dense_net()
    assert zero_cost.score("params", model) == 3 * 4 + 4 + 4 * 2 + 2
    assert zero_cost.score("flops", model) == 3 * 4 + 4 * 2


def test_flops_count_the_multiply_accumulates_of_every_convolution_and_dense_layer_by_hand():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8*8 * 3*3*3*4 = 6,912
    x = keras.layers.Conv2D(6, 1, strides=2)(x)  # 4*4 * 1*1*4*6 = 384
    x = keras.layers.SeparableConv2D(5, 3, padding="same")(x)  # 4*4*(3*3*6) + 4*4*6*5 = 1,344
    x = keras.layers.Conv2DTranspose(2, 3, strides=2, padding="same")(x)  # 4*4 * 3*3*5*2 = 1,440
    x = keras.layers.MaxPooling2D()(x)  # No multiply-accumulates.
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(7)(x)  # 2*7 = 14
    model = keras.Model(inputs, outputs)
    assert zero_cost.flops(model) == 6912 + 384 + 1344 + 1440 + 14


def _nb201(op, channels=4, cells=1):
    space = state_space.nb201_space()
    architecture = space.from_string("+".join("|" + "|".join(f"{op}~{i}" for i in range(j)) + "|" for j in (1, 2, 3)))
    keras.utils.set_random_seed(0)
    return templates.build_nb201(space, architecture, (8, 8, 3), 10, channels=channels, cells=cells)


def test_synflow_of_an_nb201_cell_without_a_path_is_zero_and_of_one_with_convolutions_positive():
    # The cell's output is node 3; with every edge `none` nothing reaches it, and the
    # classifier sees zeros: R does not depend on any kernel.
    assert zero_cost.score("synflow", _nb201("none")) == 0.0
    assert zero_cost.score("synflow", _nb201("nor_conv_3x3")) > 0.0


def test_a_network_without_kernels_or_with_an_unknown_proxy_is_one_clear_error():
    inputs = keras.Input((4, 4, 1))
    out = keras.layers.Softmax()(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, out)
    with pytest.raises(zero_cost.ProxyError, match="no trainable convolution or dense kernel"):
        zero_cost.score("synflow", model)
    with pytest.raises(zero_cost.ProxyError, match="unknown proxy 'fisher'"):
        zero_cost.score("fisher", _dense_net())
    with pytest.raises(zero_cost.ProxyError, match="snip needs a batch of labelled images"):
        zero_cost.score("snip", _dense_net())


# ------------------------------------------------------------------ in a search


@pytest.mark.parametrize("value", [0.0, 1e-9, 3.5, 1e40])
def test_a_proxys_fitness_is_log_one_plus_its_value_and_naswot_s_is_its_score(value):
    assert zero_cost.fitness("synflow", value) == np.log1p(value)
    assert zero_cost.fitness("naswot", value) == value


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1.0])
def test_a_degenerate_value_is_one_clear_error(value):
    with pytest.raises(zero_cost.ProxyError, match="degenerate"):
        zero_cost.fitness("snip", value)


def _scorer(build, proxy, rows=12):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(rows, 3)).astype("float32")
    y = rng.integers(0, 2, size=rows)
    return zero_cost.Scorer(build, x, y, proxy=proxy, batch_size=5, seed=7, seed_of=lambda a: a[0])


@pytest.mark.parametrize("proxy", ["synflow", "snip", "grad_norm", "params", "flops"])
def test_the_scorer_s_score_is_the_fitness_of_the_proxy_on_its_batch_and_seeded_network(proxy):
    scorer = _scorer(lambda a: _dense_net(seed=a[0]), proxy)
    s = scorer.score((4,))
    keras.utils.set_random_seed(4)  # seed_of((4,)): as the scorer initialized it.
    model = _dense_net(seed=4)
    expected = np.log1p(zero_cost.score(proxy, model, scorer.batch, scorer.labels))
    assert not s.failed and s.score == pytest.approx(expected, rel=1e-6)
    assert s.params == model.count_params() and s.relu_units == 0
    assert scorer.score((5,)).score != s.score or proxy in ("params", "flops")  # Another seed.
    # The batch is drawn once, from the seed: 5 of the 12 rows, labels with them.
    assert scorer.batch.shape == (5, 3) and scorer.labels.shape == (5,)


def _no_relu(architecture):
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs), name="linear")


def _no_kernel(architecture):
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Softmax()(inputs), name="kernelless")


def _overflowing(architecture):
    """Ten layers of weights 1e37 (finite in float32): synflow's product is ~1e370."""
    inputs = keras.Input((3,))
    h = inputs
    for _ in range(10):
        h = keras.layers.Dense(3, activation="relu", kernel_initializer=keras.initializers.Constant(1e37))(h)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(h))


def _unbuildable(architecture):
    raise ValueError("cannot build this one")


@pytest.mark.parametrize(
    "build, proxy, reason",
    [
        (_no_relu, "naswot", "network 'linear' has no ReLU unit"),
        (_no_kernel, "synflow", "network 'kernelless' has no trainable convolution or dense kernel"),
        (_no_kernel, "grad_norm", "has no trainable convolution or dense kernel"),
        (_overflowing, "synflow", "synflow overflowed float64"),
        (_unbuildable, "snip", "ValueError: cannot build this one"),
    ],
    ids=["no-relu", "no-kernel", "no-kernel-gradient", "overflow", "failing-build"],
)
def test_a_network_a_score_cannot_use_is_one_failed_score_never_a_crash(build, proxy, reason):
    s = _scorer(build, proxy).score((1,))
    assert s.failed and s.score == zero_cost.MIN_SCORE < 0
    assert reason in s.reason and "\n" not in s.reason


def test_the_scorer_refuses_an_unknown_score_and_snip_without_labels():
    x = np.zeros((8, 3), "float32")
    with pytest.raises(ValueError, match="unknown score 'fisher'"):
        zero_cost.Scorer(_no_relu, x, proxy="fisher", batch_size=4)
    with pytest.raises(ValueError, match="snip needs labels"):
        zero_cost.Scorer(_no_relu, x, proxy="snip", batch_size=4)


@pytest.mark.parametrize("proxy", ["synflow", "snip"])
def test_a_proxy_evaluation_rewards_the_untrained_children_s_scores(tiny_dataset, monkeypatch, proxy):
    space = state_space.toy_space(2)
    m = manager.NetworkManager(tiny_dataset, space, proxy_batch=16, seed=3, evaluation=proxy)
    monkeypatch.setattr(m, "train", lambda *a, **k: pytest.fail("a child was trained"))
    archs = [(1, 16, 3, 32), (3, 32, 1, 16), (1, 16, 3, 32)]
    results = m.get_rewards(archs)
    for r in results:
        assert r.accuracy is None and not r.failed and r.fitness == r.score > 0
        assert r.score == m.scorer.score(r.architecture).score  # The scorer's, seeded per child.
        assert r.reward == pytest.approx(r.score - results[0].score)  # First baseline: first.
    assert results[2].cached and results[2].score == results[0].score
    assert m.worker_settings()["proxy"] == proxy
