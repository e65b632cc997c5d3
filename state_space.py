"""Search spaces: which decisions a child network is made of, and their choices.

A `StateSpace` lists per-layer categorical decisions (`add_state`) and, optionally,
skip connections ("anchor points": layer i decides, for each earlier layer j, whether
j's output feeds it). An architecture is a plain hashable tuple of chosen values, one
per decision, in the order of `space.decisions`.

This module is pure Python and NumPy. It must not import Keras or TensorFlow: the
builders of networks live in `templates.py`, the sampler of architectures in
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
    label: str = ""  # A space's own name for the decision (NB201: `edge_0_1`), or "".

    @property
    def key(self):
        """Column name used in logs, e.g. `layer2_kernel`, `layer3_skip0` or `edge_1_3`."""
        return self.label or f"layer{self.layer}_{self.name}"


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
        self._maps = None  # (decisions, per decision {(is str, value): index}): fast lookups

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
        return tuple(self._indices(architecture))

    def _indices(self, architecture):
        """The choice indices of an architecture of the right length: a dict lookup
        per decision (searches with free rewards validate every trial several times);
        `index_of` for what the dicts do not answer (unhashable values, errors)."""
        decisions = self.decisions
        if self._maps is None or self._maps[0] is not decisions:
            maps = []
            for d in decisions:
                m = {}
                for i, c in enumerate(d.choices):
                    m.setdefault((isinstance(c, str), c), i)
                maps.append(m)
            self._maps = (decisions, maps)
        indices = []
        for decision, m, value in zip(decisions, self._maps[1], architecture):
            try:
                index = m.get((isinstance(value, str), value))
            except TypeError:  # Unhashable.
                index = None
            indices.append(self.index_of(decision, value) if index is None else index)
        return indices

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
        self._indices(architecture)

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

    def empty_copy(self):
        """A space of the same kind and size with no decisions yet (poisoning.py
        rebuilds spaces with it, so an NB201 cell stays one)."""
        return StateSpace(self.num_layers)

    def _check_defined(self):
        if not self.decisions:
            raise ValueError("the state space has no decisions; call add_state(name, values) first")


# A choice `name#i` is the i-th copy of op `name` (multiple-instance poisoning,
# `poisoning.poison`): the controller tells the copies apart, the builder and the
# benchmark table do not.
INSTANCE_SEPARATOR = "#"


def op_of(choice):
    """The op a choice of an `op` decision stands for: `dropout1.0#3` -> `dropout1.0`."""
    return str(choice).split(INSTANCE_SEPARATOR, 1)[0]


def _grouped(values, subset):
    """`a#1, a#2, b` -> `a x2, b`: copies of one op (separator `#`) counted."""
    counts = {}
    for v in values:
        if v in subset:
            base = op_of(v)
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
    """The classic space of the small Keras implementation (titu1994/neural-architecture-search).

    Four layers, each a convolution with kernel {1, 3} and filters {16, 32, 64}:
    (2 * 3) ** 4 = 1,296 architectures.
    """
    space = StateSpace(num_layers)
    space.add_state("kernel", [1, 3])
    space.add_state("filters", [16, 32, 64])
    return space


def macro_space(num_layers=6):
    """The ENAS macro space (Pham et al. 2018): one of six ops per layer plus skip bits.

    For 12 layers (the paper) that is 6**12 * 2**66, about 1.6e29 architectures.
    """
    space = StateSpace(num_layers)
    space.add_state("op", MACRO_OPS)
    space.add_skip_connections()
    return space


# ------------------------------------------------------------------ NAS-Bench-201

# The benchmark's ops in its own index order, and its edges (source, target) in the
# order of its cell strings (Dong & Yang 2020). Other tools order both differently:
# convert by name, never by index.
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

# The names of the ops an `op` decision may choose (its values, less a copy's `#i`):
# the built-in spaces' and the toy template's `conv`, known without Keras so that a
# space's poisoning is checked before TensorFlow loads; operations.register_op adds
# the name of every op it registers. (The degraded ops: poisoning.POISON_OPS.)
OP_NAMES = {"conv", *MACRO_OPS, *NB201_OPS}
NB201_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NB201_EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


class NB201Space(StateSpace):
    """The NAS-Bench-201 cell: four nodes, one `op` decision per edge i -> j (i < j).

    Node 0 is the cell's input; node j is the sum of op(i -> j)(node i) over i < j;
    node 3 is the output. The six edges are the space's "layers", in the benchmark's
    string order (`NB201_EDGES`), and log as `edge_<i>_<j>`. An architecture converts
    to and from the benchmark's string with `to_string` / `from_string`, and `format`
    is that string, so a cell can be pasted from or into a paper or NATS-Bench.
    """

    def __init__(self):
        super().__init__(len(NB201_EDGES))

    @property
    def decisions(self):
        if self._decisions is None:
            plain = super().decisions
            self._decisions = tuple(
                dataclasses.replace(d, label="edge_{}_{}".format(*NB201_EDGES[d.layer]))
                for d in plain
            )
        return self._decisions

    def add_skip_connections(self):
        raise ValueError("an NB201 cell has no skip decisions: every edge chooses its op")

    def empty_copy(self):
        return NB201Space()

    def _check_cell(self):
        self._check_defined()
        if list(self.states) != ["op"]:
            raise ValueError(
                f"an NB201 cell has one decision per edge, named 'op'; got {list(self.states)}"
            )

    def to_string(self, architecture):
        """The benchmark's string of `architecture`, e.g. `NB201_EXAMPLE`; copies of an
        op (`none#2`) are written as the op."""
        self._check_cell()
        self.validate(architecture)
        ops = [op_of(v) for v in architecture]
        nodes, e = [], 0
        for j in range(1, 4):
            nodes.append("|" + "|".join(f"{ops[e + i]}~{i}" for i in range(j)) + "|")
            e += j
        return "+".join(nodes)

    def from_string(self, text):
        """The architecture of a benchmark string (the first choice of each edge that
        builds its op, for a poisoned space with copies).

        Raises:
          ValueError: the string is not `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|` with
            ops of the benchmark, or names an op this space does not offer (removed);
            the message says which part is wrong.
        """
        self._check_cell()
        ops = parse_nb201_string(text)
        architecture = []
        for (i, j), op, decision in zip(NB201_EDGES, ops, self.decisions):
            choice = next((c for c in decision.choices if op_of(c) == op), None)
            if choice is None:
                offered = ", ".join(dict.fromkeys(op_of(c) for c in decision.choices))
                raise ValueError(
                    f"op {op!r} of edge {i}->{j} is not a choice of this space (its ops: {offered})"
                )
            architecture.append(choice)
        return tuple(architecture)

    def format(self, architecture):
        return self.to_string(architecture)

    def signature(self):
        return {"cell": "nb201", **super().signature()}

    def __repr__(self):
        states = ", ".join(f"{n}={list(v)}" for n, v in self.states.items())
        return f"NB201Space(6 edges: {states})"

    def describe(self):
        lines = super().describe().splitlines()
        edges = ", ".join(f"{i}->{j}" for i, j in NB201_EDGES)
        lines[0] = (
            f"NAS-Bench-201 cell: 4 nodes, node j = sum of op(i->j)(node i); edges {edges}"
        )
        return "\n".join(lines)


def nb201_space(num_layers=6):
    """The NAS-Bench-201 topology space (NATS-Bench `tss`; Dong & Yang 2020): 5 ops on
    each of the cell's 6 edges, 5**6 = 15,625 cells. `num_layers` is there for the
    registry's sake (`SPACES`): a cell has 6 edges, no other number."""
    if num_layers != 6:
        raise ValueError(f"an NB201 cell has 6 edges, got num_layers={num_layers!r}")
    space = NB201Space()
    space.add_state("op", NB201_OPS)
    return space


