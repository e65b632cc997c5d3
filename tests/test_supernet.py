"""The supernet and its evaluator: extraction, branches, clipping, keys, resume (on
JAX: tests/test_backends.py).

Tiny spaces (3 layers, 4 channels) on 8x8 images, so that every test runs in seconds.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import config
import poisoning
import search
import state_space
import supernet
import weight_sharing

POISON = "dropout1.0,stretched3x3,noise2,tconv3x3,identity,zero"


@pytest.fixture(scope="module", autouse=True)
def eagerly():
    """TensorFlow's functions run eagerly here: each evaluator of these tests traces its
    supernet's training and scoring steps anew, for a few minibatches (this module's CPU
    time: 98 s traced, 48 s eager, measured side by side). The math checked is the same
    either way; the traced supernet is what tests/test_resume.py's and test_assess.py's
    train.py runs search with."""
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


def poisoned_space(layers=3):
    """The macro space with every degraded op the supernet holds, two copies each."""
    return poisoning.poison(state_space.macro_space(layers), POISON, instances=2)


def train_a_little(net, x, y, rng, steps=6):
    net.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,
    )
    for _ in range(steps):
        a = net.encode([net.space.sample(rng)])
        net.train_on_batch([x, np.repeat(a, len(x), 0)], y)


def outputs(net, x, architecture, training=False):
    a = np.repeat(net.encode([architecture]), len(x), 0)
    return keras.ops.convert_to_numpy(net([x, a], training=training))


@pytest.fixture(scope="module")
def trained(request):
    """A supernet of the poisoned 3-layer space, trained for a few minibatches, so
    that weights and moving statistics are no longer their initial values."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(16, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 4, 16).astype("int32")
    net = supernet.Supernet(poisoned_space(), (8, 8, 1), 4, filters=4, seed=0)
    net.build()
    train_a_little(net, x, y, rng)
    return net, x, rng


def test_supernet_output_equals_the_extracted_child_in_inference_mode(trained):
    net, x, rng = trained
    space = net.space
    architectures = space.sample(rng, 10)
    # Every op of every layer at least once, besides the random ones.
    choices = space.states["op"]
    for c in choices:
        a = list(space.sample(rng))
        for layer in range(space.num_layers):
            a[net.op_decision[layer]] = c
        architectures.append(tuple(a))
    for architecture in architectures:
        child = net.extract(architecture)
        expected = keras.ops.convert_to_numpy(child(x, training=False))
        np.testing.assert_allclose(outputs(net, x, architecture), expected, atol=2e-5)
        assert net.count_child_params(architecture) == child.count_params()


def test_each_op_index_reaches_its_own_branch(trained):
    """The released ENAS macro code ran the last branch for every op index; here the
    output changes with the op, and copies of one op (`op#1`, `op#2`) are one branch.
    At inference, identity, dropout and noise are all the identity."""
    net, x, _ = trained
    space = net.space
    base = ["conv3x3" if d.name == "op" else 0 for d in space.decisions]
    seen = {}
    for c in space.states["op"]:
        a = list(base)
        a[net.op_decision[1]] = c
        seen[c] = outputs(net, x, tuple(a))
    identities = {"identity", "dropout1.0", "noise2"}
    groups = {}
    for c, out in seen.items():
        op = state_space.op_of(c)
        groups.setdefault("identity" if op in identities else op, []).append(out)
    assert len(groups) == len(supernet.SUPPORTED_OPS[:6]) + 4  # + identity, zero, tconv, stretched.
    for outs in groups.values():
        for other in outs[1:]:
            np.testing.assert_array_equal(other, outs[0])  # Copies share their weights.
    names, firsts = list(groups), [outs[0] for outs in groups.values()]
    for i in range(len(firsts)):
        for j in range(i + 1, len(firsts)):
            assert np.abs(firsts[i] - firsts[j]).max() > 1e-6, (names[i], names[j])


