"""Tests for state_space.py: definitions, counts, encoding, sampling, views and errors."""

import json
import math
import re

import numpy as np
import pytest

from state_space import (
    CATEGORICAL,
    MACRO_OPS,
    SKIP,
    Decision,
    StateSpace,
    macro_space,
    toy_space,
)

# ---------------------------------------------------------------- built-in spaces


def test_toy_space_counts_and_decisions():
    space = toy_space()
    assert space.num_layers == 4
    assert space.num_architectures == 1296 == (2 * 3) ** 4
    assert len(space) == len(space.decisions) == 8
    assert [(d.layer, d.name) for d in space.decisions] == [
        (layer, name) for layer in range(4) for name in ("kernel", "filters")
    ]
    for d in space.decisions:
        assert d.kind == CATEGORICAL
        assert d.choices == ((1, 3) if d.name == "kernel" else (16, 32, 64))
    assert space.decisions[3].key == "layer1_filters"
    assert "1,296 architectures" in space.describe()


def test_macro_space_12_layers_counts():
    space = macro_space(12)
    assert space.num_architectures == 6**12 * 2**66
    assert len(space.decisions) == 12 + 66
    assert f"{6**12 * 2**66:,}" in space.describe()


def test_macro_space_decision_order():
    space = macro_space(5)
    expected = []
    for layer in range(5):
        expected.append(Decision(layer, "op", MACRO_OPS))
        for j in range(layer):
            expected.append(Decision(layer, f"skip{j}", (0, 1), SKIP, j))
    assert list(space.decisions) == expected
    assert space.decisions[0].source == -1
    skips = [d for d in space.decisions if d.kind == SKIP]
    assert [d.key for d in skips[:3]] == ["layer1_skip0", "layer2_skip0", "layer2_skip1"]
    assert all(d.choices == (0, 1) and d.source < d.layer for d in skips)


def test_decisions_are_cached_and_invalidated():
    space = StateSpace(2).add_state("a", [1, 2])
    assert len(space.decisions) == 2
    assert space.add_state("b", ["x", "y", "z"]) is space
    assert len(space.decisions) == 4 and space.num_architectures == 36
    assert space.add_skip_connections() is space
    assert len(space.decisions) == 5 and space.num_architectures == 72


def test_decision_is_frozen():
    d = toy_space().decisions[0]
    with pytest.raises(Exception):
        d.layer = 3  # noqa


# ---------------------------------------------------------------- encode / decode


def test_encode_decode_round_trip_for_samples():
    rng = np.random.default_rng(1)
    for space in (toy_space(), macro_space(6)):
        for arch in space.sample(rng, 50):
            indices = space.encode(arch)
            assert all(isinstance(i, int) for i in indices)
            assert space.decode(indices) == arch
            assert space.encode(space.decode(indices)) == indices


def test_decode_known_values():
    space = toy_space()
    assert space.decode((0, 0, 1, 1, 0, 2, 1, 2)) == (1, 16, 3, 32, 1, 64, 3, 64)
    assert space.decode(np.array([1, 2, 0, 0, 1, 1, 0, 0])) == (3, 64, 1, 16, 3, 32, 1, 16)
    assert space.encode([3, 64, 1, 16, 3, 32, 1, 16]) == (1, 2, 0, 0, 1, 1, 0, 0)


def test_numeric_equality_but_strings_kept_apart():
    space = StateSpace(1).add_state("k", [1, 3]).add_state("s", [1, "1"])
    assert space.encode((3.0, "1")) == (1, 1)
    assert space.encode((np.int64(3), 1)) == (1, 0)
    with pytest.raises(ValueError, match=r"'3' is not a choice of layer0_k"):
        space.encode(("3", 1))


def test_numpy_values_become_python_scalars():
    space = StateSpace(2).add_state("k", np.array([1, 3])).add_state("r", np.array([0.5, 0.25]))
    assert all(type(v) is int for v in space.states["k"])
    assert all(type(v) is float for v in space.states["r"])
    json.dumps(space.signature())
    arch = space.sample(np.random.default_rng(0))
    assert all(type(v) in (int, float) for v in arch)


