"""Search spaces: which decisions a child network is made of, and their choices.

A `StateSpace` lists per-layer categorical decisions (`add_state`) and, optionally,
skip connections ("anchor points": layer i decides, for each earlier layer j, whether
j's output feeds it). An architecture is a plain hashable tuple of chosen values, one
per decision, in the order of `space.decisions`.

This module is pure Python and NumPy. It must not import Keras or TensorFlow: the
builder of networks lives in `manager.py`, the sampler of architectures in
`controller.py`.
"""

import dataclasses
import math
import re

import numpy as np

CATEGORICAL = "categorical"
SKIP = "skip"

_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclasses.dataclass(frozen=True)
class Decision:
    """One choice the controller makes.

    Attributes:
        layer: index of the layer the decision belongs to.
        name: the state's name (`kernel`, `op`, ...) or `skip<j>` for a skip bit.
        choices: the allowed values, in order; a value's index is its position.
        kind: `categorical` for a state added with `add_state`, `skip` for a skip bit.
        source: for a skip bit, the earlier layer whose output would feed `layer`.
    """

    layer: int
    name: str
    choices: tuple
    kind: str = CATEGORICAL
    source: int = -1

    @property
    def key(self):
        """Column name used in logs, e.g. `layer2_kernel` or `layer3_skip0`."""
        return f"layer{self.layer}_{self.name}"


