"""Tests for controller.py: sampling, REINFORCE updates, learning, capping, save/load.

They check the defects of the earlier implementation (docs/REFERENCES.md: the small Keras implementation) are absent:
sampling is never greedy, the loss uses the log-probability of the sampled choices
(not a cross-entropy against shifted labels), there is no reward-scaled L2 term, an
update takes a batch of architectures, and runs are seeded.
"""

import json
import math
import pathlib
import re
import shutil

import numpy as np
import pytest

import controller as controller_module
from controller import DEFAULTS, Controller, ControllerError
from manager import EwaBaseline
from state_space import SKIP, StateSpace, macro_space, toy_space

SMALL = dict(lstm_units=32, embedding_size=16)


def _log_prob(c, arch):
    """log pi(arch), computed from the public per-decision probabilities."""
    probs = c.probabilities([arch])
    return float(sum(np.log(p[i]) for p, i in zip(probs, c.space.encode(arch))))


def _match_reward(target):
    def reward(arch):
        return float(np.mean([a == t for a, t in zip(arch, target)]))

    return reward


@pytest.fixture(scope="module")
def toy_controller():
    """A fresh small controller for tests that only sample, score or fail early."""
    return Controller(toy_space(), seed=0, **SMALL)


# ------------------------------------------------------------------ module hygiene


def test_controller_module_is_backend_neutral():
    source = pathlib.Path(controller_module.__file__).read_text()
    assert "import tensorflow" not in source
    assert "from tensorflow" not in source
    assert not re.search(r"\btf\.", source)


def test_controller_error_is_value_error():
    assert issubclass(ControllerError, ValueError)


# ------------------------------------------------------------------ settings


def test_unknown_setting_is_named():
    with pytest.raises(ControllerError, match=r"unknown controller setting.*'lstm_unitz'"):
        Controller(toy_space(), lstm_unitz=32)


@pytest.mark.parametrize(
    "name, value",
    [
        ("lstm_units", 0),
        ("lstm_units", 2.5),
        ("lstm_units", True),
        ("lstm_layers", 0),
        ("embedding_size", -3),
        ("learning_rate", 0),
        ("learning_rate", -1e-3),
        ("learning_rate", float("nan")),
        ("learning_rate", "0.1"),
        ("temperature", 0.0),
        ("grad_clip", -5.0),
        ("init_range", 0),
        ("entropy_weight", -0.1),
        ("entropy_weight", float("nan")),
        ("tanh_constant", 0),
        ("tanh_constant", -2.5),
        ("exploration", 1.0),
        ("exploration", -0.1),
    ],
)
def test_out_of_range_setting_is_named(name, value):
    with pytest.raises(ControllerError, match=rf"{name} must .*{re.escape(repr(value))}"):
        Controller(toy_space(), **{name: value})


def test_space_without_decisions_is_rejected():
    with pytest.raises(ValueError, match="no decisions"):
        Controller(StateSpace(3), **SMALL)


def test_hparams_default_and_override(toy_controller):
    c = toy_controller
    assert c.hparams == {**DEFAULTS, **SMALL}
    assert c.updates == 0


# ------------------------------------------------------------------ sampling


def test_sample_returns_n_valid_architectures(toy_controller):
    archs = toy_controller.sample(7)
    assert isinstance(archs, list) and len(archs) == 7
    for a in archs:
        assert isinstance(a, tuple)
        toy_controller.space.validate(a)
    assert len(toy_controller.sample(1)) == 1


@pytest.mark.parametrize("n", [0, -1])
def test_sample_needs_positive_n(toy_controller, n):
    with pytest.raises(ControllerError, match=rf"n >= 1, got {n}"):
        toy_controller.sample(n)


def test_sampling_is_not_greedy(toy_controller):
    archs = toy_controller.sample(200)
    assert len(set(archs)) > 100
    for column, decision in enumerate(toy_controller.space.decisions):
        seen = {a[column] for a in archs}
        assert seen == set(decision.choices), decision.key