def test_only_the_chosen_branch_gets_a_gradient():
    """One plain SGD step (no momentum, no L2) moves the chosen op's weights of each
    layer and leaves every other branch untouched."""
    rng = np.random.default_rng(1)
    space = state_space.macro_space(3)
    net = supernet.Supernet(space, (8, 8, 1), 4, filters=4, seed=0)
    net.build()
    net.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    x = rng.uniform(size=(8, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 4, 8).astype("int32")
    architecture = ("conv5x5", "sepconv3x3", 1, "avgpool3x3", 0, 1)
    before = {v.path: keras.ops.convert_to_numpy(v).copy() for v in net.trainable_variables}
    net.train_on_batch([x, np.repeat(net.encode([architecture]), 8, 0)], y)
    chosen = {0: "conv5x5", 1: "sepconv3x3", 2: "avgpool3x3"}
    for v in net.trainable_variables:
        moved = not np.array_equal(keras.ops.convert_to_numpy(v), before[v.path])
        for layer, op in chosen.items():
            for other in supernet.SUPPORTED_OPS[:6]:
                if f"layer{layer}_{other}_" in v.path:
                    assert moved == (other == op), (v.path, moved)


def test_gradient_clipping_really_clips(tiny_dataset):
    """One Nesterov step moves the weights by at most (1 + momentum) * lr * clip."""
    space = state_space.macro_space(3)

    def step_size(clip):
        ev = weight_sharing.SharedEvaluator(
            tiny_dataset, space, filters=4, batch_size=96, eval_batch=8, grad_clip=clip, seed=0
        )
        before = [keras.ops.convert_to_numpy(v).copy() for v in ev.net.trainable_variables]
        lr = ev.learning_rate()
        ev.train_epoch(lambda n: space.sample(np.random.default_rng(0), n))
        after = [keras.ops.convert_to_numpy(v) for v in ev.net.trainable_variables]
        return np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(after, before))), lr

    small, lr = step_size(1e-3)
    assert small <= (1 + 0.9) * lr * 1e-3 * 1.001
    large, _ = step_size(100.0)
    assert large > 10 * small  # The bound above is the clip's doing.


def test_each_shared_setting_reaches_its_own_evaluator_setting(tiny_dataset):
    """search.make_shared hands every --shared_<name> setting to the evaluator as <name>,
    and nothing else there: each set to a value of its own, none of them a default; the
    evaluator's defaults are the config's."""
    values = dict(zip(config.SHARED_SETTINGS, ("moving", 0.3, 0.02, 7, 1e-3, 2.5)))
    assert set(values) == set(config.SHARED_SETTINGS)
    assert all(field.startswith("shared_") for field in values)
    c = config.SearchConfig(template="macro", filters=4, batch_size=96, eval_batch=8, **values)
    ev = search.make_shared(c, tiny_dataset, state_space.macro_space(3))
    names = {field: field.removeprefix("shared_") for field in values}
    for field, name in names.items():
        assert ev.hparams[name] == values[field] != weight_sharing.DEFAULTS[name]
    others = set(weight_sharing.DEFAULTS) - set(names.values())
    assert {k: ev.hparams[k] for k in others} == {k: weight_sharing.DEFAULTS[k] for k in others}
    assert ev.net.bn == "moving"
    assert ev.schedule.first_decay_steps == 7 * ev.steps_per_pass
    default = config.SearchConfig()
    for field, name in names.items():
        assert weight_sharing.DEFAULTS[name] == getattr(default, field)


def test_rewards_in_training_mode_see_dropout_and_leave_statistics_alone(tiny_dataset):
    space = poisoning.poison(state_space.macro_space(3), "dropout1.0")
    rng = np.random.default_rng(0)
    every_layer_drops = tuple(
        "dropout1.0" if d.name == "op" else 0 for d in space.decisions
    )  # Every layer outputs zeros in training: a constant prediction.
    evaluators = {}
    for mode in ("inference", "training"):
        ev = weight_sharing.SharedEvaluator(
            tiny_dataset, space, filters=4, batch_size=32, eval_batch=32, reward_mode=mode, seed=0
        )
        ev.train_epoch(lambda n: space.sample(rng, n))
        evaluators[mode] = ev
    ev = evaluators["training"]
    moving = [keras.ops.convert_to_numpy(v).copy() for v in ev.net.non_trainable_variables]
    scores = [ev.score(every_layer_drops, i) for i in range(4)]
    after = [keras.ops.convert_to_numpy(v) for v in ev.net.non_trainable_variables]
    for a, b in zip(after, moving):
        if a.dtype.kind == "f":  # Moving statistics; generator states are reset by key.
            np.testing.assert_array_equal(a, b)
    rows = ev._rows(every_layer_drops, 8)  # pylint: disable=protected-access

    def predict(evaluator, x):
        evaluator._reseed(0, 0)  # pylint: disable=protected-access
        return evaluator.scorer.predict_on_batch([x, rows])

    x = tiny_dataset.x_val[:8]
    # In training mode the images never reach the classifier: blank images give the
    # same predictions (the head's dropout mask is the same, from the same key).
    np.testing.assert_allclose(predict(ev, x), predict(ev, np.zeros_like(x)), atol=1e-6)
    assert max(scores) <= 1.0
    inference = evaluators["inference"]
    assert np.abs(predict(inference, x) - predict(inference, np.zeros_like(x))).max() > 1e-4


