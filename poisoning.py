"""Search-space poisoning: spaces that contain degraded operations, or lack some ops.

Does a controller learn, or does a strong search space do the work? Two attacks
answer it (after Wu, Saxena & Jain 2021):

- injection: `poison(space, ops, instances=k)` widens a space's `op` decision with
  degraded ops, each in k copies ("multiple-instance poisoning": with 6 clean ops a
  uniform sampler picks poison with probability k / (6 + k) per layer); a
  controller that learns should pick them far less often than that. An op the space
  already offers can be the poison too (NAS-Bench-201's `none`, the zero op of the
  poisoning papers): it is marked poisoned and copied until it holds k choices in
  all, so k = 1 marks it without widening the space;
- removal: `remove_ops(space, ...)` takes ops out, to see how much the result owes
  to them.

The degraded ops (`POISON_OPS`: identity, zero, noise2, noise10, dropout0.9,
dropout1.0, tconv3x3, tconv5x5, stretched3x3) are built by operations.py, which
says what each computes. `make_space(config)` is the space a search's settings name,
poisoned as they say.

Metrics: `poisoned_layers(space, architecture)`, `poison_rate(space,
architecture)` and `prior(space)`, the rate of a uniform sampler.

This module edits spaces only: it needs no Keras, so a bad poisoning is refused
before TensorFlow loads.
"""

import extensions
import state_space
from config import ConfigError
from state_space import INSTANCE_SEPARATOR, op_of

# The degraded ops, by the names used on the command line and in logs (operations.py
# builds each one).
POISON_OPS = (
    "identity",
    "zero",
    "noise2",
    "noise10",
    "dropout0.9",
    "dropout1.0",
    "tconv3x3",
    "tconv5x5",
    "stretched3x3",
)


# ---------------------------------------------------------------------- spaces


def _split(ops_or_names):
    if isinstance(ops_or_names, str):
        ops_or_names = ops_or_names.split(",")
    names = [str(n).strip() for n in ops_or_names]
    return [n for n in names if n]


def _op_state(space, state):
    if state not in space.states:
        raise ValueError(
            f"the space has no {state!r} decision to poison (its decisions: "
            f"{list(space.states) or 'none'}); poisoning needs a space of ops, e.g. --space=macro"
        )
    values = space.states[state]
    known = state_space.OP_NAMES.union(POISON_OPS)
    unknown = [v for v in values if op_of(v) not in known]
    if unknown:
        raise ValueError(
            f"state {state!r} does not choose ops: {unknown} are not registered ops "
            f"(registered: {sorted(known)})"
        )
    return values


def _rebuilt(space, state, values, poisoned):
    """A new space like `space` with `values` for `state`; the original is untouched."""
    new = space.empty_copy()  # The same kind of space: an NB201 cell stays one.
    for name, choices in space.states.items():
        new.add_state(name, values if name == state else choices)
    if space.skip_connections:
        new.add_skip_connections()
    for name, marked in space.poisoned.items():
        kept = [v for v in marked if v in new.states[name]]
        if kept:
            new.mark_poisoned(name, kept)
    if poisoned:
        new.mark_poisoned(state, poisoned)
    return new