class StateSpace:
    """A search space of `num_layers` layers.

    Each `add_state(name, values)` adds one categorical decision to every layer.
    `add_skip_connections()` lets each layer i choose which of the layers 0..i-1
    feed it, as one on/off decision per earlier layer.

    Example:
        space = StateSpace(4)
        space.add_state("kernel", [1, 3])
        space.add_state("filters", [16, 32, 64])
        arch = space.sample(np.random.default_rng(0))
    """

    def __init__(self, num_layers):
        if isinstance(num_layers, bool) or not isinstance(num_layers, (int, np.integer)):
            raise ValueError(f"num_layers must be an integer >= 1, got {num_layers!r}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.num_layers = int(num_layers)
        self.states = {}  # name -> tuple of values, in insertion order
        self.skip_connections = False
        self.poisoned = {}  # state name -> frozenset of its poisoned values
        self._decisions = None

    # ---------------------------------------------------------------- definition

    def add_state(self, name, values):
        """Adds a categorical decision `name` with `values` to every layer.

        Args:
            name: identifier (letters, digits, underscore; starting with a letter).
            values: a non-empty sequence of distinct, hashable values (ints, floats,
                strings).

        Returns:
            self, so that definitions can be chained.

        Raises:
            ValueError: empty, reserved or duplicate name; empty, unhashable or
                duplicate values.
        """
        if not isinstance(name, str) or not _NAME_PATTERN.match(name):
            raise ValueError(
                f"state name must be an identifier (letters, digits, _; starting with a letter), "
                f"got {name!r}"
            )
        if re.fullmatch(r"skip\d+", name):
            raise ValueError(
                f"state name {name!r} is reserved for skip connections; choose another"
            )
        if name in self.states:
            raise ValueError(
                f"state {name!r} is already defined; defined states: {list(self.states)}"
            )
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ValueError(f"values of state {name!r} must be a list of choices, got {values!r}")
        values = tuple(_plain(v) for v in values)
        if not values:
            raise ValueError(f"state {name!r} needs at least one value, got none")
        for v in values:
            if not isinstance(v, (bool, int, float, str)):
                raise ValueError(
                    f"value {v!r} of state {name!r} is not allowed: values must be int, float, bool or str"
                )
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"value {v!r} of state {name!r} is not finite")
        seen = set()
        for v in values:
            marker = (type(v) is str, v)
            if marker in seen:
                raise ValueError(f"state {name!r} lists value {v!r} twice; values must be distinct")
            seen.add(marker)
        self.states[name] = values
        self._decisions = None
        return self

    def add_skip_connections(self):
        """Lets every layer i > 0 choose, for each earlier layer j, whether j feeds it.

        Returns:
            self.

        Raises:
            ValueError: if skip connections were already added.
        """
        if self.skip_connections:
            raise ValueError("skip connections are already added to this space")
        self.skip_connections = True
        self._decisions = None
        return self

    def mark_poisoned(self, name, values):
        """Records that `values` of state `name` are poisoned (degraded) choices.

        `poisoning.poison` marks the ops it injects; a space of your own can mark its
        own bad choices. Marks only feed the metrics (`poisoned_layers`,
        `poison_prior`, the `poisoned_layers` column of history.csv): no sampler sees
        them.

        Returns:
            self.

        Raises:
            ValueError: unknown state, or a value that is not one of its choices.
        """
        if name not in self.states:
            raise ValueError(f"unknown state {name!r}; defined states: {list(self.states)}")
        values = tuple(_plain(v) for v in values)
        choices = self.states[name]
        for v in values:
            if not any(_same(c, v) for c in choices):
                raise ValueError(
                    f"{v!r} is not a choice of state {name!r}; allowed: {list(choices)}"
                )
        marked = set(self.poisoned.get(name, ())) | set(values)
        if marked:
            self.poisoned[name] = frozenset(marked)
        return self

    # ---------------------------------------------------------------- queries

    @property
    def decisions(self):
        """All decisions in sampling order: per layer, its states, then its skip bits."""
        if self._decisions is None:
            decisions = []
            for layer in range(self.num_layers):
                for name, values in self.states.items():
                    decisions.append(Decision(layer, name, values))
                if self.skip_connections:
                    for source in range(layer):
                        decisions.append(Decision(layer, f"skip{source}", (0, 1), SKIP, source))
            self._decisions = tuple(decisions)
        return self._decisions

    def __len__(self):
        return len(self.decisions)

    @property
    def num_architectures(self):
        """The number of distinct architectures (a Python int; it can be huge)."""
        self._check_defined()
        return math.prod(len(d.choices) for d in self.decisions)

    def index_of(self, decision, value):
        """Returns the index of `value` among `decision`'s choices.

        Raises:
            ValueError: if the value is not one of the choices.
        """
        for i, choice in enumerate(decision.choices):
            if _same(choice, value):
                return i
        raise ValueError(
            f"{value!r} is not a choice of {decision.key}; allowed: {list(decision.choices)}"
        )

    def encode(self, architecture):
        """Architecture (values) -> tuple of choice indices."""
        self.validate(architecture)
        return tuple(self.index_of(d, v) for d, v in zip(self.decisions, architecture))

    def decode(self, indices):
        """Tuple of choice indices -> architecture (values).

        Raises:
            ValueError: wrong length or an index out of range.
        """
        self._check_defined()
        indices = tuple(indices)
        if len(indices) != len(self.decisions):
            raise ValueError(
                f"expected {len(self.decisions)} indices, one per decision, got {len(indices)}"
            )
        values = []
        for decision, index in zip(self.decisions, indices):
            if isinstance(index, (bool, np.bool_)) or int(index) != index:
                raise ValueError(f"index {index!r} of {decision.key} is not an integer")
            index = int(index)
            if not 0 <= index < len(decision.choices):
                raise ValueError(
                    f"index {index} is out of range for {decision.key}; "
                    f"allowed: 0..{len(decision.choices) - 1}"
                )
            values.append(decision.choices[index])
        return tuple(values)

    def validate(self, architecture):
        """Raises ValueError unless `architecture` is a tuple of allowed values."""
        self._check_defined()
        if not isinstance(architecture, (tuple, list)):
            raise ValueError(f"an architecture is a tuple of values, got {architecture!r}")
        if len(architecture) != len(self.decisions):
            raise ValueError(
                f"expected {len(self.decisions)} values, one per decision, got {len(architecture)}"
            )
        for decision, value in zip(self.decisions, architecture):
            self.index_of(decision, value)

    def sample(self, rng, n=None):
        """Samples uniformly at random.

        Args:
            rng: a `numpy.random.Generator`; the only source of randomness.
            n: number of architectures, or None for a single one.

        Returns:
            One architecture, or a list of n architectures.
        """
        self._check_defined()
        if n is not None and (isinstance(n, bool) or int(n) != n or n < 0):
            raise ValueError(f"sample(rng, n) needs an integer n >= 0, got {n!r}")
        count = 1 if n is None else int(n)
        archs = []
        for _ in range(count):
            indices = [rng.integers(len(d.choices)) for d in self.decisions]
            archs.append(self.decode(indices))
        return archs[0] if n is None else archs

    def layers(self, architecture):
        """Per-layer view: a list with one dict per layer.

        Each dict maps the state names to the chosen values and, if the space has
        skip connections, `"inputs"` to the tuple of earlier layers that feed it.
        """
        self.validate(architecture)
        view = [{} for _ in range(self.num_layers)]
        if self.skip_connections:
            for layer_view in view:
                layer_view["inputs"] = ()
        for decision, value in zip(self.decisions, architecture):
            layer_view = view[decision.layer]
            if decision.kind == SKIP:
                if value:
                    layer_view["inputs"] = layer_view["inputs"] + (decision.source,)
            else:
                layer_view[decision.name] = value
        return view

    def poisoned_layers(self, architecture):
        """How many layers of `architecture` chose a poisoned value (a layer counts once)."""
        if not self.poisoned:
            self.validate(architecture)
            return 0
        return sum(
            any(layer.get(name) in values for name, values in self.poisoned.items())
            for layer in self.layers(architecture)
        )

    def poison_prior(self):
        """The fraction of poisoned layers a uniform sampler has, on average:
        k / (n + k) for one state of n clean and k poisoned choices."""
        clean = 1.0
        for name, values in self.poisoned.items():
            clean *= 1.0 - len(values) / len(self.states[name])
        return 1.0 - clean

    def format(self, architecture):
        """A short readable string, one `|`-separated group per layer."""
        parts = []
        for layer_view in self.layers(architecture):
            items = [f"{k}={v}" for k, v in layer_view.items() if k != "inputs"]
            if self.skip_connections and layer_view["inputs"]:
                items.append("in=" + "+".join(str(j) for j in layer_view["inputs"]))
            parts.append(" ".join(items))
        return " | ".join(parts)

    def signature(self):
        """A JSON-serializable description, used to check that saved state matches."""
        return {
            "num_layers": self.num_layers,
            "states": {name: list(values) for name, values in self.states.items()},
            "skip_connections": self.skip_connections,
            **(
                {"poisoned": {n: sorted(v, key=str) for n, v in self.poisoned.items()}}
                if self.poisoned
                else {}
            ),
        }

    def __repr__(self):
        states = ", ".join(f"{n}={list(v)}" for n, v in self.states.items())
        skips = ", skip connections" if self.skip_connections else ""
        return f"StateSpace({self.num_layers} layers: {states}{skips})"

    def describe(self):
        """A multi-line table of the decisions, for printing to users."""
        lines = [
            repr(self),
            f"  {len(self.decisions)} decisions, " f"{self.num_architectures:,} architectures",
        ]
        for name, values in self.states.items():
            if name in self.poisoned:
                bad = self.poisoned[name]
                clean = [v for v in values if v not in bad]
                lines.append(f"  {name:<12} {clean}")
                lines.append(
                    f"  {'':<12} + {len(bad)} poisoned: {_grouped(values, bad)}; "
                    f"uniform poison rate {self.poison_prior():.3f}"
                )
            else:
                lines.append(f"  {name:<12} {list(values)}")
        if self.skip_connections:
            lines.append("  skip         layer i may take the output of any layer j < i")
        return "\n".join(lines)

    def _check_defined(self):
        if not self.decisions:
            raise ValueError("the state space has no decisions; call add_state(name, values) first")