def test_macro_samples_are_valid_and_diverse():
    space = macro_space(4)
    c = Controller(space, seed=0, exploration=0.3, **SMALL)
    archs = c.sample(50)
    for a in archs:
        space.validate(a)
        assert len(space.layers(a)) == 4
    assert len(set(archs)) > 40
    skips = [a[i] for a in archs for i, d in enumerate(space.decisions) if d.kind == SKIP]
    assert 0.3 < np.mean(skips) < 0.7


def test_same_seed_same_samples_different_seed_different():
    space = toy_space()
    a, b, c = (Controller(space, seed=s, **SMALL) for s in (3, 3, 4))
    first_a, first_b = a.sample(6), b.sample(6)
    assert first_a == first_b
    assert a.sample(6) == b.sample(6)  # the whole sequence, not only the first batch
    assert c.sample(6) != first_a
    np.random.seed(123)  # global seeds must not matter
    assert a.sample(3) == b.sample(3)


def _search_trace(c, steps=6):
    """Samples and updates of a short made-up search, and the weights after it."""
    target = c.space.decode([0] * len(c.space.decisions))
    reward = _match_reward(target)
    baseline, samples = EwaBaseline(0.9), []
    for _ in range(steps):
        archs = c.sample(4)
        samples.append(archs)
        rewards = [reward(a) for a in archs]
        c.update(archs, [r - (baseline.value or 0.0) for r in rewards])
        for r in rewards:
            baseline.update(r)
    return samples, [np.asarray(w).copy() for w in c._scorer.weights]


def test_a_controller_on_models_left_by_a_gone_one_runs_as_a_fresh_one():
    # A new controller takes over the traced models of a gone controller of the same
    # shape (controller._idle): it must sample and learn exactly as one built afresh.
    space = toy_space()
    settings = dict(SMALL, learning_rate=0.05, entropy_weight=1e-3)
    first = Controller(space, seed=11, **settings)
    models = first._models
    fresh_samples, fresh_weights = _search_trace(first)
    del first  # its models are idle now
    other = Controller(space, seed=12, **settings)
    assert other._models is models
    _search_trace(other)  # moves those models' weights and optimizer state
    del other
    again = Controller(space, seed=11, **settings)
    assert again._models is models
    samples, weights = _search_trace(again)
    assert samples == fresh_samples
    for a, b in zip(weights, fresh_weights):
        np.testing.assert_array_equal(a, b)


def test_live_controllers_never_share_models():
    space = toy_space()
    a, b = Controller(space, seed=5, **SMALL), Controller(space, seed=5, **SMALL)
    assert a._scorer is not b._scorer
    before = b.probabilities([b.space.decode([0] * len(space.decisions))])
    a.update(a.sample(4), [1.0, -1.0, 0.5, -0.5])
    after = b.probabilities([b.space.decode([0] * len(space.decisions))])
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x, y)
    # Other settings are another shape: never handed models of this one.
    models = a._models
    del a
    c = Controller(space, seed=5, **dict(SMALL, learning_rate=0.05))
    assert c._models is not models and c._scorer is not b._scorer
    assert any(m is models for m in controller_module._idle[controller_module._key(space, {**DEFAULTS, **SMALL})])


def test_skip_only_space():
    space = StateSpace(3).add_skip_connections()
    c = Controller(space, seed=0, lstm_units=8, embedding_size=8)
    archs = c.sample(20)
    for a in archs:
        space.validate(a)
    assert len(set(archs)) > 3
    assert [len(p) for p in c.probabilities(archs)] == [2, 2, 2]


# ------------------------------------------------------------------ probabilities


def test_probabilities_shapes_and_sums(toy_controller):
    space = toy_controller.space
    archs = toy_controller.sample(5)
    probs = toy_controller.probabilities(archs)
    assert len(probs) == len(space.decisions)
    for p, d in zip(probs, space.decisions):
        assert p.shape == (len(d.choices),)
        assert np.all(p > 0)
        assert math.isclose(float(p.sum()), 1.0, abs_tol=1e-5)
    # A fresh controller (weights ~ U(-0.1, 0.1)) is close to uniform.
    for p in probs:
        assert np.all(np.abs(p - 1 / len(p)) < 0.1)


