"""strategies.TableStrategy (--strategy=reinforce_table): its gradient against finite
differences, its Adam against Keras's, its state round trip, and that it learns."""

import keras
import numpy as np
import pytest

import state_space
from manager import ChildResult
from strategies import TableStrategy


def _loss(strategy, architectures, rewards):
    """The REINFORCE loss -(1/m) sum_k r_k sum_t log p_t(a_kt) at the current logits."""
    p = strategy.probabilities()
    total = 0.0
    for a, r in zip(architectures, rewards):
        total -= r * sum(np.log(p[t][i]) for t, i in enumerate(strategy.space.encode(a)))
    return total / len(architectures)


def test_the_gradient_is_the_derivative_of_the_reinforce_loss():
    space = state_space.toy_space()
    s = TableStrategy(space, seed=0, init_std=0.5)
    rng = np.random.default_rng(1)
    architectures = s.propose(6)
    rewards = list(rng.normal(size=6))
    grads = s.gradients(architectures, rewards)
    h = 1e-6
    for t in range(len(s.logits)):
        for j in range(len(s.logits[t])):
            s.logits[t][j] += h
            up = _loss(s, architectures, rewards)
            s.logits[t][j] -= 2 * h
            down = _loss(s, architectures, rewards)
            s.logits[t][j] += h
            assert grads[t][j] == pytest.approx((up - down) / (2 * h), abs=1e-6)


def test_its_adam_is_keras_adam():
    space = state_space.nb201_space()
    s = TableStrategy(space, seed=0, learning_rate=0.05)
    variables = [keras.Variable(row.astype("float64"), dtype="float64") for row in s.logits]
    adam = keras.optimizers.Adam(learning_rate=0.05, epsilon=1e-7)
    rng = np.random.default_rng(2)
    for _ in range(5):
        architectures = s.propose(4)
        rewards = rng.normal(size=4)
        grads = s.gradients(architectures, rewards)
        adam.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in grads], variables))
        s.learn(architectures, [ChildResult(a, 0.5, reward=float(r)) for a, r in zip(architectures, rewards)])
    for row, var in zip(s.logits, variables):
        np.testing.assert_allclose(row, keras.ops.convert_to_numpy(var), rtol=1e-5, atol=1e-7)


def test_the_state_round_trips_and_the_run_continues_identically():
    space = state_space.nb201_space()
    a, b = TableStrategy(space, seed=3), TableStrategy(space, seed=99)
    for _ in range(3):
        archs = a.propose(8)
        a.learn(archs, [ChildResult(x, 0.5, reward=float(i % 3 - 1)) for i, x in enumerate(archs)])
    b.set_state(a.get_state())
    assert b.propose(16) == a.propose(16)


def test_it_learns_a_planted_optimum():
    """Reward: the fraction of the toy space's decisions equal to a planted architecture,
    minus a moving-average baseline; after 150 updates of 8 the most likely value of
    every decision is the planted one."""
    space = state_space.toy_space()
    target = space.sample(np.random.default_rng(7))
    s = TableStrategy(space, seed=0, learning_rate=0.05)
    baseline = None
    for _ in range(150):
        archs = s.propose(8)
        fit = [np.mean([x == y for x, y in zip(a, target)]) for a in archs]
        baseline = np.mean(fit) if baseline is None else 0.8 * baseline + 0.2 * np.mean(fit)
        s.learn(archs, [ChildResult(a, f, reward=f - baseline) for a, f in zip(archs, fit)])
    best = space.decode([int(np.argmax(p)) for p in s.probabilities()])
    assert tuple(best) == tuple(target)