def test_validate_accepts_tuples_and_lists():
    space = toy_space()
    space.validate((1, 16, 3, 32, 1, 64, 3, 64))
    space.validate([1, 16, 3, 32, 1, 64, 3, 64])


# ---------------------------------------------------------------- sampling


def test_sample_single_and_many():
    space = toy_space()
    one = space.sample(np.random.default_rng(0))
    assert isinstance(one, tuple) and len(one) == 8
    space.validate(one)
    many = space.sample(np.random.default_rng(0), 5)
    assert isinstance(many, list) and len(many) == 5
    assert all(isinstance(a, tuple) for a in many)
    for a in many:
        space.validate(a)
    one_list = space.sample(np.random.default_rng(0), 1)
    assert isinstance(one_list, list) and len(one_list) == 1
    assert one_list[0] == one == many[0]


def test_sampling_is_deterministic_per_seed():
    space = macro_space(6)
    a = space.sample(np.random.default_rng(42), 20)
    b = space.sample(np.random.default_rng(42), 20)
    c = space.sample(np.random.default_rng(43), 20)
    assert a == b
    assert a != c


def test_sampling_does_not_touch_global_numpy_seed():
    space = toy_space()
    np.random.seed(5)
    first = space.sample(np.random.default_rng(0), 3)
    np.random.seed(6)
    assert space.sample(np.random.default_rng(0), 3) == first


def test_sampling_is_roughly_uniform():
    space = toy_space()
    archs = space.sample(np.random.default_rng(0), 3000)
    values = np.array(archs)
    for column, decision in enumerate(space.decisions):
        counts = np.array([(values[:, column] == v).sum() for v in decision.choices])
        freqs = counts / len(archs)
        k = len(decision.choices)
        assert np.all(np.abs(freqs - 1 / k) <= 0.05), (decision.key, freqs)
        # Pearson chi-square against its 0.999 quantile (10.83 for 1 dof, 13.82 for 2).
        expected = len(archs) / k
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < {2: 10.83, 3: 13.82}[k], (decision.key, chi2)
    kernel0 = values[:, 0]
    assert 0.45 <= np.mean(kernel0 == 1) <= 0.55
    # Many distinct architectures: 3000 draws from 1296 equiprobable ones.
    assert len(set(archs)) > 1000


def test_skip_bits_are_sampled_uniformly():
    space = macro_space(4)
    archs = space.sample(np.random.default_rng(3), 2000)
    skip_cols = [i for i, d in enumerate(space.decisions) if d.kind == SKIP]
    rate = np.mean([[a[i] for i in skip_cols] for a in archs])
    assert 0.47 <= rate <= 0.53


def test_architectures_are_hashable():
    space = macro_space(4)
    archs = space.sample(np.random.default_rng(0), 30)
    table = {a: i for i, a in enumerate(archs)}
    assert len(table) == len(set(archs))
    assert hash(archs[0]) == hash(tuple(archs[0]))
    assert space.decode(space.encode(archs[0])) in table


# ---------------------------------------------------------------- views


def test_layers_view_toy():
    space = toy_space()
    arch = (1, 16, 3, 32, 1, 64, 3, 64)
    assert space.layers(arch) == [
        {"kernel": 1, "filters": 16},
        {"kernel": 3, "filters": 32},
        {"kernel": 1, "filters": 64},
        {"kernel": 3, "filters": 64},
    ]


def test_layers_view_with_skips():
    space = macro_space(4)
    # layer0: op; layer1: op, s0; layer2: op, s0, s1; layer3: op, s0, s1, s2
    arch = ("conv3x3", "conv5x5", 1, "maxpool3x3", 0, 0, "avgpool3x3", 1, 0, 1)
    view = space.layers(arch)
    assert view == [
        {"inputs": (), "op": "conv3x3"},
        {"inputs": (0,), "op": "conv5x5"},
        {"inputs": (), "op": "maxpool3x3"},
        {"inputs": (0, 2), "op": "avgpool3x3"},
    ]
    assert all("skip0" not in layer for layer in view)