def test_probabilities_with_skip_bits():
    space = macro_space(4)
    c = Controller(space, seed=1, **SMALL)
    archs = c.sample(3)
    probs = c.probabilities(archs)
    for p, d in zip(probs, space.decisions):
        assert p.shape == ((2,) if d.kind == SKIP else (6,))
        assert math.isclose(float(p.sum()), 1.0, abs_tol=1e-5)
    # Averaging over architectures: the mean of the per-architecture distributions.
    single = [c.probabilities([a]) for a in archs]
    for d in range(len(space.decisions)):
        np.testing.assert_allclose(probs[d], np.mean([s[d] for s in single], axis=0), atol=1e-6)


def test_policy_is_autoregressive(toy_controller):
    """The next decision depends on the previous choice (the previous token is the input)."""
    a = (1, 16, 3, 32, 1, 64, 3, 64)
    b = (3, 16, 3, 32, 1, 64, 3, 64)
    pa, pb = toy_controller.probabilities([a]), toy_controller.probabilities([b])
    np.testing.assert_allclose(pa[0], pb[0], atol=1e-7)  # nothing chosen yet
    assert np.max(np.abs(pa[1] - pb[1])) > 1e-5


def test_entropy_of_fresh_controller_is_near_maximum(toy_controller):
    archs = toy_controller.sample(4)
    max_entropy = 4 * (math.log(2) + math.log(3))
    assert max_entropy - 0.25 < toy_controller.entropy(archs) <= max_entropy + 1e-5


# ------------------------------------------------------------------ update


def test_update_errors(toy_controller):
    c = toy_controller
    archs = c.sample(3)
    with pytest.raises(ControllerError, match=r"got 3 architectures and 2 advantages"):
        c.update(archs, [1.0, 2.0])
    with pytest.raises(ControllerError, match=r"got 0 architectures and 0 advantages"):
        c.update([], [])
    with pytest.raises(ControllerError, match=r"advantages must be finite.*nan"):
        c.update(archs, [0.1, float("nan"), 0.2])
    with pytest.raises(ControllerError, match=r"advantages must be finite.*inf"):
        c.update(archs, [0.1, 0.2, float("inf")])
    bad = list(archs[0])
    bad[0] = 7
    with pytest.raises(ValueError, match=r"7 is not a choice of layer0_kernel"):
        c.update([tuple(bad)], [1.0])
    assert c.updates == 0