# The built-in spaces by their --space names: each a function of `num_layers` (the
# space's depth; its default when left out). A user's space takes the same path
# (extensions.py, poisoning.make_space).
SPACES = {"toy": toy_space, "macro": macro_space, "nb201": nb201_space}


def parse_nb201_string(text):
    """The six ops of a benchmark cell string, in edge order (`NB201_EDGES`).

    Raises:
      ValueError: naming the part of the string that is wrong and what is allowed.
    """
    form = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
    if not isinstance(text, str):
        raise ValueError(f"an NB201 cell string is text of the form {form}, got {text!r}")
    text = text.strip()
    nodes = text.split("+")
    if len(nodes) != 3:
        raise ValueError(
            f"an NB201 cell string has 3 nodes separated by '+' ({form}); "
            f"{text!r} has {len(nodes)}"
        )
    ops = []
    for j, node in enumerate(nodes, 1):
        if len(node) < 2 or not (node.startswith("|") and node.endswith("|")):
            raise ValueError(
                f"node {j} of {text!r} is {node!r}: each node's edges are written between "
                f"bars, |op~0|...|"
            )
        edges = node[1:-1].split("|")
        if len(edges) != j:
            raise ValueError(
                f"node {j} of {text!r} has {len(edges)} edge{'s' * (len(edges) != 1)} "
                f"({node!r}); node {j} takes exactly {j}, from nodes 0..{j - 1}"
            )
        for i, edge in enumerate(edges):
            op, tilde, source = edge.partition("~")
            if not tilde or source != str(i):
                raise ValueError(
                    f"edge {edge!r} of node {j} in {text!r} must be op~{i}: the edges of "
                    f"a node are listed by source node, ~0 first"
                )
            if op not in NB201_OPS:
                raise ValueError(
                    f"unknown op {op!r} on edge {i}->{j} of {text!r}; the benchmark's ops: "
                    f"{', '.join(NB201_OPS)}"
                )
            ops.append(op)
    return tuple(ops)