def test_format_is_readable():
    assert toy_space().format((1, 16, 3, 32, 1, 64, 3, 64)) == (
        "kernel=1 filters=16 | kernel=3 filters=32 | kernel=1 filters=64 | kernel=3 filters=64"
    )
    space = macro_space(4)
    arch = ("conv3x3", "conv5x5", 1, "maxpool3x3", 0, 0, "avgpool3x3", 1, 0, 1)
    assert space.format(arch) == (
        "op=conv3x3 | op=conv5x5 in=0 | op=maxpool3x3 | op=avgpool3x3 in=0+2"
    )


def test_format_validates():
    with pytest.raises(ValueError, match="expected 8 values"):
        toy_space().format((1, 16))


def test_signature_is_json_serializable_and_distinguishes_spaces():
    sig = macro_space(6).signature()
    text = json.dumps(sig)
    assert json.loads(text) == {
        "num_layers": 6,
        "states": {"op": list(MACRO_OPS)},
        "skip_connections": True,
    }
    assert toy_space().signature() == toy_space().signature()
    assert toy_space().signature() != toy_space(3).signature()
    assert macro_space(4).signature() != StateSpace(4).add_state("op", MACRO_OPS).signature()
    json.dumps(toy_space().signature())


def test_repr_and_describe():
    space = macro_space(3)
    assert repr(space) == f"StateSpace(3 layers: op={list(MACRO_OPS)}, skip connections)"
    text = space.describe()
    assert "6 decisions" in text and f"{6**3 * 2**3:,} architectures" in text


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [0, -2])
def test_num_layers_below_one(bad):
    with pytest.raises(ValueError, match=rf"num_layers must be >= 1, got {bad}"):
        StateSpace(bad)


@pytest.mark.parametrize("bad", [2.0, "3", None, True, False, np.bool_(True), [2]])
def test_num_layers_not_an_integer(bad):
    with pytest.raises(ValueError, match=rf"num_layers must be an integer.*{re.escape(repr(bad))}"):
        StateSpace(bad)


def test_num_layers_numpy_integer_ok():
    space = StateSpace(np.int64(3))
    assert space.num_layers == 3 and type(space.num_layers) is int


@pytest.mark.parametrize("bad", ["", "1abc", "a-b", "_x", "has space", "kernel!", None, 3])
def test_bad_state_name(bad):
    with pytest.raises(ValueError, match=rf"identifier.*{re.escape(repr(bad))}"):
        StateSpace(2).add_state(bad, [1, 2])


@pytest.mark.parametrize("name", ["skip0", "skip3", "skip12"])
def test_reserved_state_name(name):
    with pytest.raises(ValueError, match=rf"'{name}' is reserved"):
        StateSpace(2).add_state(name, [1, 2])


def test_names_close_to_reserved_are_fine():
    space = (
        StateSpace(2).add_state("skip", [1, 2]).add_state("skipper", [1]).add_state("skip1a", [1])
    )
    assert list(space.states) == ["skip", "skipper", "skip1a"]


def test_duplicate_state_name():
    space = toy_space()
    with pytest.raises(ValueError, match=r"'kernel' is already defined"):
        space.add_state("kernel", [5, 7])
    assert space.states["kernel"] == (1, 3)


@pytest.mark.parametrize("values", [[], (), np.array([])])
def test_empty_values(values):
    with pytest.raises(ValueError, match=r"state 'k' needs at least one value"):
        StateSpace(2).add_state("k", values)


@pytest.mark.parametrize(
    "values, shown",
    [([1, 3, 1], "1"), ([3, 3.0], "3.0"), (["a", "b", "a"], "'a'"), ([0, False], "False")],
)
def test_duplicate_values(values, shown):
    with pytest.raises(ValueError, match=rf"state 'k' lists value {re.escape(shown)} twice"):
        StateSpace(2).add_state("k", values)