def test_update_result_and_loss_is_reinforce():
    """loss = -A * log pi(a) - w * H, with log pi from the sampled choices themselves."""
    space = toy_space(2)
    w = 0.01
    c = Controller(space, seed=0, entropy_weight=w, **SMALL)
    archs = c.sample(4)
    expected_log_probs = [_log_prob(c, a) for a in archs]
    entropy = c.entropy(archs)
    before = c.probabilities(archs)
    adv = np.array([0.5, -0.25, 0.0, 1.0])
    out = c.update(archs, adv)
    # The probabilities it reports are the policy's before the step.
    for got, want in zip(out["probabilities"], before, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert set(out) == {
        "loss", "entropy", "log_prob", "mean_advantage", "probabilities", "updates", "skip_rate",
        "memory_loss",
    }
    assert out["skip_rate"] is None  # The toy space has no skip bits.
    assert out["memory_loss"] is None  # No memory buffer.
    for key in ("loss", "entropy", "log_prob", "mean_advantage"):
        assert math.isfinite(out[key])
    assert out["updates"] == c.updates == 1
    assert math.isclose(out["log_prob"], np.mean(expected_log_probs), rel_tol=1e-4)
    assert math.isclose(out["entropy"], entropy, rel_tol=1e-4)
    assert math.isclose(out["mean_advantage"], adv.mean(), rel_tol=1e-6)
    expected_loss = np.mean(-adv * np.array(expected_log_probs)) - w * entropy
    assert math.isclose(out["loss"], expected_loss, rel_tol=1e-4, abs_tol=1e-6)
    assert out["log_prob"] < 0


@pytest.mark.parametrize("advantage", [1.0, -1.0])
def test_advantage_sign_moves_log_probability(advantage):
    """+A raises log pi(a), -A lowers it (no sign flip for negative rewards). With +A,
    first A = 0 and no entropy bonus must change nothing (no reward-scaled L2 or drift)."""
    space = toy_space(2)
    c = Controller(space, seed=0, entropy_weight=0.0, **SMALL)
    arch = c.sample(1)[0]
    other = (3 if arch[0] == 1 else 1,) + arch[1:]
    if advantage > 0:
        probs_before = c.probabilities([arch, other])
        for _ in range(2):
            out = c.update([arch], [0.0])
            assert out["loss"] == 0.0
        for p, q in zip(probs_before, c.probabilities([arch, other])):
            np.testing.assert_array_equal(p, q)
    before, before_other = _log_prob(c, arch), _log_prob(c, other)
    for _ in range(3):
        c.update([arch], [advantage])
    after, other_after = _log_prob(c, arch), _log_prob(c, other)
    if advantage > 0:
        assert after > before + 0.05
    else:
        assert after < before - 0.05
    # The first choice of `other` differs, so it gains less (or loses less).
    assert (other_after - before_other) * advantage < (after - before) * advantage


def test_entropy_bonus_increases_entropy():
    space = macro_space(3)
    c = Controller(space, seed=0, entropy_weight=1.0, init_range=1.0, learning_rate=0.01, **SMALL)
    archs = c.sample(8)
    start = c.entropy(archs)
    entropies = [c.update(archs, np.zeros(8))["entropy"] for _ in range(15)]
    assert math.isclose(entropies[0], start, rel_tol=1e-4)
    assert c.entropy(archs) > start + 1.0
    assert entropies[-1] > entropies[0]


def test_tanh_constant_caps_preference():
    """Logits in [-C, C]: no choice can have probability above e^C / (e^C + (k-1) e^-C),
    however often an architecture is rewarded."""
    C = 1.0
    space = macro_space(3)
    c = Controller(space, seed=0, tanh_constant=C, learning_rate=0.05, **SMALL)
    arch = c.sample(1)[0]
    for _ in range(100):
        c.update([arch], [1.0])
    probs = c.probabilities([arch])
    for p, d in zip(probs, space.decisions):
        k = len(d.choices)
        bound = math.exp(C) / (math.exp(C) + (k - 1) * math.exp(-C))
        assert float(p.max()) <= bound + 1e-5, (d.key, p, bound)
    # The cap is what stops it: the rewarded ops are pushed right up to the bound.
    op_bound = math.exp(C) / (math.exp(C) + 5 * math.exp(-C))
    for p, d, value in zip(probs, space.decisions, arch):
        if d.kind != SKIP:
            assert p[space.index_of(d, value)] > 0.95 * op_bound, (d.key, p)


# ------------------------------------------------------------------ learning


def _learn(c, target, max_updates, batch=8, threshold=0.9):
    reward = _match_reward(target)
    baseline = EwaBaseline(0.8)
    history = []
    for _ in range(max_updates):
        archs = c.sample(batch)
        rewards = np.array([reward(a) for a in archs])
        base = baseline.value if baseline.value is not None else rewards.mean()
        c.update(archs, rewards - base)
        baseline.update(rewards.mean())
        history.append(rewards.mean())
        if len(history) >= 10 and np.mean(history[-10:]) >= threshold:
            break
    return history


def _wrong_decisions(c, target):
    probs = c.probabilities(c.sample(16))
    space = c.space
    return [
        (d.key, t, np.round(p, 3).tolist())
        for d, p, t in zip(space.decisions, probs, target)
        if p[space.index_of(d, t)] < 0.5
    ]


def test_random_sampling_stays_at_chance():
    space = macro_space(6)
    target = space.sample(np.random.default_rng(0))
    reward = _match_reward(target)
    n_ops = sum(d.kind != SKIP for d in space.decisions)
    n_skips = sum(d.kind == SKIP for d in space.decisions)
    assert (n_ops, n_skips) == (6, 15)
    chance = (n_ops * (1 / 6) + n_skips * 0.5) / (n_ops + n_skips)
    assert math.isclose(chance, 8.5 / 21)
    rewards = [reward(a) for a in space.sample(np.random.default_rng(1), 400)]
    assert abs(np.mean(rewards) - 0.40) <= 0.05
    assert abs(np.mean(rewards) - chance) <= 0.02


def test_controller_learns_toy_target():
    space = toy_space()
    target = space.sample(np.random.default_rng(0))
    c = Controller(space, seed=0, **SMALL)
    history = _learn(c, target, max_updates=150)
    assert np.mean(history[-10:]) >= 0.9, (len(history), history[-10:])
    assert np.mean(history[:5]) < 0.7


def test_controller_learns_macro_target():
    """Synthetic reward = fraction of decisions equal to a hidden macro_space(6)
    architecture; default hyperparameters; baseline = bias-corrected EWA (beta 0.8)
    of the previous batch means. Chance is 8.5/21 = 0.40."""
    space = macro_space(6)
    target = space.sample(np.random.default_rng(0))
    c = Controller(space, seed=0)
    history = _learn(c, target, max_updates=400)
    assert np.mean(history[-10:]) >= 0.9, (
        f"after {len(history)} updates the mean reward of the last 10 is "
        f"{np.mean(history[-10:]):.3f}; decisions still wrong: {_wrong_decisions(c, target)}"
    )


# ------------------------------------------------------------------ save / load


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small controller after two updates, saved; returns (controller, directory)."""
    space = toy_space(2)
    c = Controller(space, seed=5, **SMALL)
    for _ in range(2):
        archs = c.sample(4)
        c.update(archs, [0.5, -0.5, 0.2, -0.2])
    directory = tmp_path_factory.mktemp("controller")
    c.save(str(directory))
    return c, directory


def test_save_writes_files(saved):
    _, directory = saved
    names = sorted(p.name for p in directory.iterdir())
    assert names == ["controller.json", "controller.weights.npz", "optimizer.npz"]
    meta = json.loads((directory / "controller.json").read_text())
    assert meta["space"] == toy_space(2).signature()
    assert meta["state"]["updates"] == 2


def test_save_load_round_trip(saved):
    c, directory = saved
    loaded = Controller.load(str(directory), toy_space(2))
    assert loaded.updates == c.updates == 2
    assert loaded.hparams == c.hparams
    assert loaded.seed == c.seed
    probe = c.sample(6)
    # The sampler's generator was saved: the loaded controller continues where the
    # original was at save time, i.e. it draws `probe` next.
    assert loaded.sample(6) == probe
    for p, q in zip(c.probabilities(probe), loaded.probabilities(probe)):
        np.testing.assert_allclose(p, q, atol=1e-6)
    assert loaded.sample(4) == c.sample(4)
    # Optimizer state came back too: one more identical update keeps them identical.
    archs = c.sample(4)
    assert loaded.sample(4) == archs
    c.update(archs, [1.0, -1.0, 0.5, 0.0])
    loaded.update(archs, [1.0, -1.0, 0.5, 0.0])
    for p, q in zip(c.probabilities(archs), loaded.probabilities(archs)):
        np.testing.assert_allclose(p, q, atol=1e-5)


@pytest.mark.parametrize(
    "other", [toy_space(3), macro_space(2), StateSpace(2).add_state("kernel", [1, 3])]
)
def test_load_for_another_space(saved, other):
    _, directory = saved
    with pytest.raises(ControllerError, match="another search space"):
        Controller.load(str(directory), other)


def _copy(saved, tmp_path):
    target = tmp_path / "ckpt"
    shutil.copytree(saved[1], target)
    return target


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # truncated
        lambda text: "this is not JSON",
        lambda text: "",
        lambda text: "[1, 2, 3]",
        lambda text: json.dumps({"seed": 0}),
    ],
    ids=["truncated", "not-json", "empty", "list", "missing-keys"],
)
def test_damaged_controller_json(saved, tmp_path, damage):
    directory = _copy(saved, tmp_path)
    path = directory / "controller.json"
    path.write_text(damage(path.read_text()))
    with pytest.raises(
        ControllerError, match=r"cannot read controller checkpoint .*controller\.json"
    ):
        Controller.load(str(directory), toy_space(2))


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ControllerError, match="cannot read controller checkpoint"):
        Controller.load(str(tmp_path / "nowhere"), toy_space())


@pytest.mark.parametrize("name", ["controller.weights.npz", "optimizer.npz"])
def test_damaged_weights_or_optimizer(saved, tmp_path, name):
    directory = _copy(saved, tmp_path)
    path = directory / name
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ControllerError, match="cannot load controller checkpoint"):
        Controller.load(str(directory), toy_space(2))


def test_checkpoint_with_other_controller_sizes(saved, tmp_path):
    directory = _copy(saved, tmp_path)
    path = directory / "controller.json"
    meta = json.loads(path.read_text())
    meta["hparams"]["lstm_units"] = 16
    path.write_text(json.dumps(meta))
    with pytest.raises(ControllerError, match="cannot load controller checkpoint"):
        Controller.load(str(directory), toy_space(2))


# ------------------------------------------------------------------ ENAS options


def test_skip_penalty_pulls_the_skip_rate_to_its_target():
    """With rewards that carry no signal, the skip penalty alone moves the skip bits'
    probability towards skip_target, and the reported loss includes it."""
    space = macro_space(4)
    rates = {}
    for target in (0.1, 0.9):
        c = Controller(space, seed=0, skip_weight=1.0, skip_target=target, **SMALL)
        archs = c.sample(8)
        first = c.update(archs, [0.0] * 8)
        assert first["loss"] > 0  # KL > 0 unless the rate is exactly the target.
        for _ in range(40):
            stats = c.update(c.sample(8), [0.0] * 8)
        rates[target] = stats["skip_rate"]
    assert rates[0.1] < 0.3 and rates[0.9] > 0.7, rates


def test_no_skip_penalty_leaves_the_policy_alone_without_rewards():
    c = Controller(macro_space(3), seed=0, entropy_weight=0.0, **SMALL)
    archs = c.sample(6)
    before = c.probabilities(archs)
    c.update(archs, [0.0] * 6)
    for a, b in zip(before, c.probabilities(archs)):
        np.testing.assert_allclose(a, b, atol=1e-7)


def test_entropy_in_the_reward_adds_weight_times_entropy_to_each_advantage():
    """reward_entropy = w: the update uses A + w * H(sample); with A = 0 and w > 0 the
    policy moves, and the reported loss is -(w * H) * log pi averaged."""
    c = Controller(macro_space(3), seed=0, entropy_weight=0.0, reward_entropy=0.5, **SMALL)
    archs = c.sample(6)
    before = c.probabilities(archs)
    log_probs = np.array([_log_prob(c, a) for a in archs])
    entropies = np.array(c._score(archs)[1][:, 1])  # pylint: disable=protected-access
    stats = c.update(archs, [0.0] * 6)
    assert stats["loss"] == pytest.approx(float(np.mean(-0.5 * entropies * log_probs)), rel=1e-4)
    moved = max(np.abs(a - b).max() for a, b in zip(before, c.probabilities(archs)))
    assert moved > 1e-4


@pytest.mark.parametrize(
    "name, value", [("skip_weight", -1.0), ("skip_target", 1.0), ("reward_entropy", -0.1)]
)
def test_bad_enas_options_are_named(name, value):
    with pytest.raises(ControllerError, match=name):
        Controller(toy_space(), **{name: value})
