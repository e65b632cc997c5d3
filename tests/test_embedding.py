"""Search in a learned embedding space (embedding.py)."""

import json
import shutil

import numpy as np
import pytest

import embedding
import state_space


@pytest.mark.parametrize("space", [state_space.toy_space(), state_space.macro_space(6)], ids=["toy", "macro"])
def test_every_decoded_point_is_a_valid_architecture(space):
    autoencoder = embedding.Autoencoder(space, seed=0, latent=6)  # Untrained: any weights.
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(size=(100, 6)) * scale for scale in (0.01, 1.0, 100.0)])
    decoded = autoencoder.decode(points)
    assert len(decoded) == 300
    for architecture in decoded:
        space.validate(architecture)  # Raises for an invalid one.


SETTINGS = {"pretrain_samples": 400, "pretrain_epochs": 25}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A run folder whose autoencoder is trained once for the module's tests."""
    folder = tmp_path_factory.mktemp("pretrained")
    embedding.EmbeddingStrategy(
        state_space.toy_space(3), 0, str(folder), out=lambda line: None, **SETTINGS
    ).save(str(folder / "checkpoint"))
    return folder


def _strategy(tmp_path, pretrained=None, **settings):
    """A strategy in tmp_path, with the module's autoencoder when `pretrained` is given."""
    if pretrained is not None and not (tmp_path / "embedding").exists():
        shutil.copytree(pretrained / "embedding", tmp_path / "embedding")
    return embedding.EmbeddingStrategy(
        state_space.toy_space(3), 0, str(tmp_path), out=lambda line: None, **{**SETTINGS, **settings}
    )


class _Result:
    def __init__(self, reward):
        self.reward = reward


def test_the_autoencoder_reconstructs_and_is_kept_in_the_run_folder(tmp_path):
    run = tmp_path / "run"
    strategy = _strategy(run)
    # Nothing is written before the loop's first checkpoint, made with the run folder
    # locked: a start that fails later (a Ray that cannot be reached) once left an
    # embedding/ folder behind, and every later start refused the folder.
    assert not run.exists()
    strategy.save(str(tmp_path / "checkpoint"))
    tmp_path = run
    report = json.loads((tmp_path / "embedding" / "pretrain.json").read_text())
    assert report["decisions_reconstructed"] >= 0.9
    assert report == {**strategy.pretrain_report, "settings": report["settings"]}
    space = strategy.space
    architectures = space.sample(np.random.default_rng(5), 20)
    codes = strategy.autoencoder.encode(architectures)
    # A second strategy in the same folder reads the autoencoder instead of training one.
    again = _strategy(tmp_path, pretrain_epochs=1)
    np.testing.assert_allclose(again.autoencoder.encode(architectures), codes, rtol=1e-5, atol=1e-6)


def test_the_policy_moves_towards_rewarded_architectures(tmp_path, pretrained):
    strategy = _strategy(tmp_path, pretrained, learning_rate=0.1)
    space = strategy.space

    def share(architectures):  # Architectures whose first layer has kernel 3.
        return np.mean([a[0] == 3 for a in architectures])

    before = share(strategy.propose(200))
    for _ in range(30):
        architectures = strategy.propose(8)
        rewards = [share([a]) - 0.5 for a in architectures]
        strategy.learn(architectures, [_Result(r) for r in rewards])
    after = share(strategy.propose(200))
    assert after > before + 0.2, (before, after)
    assert np.all(strategy.sigma() > 0)
    del space


def test_the_state_round_trips_and_a_resumed_strategy_proposes_the_same(tmp_path, pretrained):
    strategy = _strategy(tmp_path, pretrained)
    for _ in range(2):
        architectures = strategy.propose(4)
        strategy.learn(architectures, [_Result(r) for r in (0.1, -0.2, 0.3, 0.0)])
    pending = strategy.propose(4)  # Proposed, then the process stops before learning.
    strategy.save(str(tmp_path / "checkpoint"))
    state = json.loads(json.dumps(strategy.get_state()))
    resumed = _strategy(tmp_path)
    resumed.load(str(tmp_path / "checkpoint"))
    resumed.set_state(state)
    np.testing.assert_array_equal(resumed.points_of(pending), strategy.points_of(pending))
    results = [_Result(r) for r in (0.2, 0.1, -0.1, 0.0)]
    assert resumed.learn(pending, results) == pytest.approx(strategy.learn(pending, results))
    assert resumed.propose(6) == strategy.propose(6)


def test_architectures_proposed_elsewhere_are_learned_at_their_codes(tmp_path, pretrained):
    strategy = _strategy(tmp_path, pretrained)
    strategy.propose(3)
    others = strategy.space.sample(np.random.default_rng(9), 2)
    np.testing.assert_allclose(
        strategy.points_of(others), strategy.autoencoder.encode(others), rtol=1e-6
    )


def test_bad_settings_are_refused(tmp_path, pretrained):
    with pytest.raises(embedding.EmbeddingError, match="min_sigma must be in"):
        _strategy(tmp_path, pretrained, min_sigma=0.0)
    with pytest.raises(embedding.EmbeddingError, match="unknown embedding setting"):
        _strategy(tmp_path, pretrained, width=3)
