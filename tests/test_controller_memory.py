"""The controller's memory buffer (Adam & Lorraine 2019): the reconstruction loss, the
buffer, and its saving."""

import numpy as np
import pytest

import controller as controller_lib
import state_space


def _space():
    """One layer, two decisions: a in {0, 1, 2}, b in {x, y}."""
    return state_space.StateSpace(1).add_state("a", [0, 1, 2]).add_state("b", ["x", "y"])


def _constant_policy(c, biases):
    """Zeroes every weight, then sets the heads' biases: with zero LSTM weights the
    LSTM's output is 0 at every step, so decision d's logits are biases[d] (before the
    tanh cap), whatever came before."""
    for w in c._scorer.weights:
        w.assign(np.zeros(w.shape, "float32"))
    for head, bias in zip(c._policy.heads, biases):
        head.bias.assign(np.asarray(bias, "float32"))


def _hand_nll(architecture, biases, cap=2.5):
    """-sum over decisions of log softmax(cap * tanh(bias))[choice]: softmax once, the
    first decision included."""
    total = 0.0
    for bias, index in zip(biases, architecture):
        logits = cap * np.tanh(np.asarray(bias, float))
        log_p = logits - np.log(np.sum(np.exp(logits)))
        total -= log_p[index]
    return total


BIASES = [[0.3, -1.2, 0.9], [1.5, -0.4]]


def test_reconstruction_loss_equals_a_hand_computation():
    space = _space()
    c = controller_lib.Controller(space, seed=0, memory_size=10)
    _constant_policy(c, BIASES)
    architectures = [(0, "x"), (2, "y"), (1, "y")]
    expected = np.mean([_hand_nll((space.index_of(d, v) for d, v in zip(space.decisions, a)), BIASES) for a in architectures])
    assert c.reconstruction_loss(architectures) == pytest.approx(expected, rel=1e-5)
    # The published code's defects give other numbers: softmax applied twice, or the
    # first decision left out.
    twice = np.mean([-sum(np.log(np.exp(p) / np.exp(p).sum())[i] for p, i in zip(
        [np.exp(2.5 * np.tanh(b)) / np.exp(2.5 * np.tanh(b)).sum() for b in map(np.array, BIASES)],
        (space.encode(a)))) for a in architectures])
    skipped = np.mean([_hand_nll(space.encode(a)[1:], BIASES[1:]) for a in architectures])
    assert abs(expected - twice) > 0.1 and abs(expected - skipped) > 0.1


def test_the_update_adds_the_weighted_reconstruction_loss_of_the_buffers_batch():
    space = _space()
    c = controller_lib.Controller(
        space, seed=0, memory_size=10, memory_batch=2, memory_weight=0.5, entropy_weight=0.0
    )
    _constant_policy(c, BIASES)
    first = [(0, "x"), (2, "y")]
    stats = c.update(first, [0.0, 0.0])
    assert stats["memory_loss"] is None  # Nothing in the buffer yet.
    assert [space.decode(row) for row in c.memory] == first
    before = c.reconstruction_loss(first)
    sampled = [(1, "x")]
    log_p = -c.reconstruction_loss(sampled)
    stats = c.update(sampled, [0.25])
    # REINFORCE of the sample plus 0.5 x the mean NLL of the batch (the whole buffer).
    assert stats["memory_loss"] == pytest.approx(before, rel=1e-5)
    assert stats["loss"] == pytest.approx(-0.25 * log_p + 0.5 * before, rel=1e-5)
    assert c.reconstruction_loss(first) < before  # The step made the buffer more likely.


def test_with_weight_zero_the_update_is_the_plain_controllers():
    space = state_space.toy_space(1)
    plain = controller_lib.Controller(space, seed=3)
    memory = controller_lib.Controller(space, seed=3, memory_size=50, memory_batch=4, memory_weight=0.0)
    for step in range(2):
        architectures = plain.sample(4)
        memory.rng.bit_generator.state = plain.rng.bit_generator.state
        advantages = [0.3, -0.1, 0.2, -0.4]
        plain.update(architectures, advantages)
        memory.update(architectures, advantages)
    for a, b in zip(plain._scorer.weights, memory._scorer.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_the_buffer_keeps_the_newest_and_the_loss_starts_after_memory_start():
    space = state_space.toy_space(1)
    c = controller_lib.Controller(space, seed=0, memory_size=5, memory_batch=3, memory_start=2)
    steps = [c.sample(2) for _ in range(4)]
    losses = [c.update(a, [0.1, -0.1])["memory_loss"] for a in steps]
    assert losses[:2] == [None, None] and all(loss is not None for loss in losses[2:])
    kept = [a for step in steps for a in step][-5:]
    assert [space.decode(row) for row in c.memory] == kept


def test_the_buffer_round_trips_through_save_and_load(tmp_path):
    space = state_space.macro_space(2)  # Two op decisions and a skip bit.
    c = controller_lib.Controller(space, seed=1, memory_size=20, memory_batch=4)
    for _ in range(3):
        c.update(c.sample(3), [0.2, -0.1, 0.0])
    c.save(str(tmp_path))
    loaded = controller_lib.Controller.load(str(tmp_path), space, hparams=c.hparams)
    np.testing.assert_array_equal(loaded.memory, c.memory)
    assert loaded.memory.dtype == c.memory.dtype
    # The next update draws the same batch and moves the same way.
    architectures = c.sample(3)
    loaded.rng.bit_generator.state = c.rng.bit_generator.state
    ours, theirs = (x.update(architectures, [0.1, 0.1, -0.2]) for x in (loaded, c))
    assert ours["memory_loss"] == pytest.approx(theirs["memory_loss"], rel=1e-5)
    assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
    np.testing.assert_array_equal(loaded.memory, c.memory)
    for a, b in zip(loaded._scorer.weights, c._scorer.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_a_checkpoint_without_its_buffer_is_refused(tmp_path):
    space = state_space.toy_space(1)
    c = controller_lib.Controller(space, seed=0, memory_size=4)
    c.update(c.sample(2), [0.1, -0.1])
    c.save(str(tmp_path))
    (tmp_path / "memory.npy").unlink()
    with pytest.raises(controller_lib.ControllerError, match="cannot load controller checkpoint"):
        controller_lib.Controller.load(str(tmp_path), space)


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("memory_size", -1, "memory_size must be an integer >= 0"),
        ("memory_batch", 0, "memory_batch must be an integer >= 1"),
        ("memory_weight", -0.5, "memory_weight must be >= 0"),
        ("memory_start", 1.5, "memory_start must be an integer >= 0"),
    ],
)
def test_bad_memory_settings_are_refused(setting, value, message):
    with pytest.raises(controller_lib.ControllerError, match=message):
        controller_lib.Controller(state_space.toy_space(1), **{setting: value})