def test_scores_are_keyed_and_a_saved_evaluator_continues_exactly(tiny_dataset, tmp_path):
    space = poisoning.poison(state_space.macro_space(3), "noise2,dropout0.9")

    def evaluator():
        return weight_sharing.SharedEvaluator(
            tiny_dataset, space, filters=4, batch_size=32, eval_batch=16, reward_mode="training"
        )

    def proposer(seed):
        rng = np.random.default_rng(seed)
        return lambda n: space.sample(rng, n)

    a, b = evaluator(), evaluator()
    a.train_epoch(proposer(0))
    b.train_epoch(proposer(0))
    architectures = space.sample(np.random.default_rng(5), 6)
    first = [a.score(x, i) for i, x in enumerate(architectures)]
    assert first == [b.score(x, i) for i, x in enumerate(architectures)]
    assert first == [a.score(x, i) for i, x in enumerate(architectures)]  # Keyed, not drawn.
    a.save(tmp_path)
    c = evaluator()
    c.load(tmp_path)
    c.set_state(a.get_state())
    for ev in (a, c):
        ev.train_epoch(proposer(1))
    assert [a.score(x, i) for i, x in enumerate(architectures)] == [
        c.score(x, i) for i, x in enumerate(architectures)
    ]
    for u, v in zip(a.net.variables, c.net.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(u), keras.ops.convert_to_numpy(v))
    assert a.learning_rate() == c.learning_rate() < weight_sharing.DEFAULTS["lr"]


def test_a_checkpoint_of_another_supernet_is_refused(tiny_dataset, tmp_path):
    ev = weight_sharing.SharedEvaluator(
        tiny_dataset, state_space.macro_space(3), filters=4, batch_size=32, eval_batch=16
    )
    ev.save(tmp_path)
    other = weight_sharing.SharedEvaluator(
        tiny_dataset, state_space.macro_space(3), filters=8, batch_size=32, eval_batch=16
    )
    with pytest.raises(ValueError, match="supernet checkpoint: .* is for another network"):
        other.load(tmp_path)
    with pytest.raises(ValueError, match="supernet checkpoint: cannot read"):
        other.load(tmp_path / "missing")


@pytest.mark.parametrize(
    "space, message",
    [
        (state_space.toy_space(2), "needs the macro space"),
        (state_space.StateSpace(2).add_state("op", ["conv3x3"]), "without skip connections"),
        (
            state_space.StateSpace(2).add_state("op", ["conv3x3", "conv"]).add_skip_connections(),
            "op 'conv' has no shared-weight branch",
        ),
    ],
)
def test_spaces_without_a_supernet_are_one_clear_error(space, message):
    with pytest.raises(supernet.SupernetError, match=message):
        supernet.Supernet(space, (8, 8, 1), 4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 97}, "minibatch of 97"),
        ({"eval_batch": 33}, "scoring minibatch of 33"),
        ({"reward_mode": "eval"}, "reward_mode"),
        ({"bn": "none"}, "bn must be one of"),
        ({"lr": 0.01, "lr_min": 0.1}, "0 < min <= max"),
        ({"learning_rate": 0.01}, r"unknown setting\(s\) \['learning_rate'\]"),
    ],
)
def test_bad_evaluator_settings_are_named(tiny_dataset, kwargs, message):
    with pytest.raises(ValueError, match=message):
        weight_sharing.SharedEvaluator(
            tiny_dataset, state_space.macro_space(2), **{"batch_size": 32, "eval_batch": 16, **kwargs}
        )


def test_a_supernet_loss_that_becomes_nan_stops_training(tiny_dataset):
    space = state_space.macro_space(2)
    ev = weight_sharing.SharedEvaluator(
        tiny_dataset, space, filters=4, batch_size=32, eval_batch=16, lr=1e30,
        lr_min=1e30, grad_clip=1e30,
    )
    rng = np.random.default_rng(0)
    with pytest.raises(FloatingPointError, match="NaN or infinite in epoch 1"):
        ev.train_epoch(lambda n: space.sample(rng, n))
    assert ev.epochs == 0
