"""The NAS-Bench-201 supernet, DARTS and GDAS: a path against the stand-alone network,
the mixed op and its gradient against finite differences, GDAS's sampling and
temperature, and each weight-sharing strategy's search resumed against an
uninterrupted one.

Tiny networks (4 channels, one cell per stage) on 8x8 images, so every test runs in
seconds."""

import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import config
import differentiable
import nb201_supernet
import poisoning
import search
import state_space
import supernet as supernet_lib


def make_net(space=None, seed=0, bn="moving", channels=4, cells=1):
    space = space or state_space.nb201_space()
    net = nb201_supernet.NB201Supernet(space, (8, 8, 3), 4, channels=channels, cells=cells,
                                       bn=bn, seed=seed)
    net.build()
    return net


def rows(net, architecture, n):
    return np.repeat(net.encode([architecture]), n, axis=0)


@pytest.fixture(scope="module")
def trained():
    """A supernet trained a few minibatches on random paths, so that weights and moving
    statistics are no longer their initial values."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 4, 16).astype("int32")
    net = make_net()
    net.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), jit_compile=False,
                loss="sparse_categorical_crossentropy")
    for _ in range(8):
        net.train_on_batch([x, rows(net, net.space.sample(rng), len(x))], y)
    return net, x, rng


def every_op_on_every_edge(space):
    """Five cells that together put each op on each edge."""
    ops = state_space.NB201_OPS
    return [tuple(ops[(k + e) % len(ops)] for e in range(6)) for k in range(len(ops))]


def test_a_path_computes_what_the_stand_alone_network_computes(trained):
    net, x, rng = trained
    for architecture in every_op_on_every_edge(net.space) + net.space.sample(rng, 1):
        child = net.extract(architecture)
        ours = keras.ops.convert_to_numpy(net([x, rows(net, architecture, len(x))]))
        theirs = keras.ops.convert_to_numpy(child(x, training=False))
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
        assert net.count_child_params(architecture) == child.count_params()


def test_the_mixed_op_with_one_hot_weights_is_the_path(trained):
    net, x, rng = trained
    for architecture in net.space.sample(rng, 4):
        one_hot = np.eye(5, dtype="float32")[list(net.space.encode(architecture))]
        mixed = keras.ops.convert_to_numpy(net.mixed(x, one_hot))
        path = keras.ops.convert_to_numpy(net([x, rows(net, architecture, len(x))]))
        np.testing.assert_allclose(mixed, path, rtol=1e-4, atol=1e-6)
        choices = np.array(net.space.encode(architecture))
        sampled = keras.ops.convert_to_numpy(net.sampled(x, choices, one_hot))
        np.testing.assert_allclose(sampled, path, rtol=1e-4, atol=1e-6)


def test_the_gradient_with_respect_to_alpha_matches_finite_differences():
    """d loss / d alpha of DARTS's softmax-mixed network, by the backend's gradient and
    by central differences, in float64."""
    before = keras.config.floatx(), keras.config.dtype_policy().name
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        net = make_net(seed=1, bn="moving")
        rng = np.random.default_rng(1)
        x = rng.normal(size=(6, 8, 8, 3))
        y = rng.integers(0, 4, 6)
        alpha0 = rng.normal(scale=0.5, size=(6, 5))

        def loss(alpha):
            w = keras.ops.softmax(alpha, axis=-1)
            p = net.mixed(x, w)
            return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, p))

        alpha = tf.Variable(alpha0)
        with tf.GradientTape() as tape:
            value = loss(alpha)
        grad = tape.gradient(value, alpha).numpy()
        eps = 1e-5
        entries = [(e, k) for e in range(6) for k in range(5) if (e + k) % 3 == 0]  # Each edge, op.
        numeric = []
        for i in entries:
            up, down = alpha0.copy(), alpha0.copy()
            up[i] += eps
            down[i] -= eps
            numeric.append((float(loss(up)) - float(loss(down))) / (2 * eps))
        ours = np.array([grad[i] for i in entries])
        assert np.abs(ours).max() > 1e-4  # Not a vanishing case.
        # Within 0.3% (central differences step over the ReLUs' kinks now and then).
        np.testing.assert_allclose(ours, numeric, rtol=3e-3, atol=2e-5)
    finally:
        keras.config.set_floatx(before[0])
        keras.config.set_dtype_policy(before[1])


def test_gdas_samples_each_op_with_its_softmax_probability_whatever_the_temperature():
    """The Gumbel-max trick: argmax(log_softmax(alpha) + G) is distributed as
    softmax(alpha), at any tau; the weights are one-hot in value."""
    alpha = np.array([[0.5, -1.0, 0.0, 1.5, 0.2]], dtype="float32")
    p = np.exp(alpha[0]) / np.exp(alpha[0]).sum()
    rng = np.random.default_rng(0)
    n = 20_000
    for tau in (10.0, 1.0, 0.1):
        noise = differentiable.gumbel(rng, (n, 5))
        choices, hard = differentiable.gdas_weights(np.repeat(alpha, n, 0), noise, tau)
        counts = np.bincount(keras.ops.convert_to_numpy(choices), minlength=5)
        sigma = np.sqrt(n * p * (1 - p))
        assert np.all(np.abs(counts - n * p) < 4 * sigma), (tau, counts, n * p)
        hard = keras.ops.convert_to_numpy(hard)
        np.testing.assert_allclose(hard, np.eye(5)[keras.ops.convert_to_numpy(choices)], atol=1e-6)


def test_gdas_weights_carry_the_gradient_of_the_tempered_softmax():
    alpha = tf.Variable(np.array([[0.3, -0.2, 0.1, 0.0, 0.4]], dtype="float32"))
    noise = differentiable.gumbel(np.random.default_rng(3), (1, 5))
    tau = 2.0
    probe = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]], dtype="float32")
    with tf.GradientTape() as tape:
        _, hard = differentiable.gdas_weights(alpha, noise, tau)
        value = tf.reduce_sum(hard * probe)
    with tf.GradientTape() as tape2:
        soft = tf.nn.softmax((tf.nn.log_softmax(alpha) + noise) / tau)
        value2 = tf.reduce_sum(soft * probe)
    np.testing.assert_allclose(tape.gradient(value, alpha), tape2.gradient(value2, alpha), rtol=1e-5)


def test_the_temperature_falls_linearly_from_tau_max_to_tau_min():
    assert differentiable.temperature(0.0) == 10.0
    assert differentiable.temperature(1.0) == pytest.approx(0.1)
    assert differentiable.temperature(0.5) == pytest.approx(5.05)
    assert differentiable.temperature(2.0) == pytest.approx(0.1)  # Clipped to the budget.
    taus = [differentiable.temperature(f) for f in np.linspace(0, 1, 11)]
    assert np.allclose(np.diff(taus), -0.99)


def test_darts_derives_the_argmax_cell_and_keeps_its_state_exactly():
    space = state_space.nb201_space()
    s = differentiable.Darts(space, seed=3)
    alpha = np.zeros((6, 5), dtype="float32")
    alpha[np.arange(6), [3, 2, 0, 1, 4, 3]] = 1.0
    s.params.alpha.assign(alpha)
    expected = tuple(state_space.NB201_OPS[i] for i in [3, 2, 0, 1, 4, 3])
    assert s.derived() == expected and s.propose(3) == [expected] * 3
    other = differentiable.Darts(space, seed=4)
    other.set_state(json.loads(json.dumps(s.get_state())))
    assert np.array_equal(other.alpha(), s.alpha())


def test_a_poisoned_cell_shares_one_branch_among_the_copies():
    space = poisoning.poison(state_space.nb201_space(), "none", instances=5)
    net = make_net(space)
    assert net.ops == list(state_space.NB201_OPS)
    assert len(space.states["op"]) == 9
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    a = ("none#3", "skip_connect", "none", "nor_conv_3x3", "avg_pool_3x3", "none#5")
    b = ("none", "skip_connect", "none#2", "nor_conv_3x3", "avg_pool_3x3", "none")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(net([x, rows(net, a, 2)])),
        keras.ops.convert_to_numpy(net([x, rows(net, b, 2)])),
    )


def test_spaces_and_ops_the_supernet_cannot_hold_are_named():
    with pytest.raises(supernet_lib.SupernetError, match="NB201 cell"):
        make_net(state_space.macro_space(3))
    poisoned = poisoning.poison(state_space.nb201_space(), "noise2", instances=1)
    with pytest.raises(supernet_lib.SupernetError, match="'noise2' has no shared-weight branch"):
        make_net(poisoned)


# ---------------------------------------------------------------------- the searches

SETTINGS = dict(
    space="nb201", evaluation="shared", dataset="cifar10_5k", train_size=96, val_size=48,
    batch_size=32, eval_batch=16, nb201_channels=4, nb201_cells=1, shared_steps_per_epoch=2,
    children_per_step=2, trials=8, final_epochs=0, derive_candidates=4, tensorboard=False,
)


def run(tmp_path, strategy, name, stop_after=None, resume=False):
    c = config.SearchConfig(**SETTINGS, strategy=strategy, logdir=str(tmp_path), run_name=name)
    seen = []

    def should_stop():
        seen.append(1)
        return stop_after is not None and len(seen) >= stop_after

    return search.run_search(c, out=lambda line: None, resume=resume, should_stop=should_stop)


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def eagerly(request):
    """TensorFlow's functions run eagerly for random search: each of a resume test's three
    searches would otherwise trace its supernet steps anew (DARTS: 48 s of CPU traced, 31 s
    eager). What the test checks, that a run's state is all saved and restored, is the same
    either way; GDAS searches traced, as `train.py` runs it."""
    eager = request.node.callspec.params["strategy"] != "gdas"
    tf.config.run_functions_eagerly(eager)
    yield
    tf.config.run_functions_eagerly(False)


# Random search with weight sharing (the single-path training ENAS shares) and GDAS. DARTS
# does not resume here: its state, save and load are GDAS's (differentiable.py's
# DifferentiableStrategy; GDAS adds the temperature) and its forward pass holds no state; it
# searches once below. The controller's own state resumes in test_resume.py's
# weight-sharing test (macro space). No final retraining (--final_epochs=0): the pick is
# derived and looked up in the table, nothing is trained after the search.
@pytest.mark.parametrize("strategy", ["gdas", "random"])
def test_a_weight_sharing_search_on_nb201_resumes_as_if_never_stopped(tmp_path, strategy, eagerly):
    full = run(tmp_path, strategy, "full")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, strategy, "cut", stop_after=5)
    resumed = run(tmp_path, strategy, "cut", resume=True)
    for name in ("history.csv", "supernet.csv"):
        a, b = read(tmp_path / "full" / name), read(tmp_path / "cut" / name)
        drop = {"elapsed_seconds", "seconds"}
        assert [{k: v for k, v in r.items() if k not in drop} for r in a] == [
            {k: v for k, v in r.items() if k not in drop} for r in b
        ], name
    assert resumed["architecture"] == full["architecture"]
    assert resumed["table_accuracy"] == full["table_accuracy"]
    for summary, name in ((full, "full"), (resumed, "cut")):
        assert summary["final_epochs"] == 0 and summary["test_accuracy"] is None
        assert summary["params"] is None and not (tmp_path / name / "best_model.keras").exists()
    assert 1 <= full["table_rank"] <= 15_625
    epochs = read(tmp_path / "full" / "supernet.csv")
    assert [int(r["epoch"]) for r in epochs] == list(range(1, len(epochs) + 1))
    # A pick after every pass (random: the best scored so far, none before step 1).
    assert all(r["table_accuracy"] for r in epochs[strategy == "random":])
    if strategy == "gdas":
        assert epochs[-1]["pick"] == full["architecture_str"]


def test_a_darts_search_alternates_and_picks_the_argmax_cell(tmp_path):
    """DARTS end to end, eagerly (the traced supernet steps are GDAS's, above)."""
    tf.config.run_functions_eagerly(True)
    try:
        best = run(tmp_path, "darts", "darts")
    finally:
        tf.config.run_functions_eagerly(False)
    epochs = read(tmp_path / "darts" / "supernet.csv")
    assert [int(r["epoch"]) for r in epochs] == list(range(1, len(epochs) + 1)) and epochs
    assert epochs[-1]["pick"] == best["architecture_str"]
    assert len(read(tmp_path / "darts" / "history.csv")) == SETTINGS["trials"]
    assert 1 <= best["table_rank"] <= 15_625 and best["test_accuracy"] is None