def _grouped(values, subset):
    """`a#1, a#2, b` -> `a x2, b`: copies of one op (separator `#`) counted."""
    counts = {}
    for v in values:
        if v in subset:
            base = str(v).split("#", 1)[0]
            counts[base] = counts.get(base, 0) + 1
    return ", ".join(f"{b} x{n}" if n > 1 else b for b, n in counts.items())


def _plain(value):
    """NumPy scalars -> Python scalars, so that values print and serialize cleanly."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _same(a, b):
    """Equality that keeps 1 and '1' apart but lets 3 == 3.0 == np.int64(3)."""
    if isinstance(a, str) != isinstance(b, str):
        return False
    try:
        return bool(a == b)
    except Exception:  # pylint: disable=broad-except
        return False


# ------------------------------------------------------------------ built-in spaces

MACRO_OPS = ("conv3x3", "conv5x5", "sepconv3x3", "sepconv5x5", "maxpool3x3", "avgpool3x3")


def toy_space(num_layers=4):
    """The classic space of the small Keras implementation (REFERENCES §2).

    Four layers, each a convolution with kernel {1, 3} and filters {16, 32, 64}:
    (2 * 3) ** 4 = 1,296 architectures.
    """
    space = StateSpace(num_layers)
    space.add_state("kernel", [1, 3])
    space.add_state("filters", [16, 32, 64])
    return space


def macro_space(num_layers=6):
    """The ENAS macro space (REFERENCES §3): one of six ops per layer plus skip bits.

    For 12 layers (the paper) that is 6**12 * 2**66, about 1.6e29 architectures.
    """
    space = StateSpace(num_layers)
    space.add_state("op", MACRO_OPS)
    space.add_skip_connections()
    return space