@pytest.mark.parametrize(
    "values, shown",
    [
        ([1, [2, 3]], "[2, 3]"),
        ([{"a": 1}], "{'a': 1}"),
        ([None, 1], "None"),
        ([(1, 2)], "(1, 2)"),
        ([1, {2}], "{2}"),
    ],
)
def test_unhashable_or_unsupported_values(values, shown):
    with pytest.raises(ValueError, match=rf"value {re.escape(shown)} of state 'k' is not allowed"):
        StateSpace(2).add_state("k", values)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), np.float32("nan")])
def test_non_finite_values(bad):
    with pytest.raises(
        ValueError, match=rf"value {re.escape(repr(float(bad)))} of state 'k' is not finite"
    ):
        StateSpace(2).add_state("k", [1.0, bad])


@pytest.mark.parametrize("values", ["abc", b"ab", 5, None])
def test_values_not_a_list(values):
    with pytest.raises(
        ValueError, match=rf"values of state 'k' must be a list.*{re.escape(repr(values))}"
    ):
        StateSpace(2).add_state("k", values)


def test_failed_add_state_leaves_space_unchanged():
    space = toy_space()
    with pytest.raises(ValueError):
        space.add_state("strides", [1, float("nan")])
    assert list(space.states) == ["kernel", "filters"]
    assert len(space.decisions) == 8


def test_skip_connections_added_twice():
    space = macro_space(3)
    with pytest.raises(ValueError, match="skip connections are already added"):
        space.add_skip_connections()


def test_unknown_value_in_encode_and_validate():
    space = toy_space()
    arch = [1, 16, 3, 32, 1, 64, 3, 64]
    arch[2] = 5
    for method in (space.encode, space.validate, space.layers):
        with pytest.raises(
            ValueError, match=r"5 is not a choice of layer1_kernel; allowed: \[1, 3\]"
        ):
            method(tuple(arch))
    skip_space = macro_space(2)
    with pytest.raises(ValueError, match=r"2 is not a choice of layer1_skip0; allowed: \[0, 1\]"):
        skip_space.validate(("conv3x3", "conv3x3", 2))
    with pytest.raises(ValueError, match=r"'conv7x7' is not a choice of layer0_op"):
        skip_space.encode(("conv7x7", "conv3x3", 0))
    with pytest.raises(ValueError, match=r"'1' is not a choice of layer0_kernel"):
        space.index_of(space.decisions[0], "1")


@pytest.mark.parametrize("length", [0, 7, 9])
def test_wrong_length_architecture(length):
    space = toy_space()
    arch = tuple([1, 16] * 5)[:length]
    for method in (space.encode, space.validate):
        with pytest.raises(ValueError, match=rf"expected 8 values, one per decision, got {length}"):
            method(arch)


@pytest.mark.parametrize("bad", [None, 5, "kernel", {1: 2}])
def test_architecture_not_a_sequence(bad):
    with pytest.raises(
        ValueError, match=rf"an architecture is a tuple of values, got {re.escape(repr(bad))}"
    ):
        toy_space().validate(bad)


@pytest.mark.parametrize(
    "indices, message",
    [
        ((2, 0, 0, 0, 0, 0, 0, 0), r"index 2 is out of range for layer0_kernel; allowed: 0\.\.1"),
        ((0, 3, 0, 0, 0, 0, 0, 0), r"index 3 is out of range for layer0_filters; allowed: 0\.\.2"),
        ((0, 0, 0, 0, 0, 0, -1, 0), r"index -1 is out of range for layer3_kernel"),
        ((0,) * 7, r"expected 8 indices, one per decision, got 7"),
        ((0,) * 9, r"expected 8 indices, one per decision, got 9"),
    ],
)
def test_decode_errors(indices, message):
    with pytest.raises(ValueError, match=message):
        toy_space().decode(indices)


