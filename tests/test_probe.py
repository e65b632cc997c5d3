"""The hidden-state probe (probe.py): distances, the Mantel test, run folders."""

import dataclasses
import json

import numpy as np
import pytest

import config as config_lib
import probe
import state_space


def _one_hot(space, architectures):
    sizes = [len(d.choices) for d in space.decisions]
    rows = []
    for a in architectures:
        row = []
        for size, index in zip(sizes, space.encode(a)):
            row += [1.0 if i == index else 0.0 for i in range(size)]
        rows.append(row)
    return np.array(rows)


def test_correlation_is_near_1_when_hidden_states_encode_the_architecture_and_near_0_shuffled():
    space = state_space.macro_space(4)
    architectures = space.sample(np.random.default_rng(0), 40)
    hidden = _one_hot(space, architectures)  # Euclidean distance = sqrt(2 x Hamming).
    table = probe.correlate(hidden, architectures, space, permutations=199)
    assert table["hamming"]["spearman"] == pytest.approx(1.0, abs=1e-9)
    assert table["hamming"]["p"] == pytest.approx(1 / 200)
    assert table["hamming"]["pairs"] == 40 * 39 // 2
    shuffled = hidden[np.random.default_rng(1).permutation(len(hidden))]
    table = probe.correlate(shuffled, architectures, space, permutations=199)
    assert abs(table["hamming"]["spearman"]) < 0.1
    assert table["hamming"]["p"] > 0.05


def test_fitness_correlation_uses_the_difference_in_fitness():
    space = state_space.toy_space(3)
    architectures = space.sample(np.random.default_rng(2), 30)
    fitness = np.random.default_rng(3).uniform(size=30)
    hidden = np.stack([fitness, np.zeros(30)], axis=1)  # Hidden distance = |fitness difference|.
    table = probe.correlate(hidden, architectures, space, fitness=fitness, permutations=99)
    assert table["fitness"]["spearman"] == pytest.approx(1.0)
    assert "paths" not in table  # The toy space has no skip connections.


def test_paths_follow_the_ops_and_the_skip_connections():
    space = state_space.macro_space(3)
    # Layer 0 conv3x3; layer 1 maxpool3x3 with a skip from 0; layer 2 conv5x5 with skips
    # from 0 and 1 (decisions: op0, op1, skip1<-0, op2, skip2<-0, skip2<-1).
    architecture = ("conv3x3", "maxpool3x3", 1, "conv5x5", 1, 0)
    assert probe.paths(space, architecture) == {
        ("conv3x3", "maxpool3x3", "conv5x5"),  # The chain.
        ("conv3x3", "conv5x5"),  # Layer 0 into layer 1 by its skip, then layer 2's op.
        ("conv3x3",),  # Layer 0 into layer 2 by its skip.
    }
    chain = ("conv3x3", "maxpool3x3", 0, "conv5x5", 0, 0)
    distance = probe.path_distance(space, [architecture, chain])
    assert distance.tolist() == [2.0]


def test_mantel_refuses_vectors_of_different_lengths():
    with pytest.raises(ValueError, match="same length"):
        probe.mantel([1, 2, 3], [1, 2], permutations=9)


def test_the_probe_refuses_a_run_without_a_controller(tmp_path):
    random_run = tmp_path / "random"  # A random search's folder, as far as the probe reads it.
    random_run.mkdir()
    config = config_lib.SearchConfig(strategy="random", run_name="random").resolved()
    (random_run / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
    with pytest.raises(probe.ProbeError, match="--strategy=random run; the probe reads a controller"):
        probe.probe(str(random_run))
    with pytest.raises(config_lib.ConfigError, match="no config.json"):
        probe.probe(str(tmp_path))


@pytest.mark.parametrize("space", [state_space.toy_space(2), state_space.macro_space(3)], ids=["toy", "macro"])
def test_the_hidden_state_has_seen_every_decision(space):
    import controller as controller_lib

    c = controller_lib.Controller(space, seed=0)
    first = space.sample(np.random.default_rng(0))
    last = space.decisions[-1]
    other = first[:-1] + (next(v for v in last.choices if v != first[-1]),)
    hidden = c.hidden_states([first, other, first])
    assert hidden.shape == (3, c.hparams["lstm_units"])
    assert not np.allclose(hidden[0], hidden[1])  # Only the last decision differs.
    np.testing.assert_allclose(hidden[0], hidden[2], rtol=1e-6)