def poison(space, ops, instances=1, state="op"):
    """Returns a copy of `space` whose `state` decision gains each op of `ops`
    `instances` times, the copies marked as poisoned.

    With instances k > 1 the copies are named `op#1` ... `op#k`: distinct choices
    for the controller, the same op for the builder. An op the decision already
    offers (NB201's `none`, say) is marked poisoned and gains the copies `op#2` ...
    `op#k`, so that it holds k choices in all, as an injected op does.

    Args:
      space: a StateSpace with an op decision (e.g. `state_space.macro_space()`).
      ops: op names (a list, or a comma-separated string): degraded ops from
        `POISON_OPS`, or ops the decision already offers.
      instances: k, the choices each op holds (>= 1).
      state: the name of the op decision.

    Raises:
      ValueError: unknown op, k < 1, or a space without that op decision.
    """
    names = _split(ops)
    if not names:
        raise ValueError(f"poison needs at least one op; allowed: {', '.join(POISON_OPS)}")
    values = _op_state(space, state)
    offered = list(dict.fromkeys(op_of(v) for v in values))
    for name in names:
        if name not in POISON_OPS and name not in offered:
            raise ValueError(
                f"unknown poison op {name!r}; allowed: {', '.join(POISON_OPS)} (degraded ops), "
                f"or an op of {state!r} to count as poison: {', '.join(offered)}"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"poison op listed twice in {names}; list each op once")
    if isinstance(instances, bool) or not isinstance(instances, int) or instances < 1:
        raise ValueError(f"poison instances must be an integer >= 1, got {instances!r}")
    sep = INSTANCE_SEPARATOR
    added, poisoned = [], []
    for name in names:
        if name in offered:
            marked = space.poisoned.get(state, ())
            if name not in values or any(op_of(v) == name for v in marked):
                raise ValueError(
                    f"op {name!r} is already a choice of {state!r} with copies or marked as "
                    f"poison; poison an op once"
                )
            copies = [f"{name}{sep}{i}" for i in range(2, instances + 1)]
            added += copies
            poisoned += [name, *copies]
        else:
            copies = [name] if instances == 1 else [f"{name}{sep}{i}" for i in range(1, instances + 1)]
            added += copies
            poisoned += copies
    return _rebuilt(space, state, tuple(values) + tuple(added), poisoned)


def remove_ops(space, ops=None, *, keep=None, state="op"):
    """Returns a copy of `space` without some ops (removal poisoning).

    Give either the ops to remove (`ops`) or the ops to keep (`keep`), as a list or
    a comma-separated string.

    Raises:
      ValueError: both or neither given, an op that is not a choice, removing
        every op, or a space without that op decision.
    """
    if (ops is None) == (keep is None):
        raise ValueError("remove_ops needs exactly one of ops (to remove) or keep")
    values = _op_state(space, state)
    names = _split(ops if keep is None else keep)
    offered = {op_of(v) for v in values}
    for name in names:
        if name not in offered:
            raise ValueError(
                f"op {name!r} is not a choice of {state!r}; its ops: "
                f"{', '.join(dict.fromkeys(op_of(v) for v in values))}"
            )
    if keep is None:
        left = tuple(v for v in values if op_of(v) not in names)
    else:
        left = tuple(v for v in values if op_of(v) in names)
    if not left:
        raise ValueError(f"cannot remove every op of {state!r}; keep at least one")
    return _rebuilt(space, state, left, ())


def poisoned_layers(space, architecture):
    """The number of layers of `architecture` that chose a poisoned op."""
    return space.poisoned_layers(architecture)


def poison_rate(space, architecture):
    """The fraction of poisoned layers of `architecture`."""
    return space.poisoned_layers(architecture) / space.num_layers


def prior(space):
    """The poison rate of a uniform sampler: k / (n + k) for n clean and k poisoned
    choices of one op decision (Wu, Saxena & Jain 2021)."""
    return space.poison_prior()


# ---------------------------------------------------------------------- a search's space


SPACES = extensions.Registry("space", "--space", state_space.SPACES)


def make_space(config, given=None):
    """The StateSpace and template named by a search's config (a built-in space, one a
    reference names, or `given`, a space passed in Python), with its poisoning applied
    (ops removed first, then degraded ops injected).

    Raises:
      ConfigError: a space that cannot be loaded or is not one, or an op name that is
        not allowed.
    """
    try:
        if given is not None:
            space = extensions.check_space(given, f"the space {config.space}")
        elif SPACES.is_builtin(config.space):
            space = SPACES.get(config.space)(config.num_layers)
        else:
            space = extensions.check_space(SPACES.get(config.space), f"--space={config.space}")
    except extensions.ExtensionError as e:
        raise ConfigError(str(e)) from None
    if config.remove_ops:
        try:
            space = remove_ops(space, config.remove_ops)
        except ValueError as e:
            raise ConfigError(f"--remove_ops: {e}") from None
    if config.poison:
        try:
            space = poison(space, config.poison, instances=config.poison_instances)
        except ValueError as e:
            raise ConfigError(f"--poison: {e}") from None
    return space, config.template