def test_space_with_no_decisions():
    space = StateSpace(3)
    assert len(space.decisions) == 0
    with pytest.raises(ValueError, match="no decisions"):
        space.num_architectures
    with pytest.raises(ValueError, match="no decisions"):
        space.sample(np.random.default_rng(0))
    with pytest.raises(ValueError, match="no decisions"):
        space.decode(())
    with pytest.raises(ValueError, match="no decisions"):
        space.validate(())
    with pytest.raises(ValueError, match="no decisions"):
        space.encode(())


def test_single_layer_skip_only_space_has_no_decisions():
    """BUG: one layer + skip connections and no states has zero decisions, yet
    `_check_defined` only looks at `states`/`skip_connections`, so it reports
    1 architecture, samples the empty tuple and lets a Controller crash later with
    an IndexError instead of a clear ValueError."""
    space = StateSpace(1).add_skip_connections()
    assert len(space.decisions) == 0
    with pytest.raises(ValueError, match="no decisions"):
        space.num_architectures
    with pytest.raises(ValueError, match="no decisions"):
        space.sample(np.random.default_rng(0))


def test_skip_only_space_with_several_layers_is_valid():
    space = StateSpace(3).add_skip_connections()
    assert space.num_architectures == 2**3
    assert [d.key for d in space.decisions] == ["layer1_skip0", "layer2_skip0", "layer2_skip1"]
    arch = space.sample(np.random.default_rng(0))
    assert space.layers(arch)[0] == {"inputs": ()}


# ---------------------------------------------------------------- property-based tests

try:
    import hypothesis
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - exercised only where hypothesis is missing
    hypothesis = None


def _value_key(v):
    return (type(v) is str, v)


if hypothesis is not None:
    _names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
        lambda n: not re.fullmatch(r"skip\d+", n)
    )
    _values = st.lists(
        st.one_of(
            st.integers(-1000, 1000),
            st.floats(allow_nan=False, allow_infinity=False, width=32),
            st.text(min_size=1, max_size=5),
            st.booleans(),
        ),
        min_size=1,
        max_size=5,
        unique_by=_value_key,
    )
    _definitions = st.tuples(
        st.integers(1, 5),
        st.dictionaries(_names, _values, min_size=1, max_size=3),
        st.booleans(),
    )

    def _build(definition):
        num_layers, states, skips = definition
        space = StateSpace(num_layers)
        for name, values in states.items():
            space.add_state(name, values)
        if skips:
            space.add_skip_connections()
        return space

    @settings(max_examples=60, deadline=None)
    @given(_definitions, st.integers(0, 2**32 - 1))
    def test_property_counts_and_round_trip(definition, seed):
        num_layers, states, skips = definition
        space = _build(definition)
        sizes = [len(d.choices) for d in space.decisions]
        assert space.num_architectures == math.prod(sizes)
        expected_len = num_layers * len(states) + (
            num_layers * (num_layers - 1) // 2 if skips else 0
        )
        assert len(space.decisions) == expected_len
        rng = np.random.default_rng(seed)
        for arch in space.sample(rng, 5):
            space.validate(arch)
            assert space.decode(space.encode(arch)) == arch
            hash(arch)
            assert len(space.layers(arch)) == num_layers
            space.format(arch)
        indices = tuple(int(rng.integers(k)) for k in sizes)
        assert space.encode(space.decode(indices)) == indices
        assert json.loads(json.dumps(space.signature()))["num_layers"] == num_layers

    @settings(max_examples=40, deadline=None)
    @given(_definitions, st.data())
    def test_property_out_of_range_index_rejected(definition, data):
        space = _build(definition)
        sizes = [len(d.choices) for d in space.decisions]
        position = data.draw(st.integers(0, len(sizes) - 1))
        bad = data.draw(
            st.one_of(st.integers(sizes[position], sizes[position] + 5), st.integers(-5, -1))
        )
        indices = [0] * len(sizes)
        indices[position] = bad
        key = space.decisions[position].key
        with pytest.raises(ValueError, match=rf"index {bad} is out of range for {key}"):
            space.decode(indices)

else:

    def test_property_based_tests_need_hypothesis():
        pytest.importorskip("hypothesis")
