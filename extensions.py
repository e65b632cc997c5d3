"""What a user can bring to the loop, and how it is found: the protocols, the registries
and references to a user's code.

A search is made of a space, a network builder and a strategy (and, with
`--evaluation=benchmark`, a table of results). Each comes from a `Registry`: a
built-in name (`--space=macro`, `--strategy=evolution`) is one entry of it, and
anything else is a reference to a user's object, which takes the same path:

  PATH.py:NAME         NAME in the Python file PATH (anywhere; relative to the
                       working folder)
  package.module:NAME  NAME in an importable module

The protocols, each checked when an object comes in (`check_space`,
`check_builder`, `check_strategy`, `check_benchmark`: one error naming what is
missing):

- a space is a `state_space.StateSpace` (or a function of no arguments that returns
  one);
- a network builder is `build(space, architecture, input_shape, num_classes,
  **settings) -> keras.Model` (`Builder`): the model ends in a softmax over
  `num_classes`, as templates.py's do;
- a strategy is made by `factory(space, seed)` (a class, or a function) and has
  `propose / learn / get_state / set_state / save / load` (`Strategy`; the loop's
  calls and when it makes them: docs/EXTENDING.md);
- a benchmark, a table of precomputed results, has `reward / fitness / rank / best /
  describe` and `metric`, `size` (`Benchmark`; `benchmarks.Table` makes one of any
  {architecture: fitness}).

Pure Python: a bad reference is refused before TensorFlow loads (the user's file is
imported then, so a file that imports Keras loads it).
"""

import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
import traceback
import typing

import state_space


class ExtensionError(ValueError):
    """A reference that cannot be loaded, or an object that breaks its protocol."""


# ---------------------------------------------------------------------- protocols


@typing.runtime_checkable
class Builder(typing.Protocol):
    """A network builder (templates.py's contract)."""

    def __call__(self, space, architecture, input_shape, num_classes, **settings):
        """Returns a `keras.Model` of `architecture` whose output is a softmax over
        `num_classes`, for inputs of `input_shape` (height, width, channels)."""


@typing.runtime_checkable
class Strategy(typing.Protocol):
    """How architectures are proposed and what is learnt from their results.

    The loop makes these calls (docs/EXTENDING.md):
      propose(n): at the start of every step (n children, fewer at the end of the
        budget), and with `--evaluation=shared` once per supernet minibatch (n=1) and
        once at the end (n=`--derive_candidates`); returns architectures of the space
        (tuples), an empty list to end the search.
      learn(architectures, results): once per step, after all its children ended,
        with `manager.ChildResult`s (`.fitness`, `.reward`, `.failed`); returns a dict
        of scalars for TensorBoard (may be empty).
      get_state() / set_state(state): at every commit / once on resume; JSON-
        serializable (it goes into state.json).
      save(directory) / load(directory): at the first commit of every step / once on
        resume, for what is too large for state.json (weights); may do nothing.
    Optional, for a strategy that trains the supernet itself (DARTS, GDAS:
    differentiable.py): supernet_step(shared, key, images, labels, val_images,
    val_labels) for every minibatch of a supernet pass, and derived(), the
    architecture it would pick now.
    """

    def propose(self, n): ...

    def learn(self, architectures, results): ...

    def get_state(self): ...

    def set_state(self, state): ...

    def save(self, directory): ...

    def load(self, directory): ...


STRATEGY_METHODS = ("propose", "learn", "get_state", "set_state", "save", "load")


@typing.runtime_checkable
class Benchmark(typing.Protocol):
    """A table of precomputed results (`--evaluation=benchmark`): nothing is trained.

    Attributes:
      metric: what the fitness is, in words ("CIFAR-10 test accuracy after 200 epochs").
      size: the number of architectures the table holds (ranks are among them).

    The loop calls `describe()` once at the start, `reward(architecture, query)` for
    every child (`query` numbers the run's queries from 0: a benchmark that adds
    noise seeds it with the number, so a resumed run asks the same; an exception is a
    failed child), `rank` and `best` for the progress lines and best.json; assess.py
    reads each pick's `fitness` (the table's own value, without the reward's errors).
    Optional: `params(architecture)` (history.csv's params column), `report(
    architecture, space)` (more best.json entries), `best_in_space(space)` (the best
    fitness a poisoned or reduced space can reach), `costs(architecture)` ({cost: value}
    for --max_cost and --cost_target: objectives.COSTS names them).
    """

    metric: str
    size: int

    def describe(self): ...

    def reward(self, architecture, query): ...

    def fitness(self, architecture): ...

    def rank(self, fitness): ...

    def best(self): ...


BENCHMARK_METHODS = ("describe", "reward", "fitness", "rank", "best")


def check_space(obj, where):
    """`obj` as a StateSpace: the object itself, or what a function of no arguments
    returns.

    Raises:
      ExtensionError: neither, or a space without decisions.
    """
    if not isinstance(obj, state_space.StateSpace) and callable(obj):
        _takes(obj, (), where, "a function of no arguments that returns a StateSpace")
        obj = _call(obj, where)
    if not isinstance(obj, state_space.StateSpace):
        raise ExtensionError(
            f"{where} is {_kind(obj)}, not a state_space.StateSpace or a function of no "
            f"arguments that returns one"
        )
    if not obj.decisions:
        raise ExtensionError(f"{where} has no decisions; add them with add_state(name, values)")
    return obj


def check_builder(obj, where):
    """`obj` as a network builder: a callable that takes (space, architecture,
    input_shape, num_classes). What it builds is checked by `check_model`.

    Raises:
      ExtensionError: not callable, or a signature that cannot take those.
    """
    if not callable(obj) or inspect.isclass(obj):
        raise ExtensionError(
            f"{where} is {_kind(obj)}, not a network builder: a function "
            f"build(space, architecture, input_shape, num_classes) -> keras.Model"
        )
    _takes(obj, ("space", "architecture", "input_shape", "num_classes"), where,
           "a function build(space, architecture, input_shape, num_classes) -> keras.Model")
    return obj


def check_model(model, num_classes, where):
    """What a builder returned: a Keras model whose output is (batch, num_classes).

    Raises:
      ExtensionError: anything else.
    """
    if not (hasattr(model, "fit") and hasattr(model, "count_params")):
        raise ExtensionError(f"{where} returned {_kind(model)}, not a keras.Model")
    shape = tuple(getattr(model, "output_shape", ()) or ())
    if len(shape) != 2 or shape[-1] != num_classes:
        raise ExtensionError(
            f"{where} returned a model whose output has shape {shape}; it must be "
            f"(batch, {num_classes}): a softmax over the dataset's {num_classes} classes"
        )
    return model


def check_factory(factory, where):
    """`factory` as a strategy's maker: a class or function that takes (space, seed).

    Raises:
      ExtensionError: not callable, or a signature that cannot take (space, seed).
    """
    if not callable(factory):
        raise ExtensionError(
            f"{where} is {_kind(factory)}, not a strategy class or a factory "
            f"called with (space, seed)"
        )
    _takes(factory, ("space", "seed"), where, "a strategy class or a factory called with (space, seed)")
    return factory


def make_strategy(factory, space, seed, where):
    """The strategy `factory(space, seed)` makes, checked against `Strategy`.

    Raises:
      ExtensionError: a factory that is not callable or cannot take (space, seed), or
        an object without the protocol's methods.
    """
    strategy = _call(check_factory(factory, where), where, space, seed)
    check_strategy(strategy, where)
    return strategy


def check_strategy(obj, where):
    """Raises ExtensionError unless `obj` has every method of `Strategy`."""
    missing = [m for m in STRATEGY_METHODS if not callable(getattr(obj, m, None))]
    if missing:
        raise ExtensionError(
            f"{where} made {_kind(obj)}, which lacks {', '.join(missing)}: a strategy "
            f"needs {', '.join(STRATEGY_METHODS)} (docs/EXTENDING.md)"
        )
    return obj


def check_benchmark(obj, where):
    """`obj` as a Benchmark: the object itself, or what a class or function of no
    arguments makes.

    Raises:
      ExtensionError: anything without the protocol's methods and attributes.
    """
    if inspect.isclass(obj) or (callable(obj) and not hasattr(obj, "reward")):
        _takes(obj, (), where, "a function of no arguments that returns a benchmark")
        obj = _call(obj, where)
    missing = [m for m in BENCHMARK_METHODS if not callable(getattr(obj, m, None))]
    missing += [a for a in ("metric", "size") if not hasattr(obj, a)]
    if missing:
        raise ExtensionError(
            f"{where} is {_kind(obj)}, which lacks {', '.join(missing)}: a benchmark needs "
            f"{', '.join(BENCHMARK_METHODS)}, metric and size (docs/EXTENDING.md)"
        )
    return obj


def _takes(fn, args, where, expected):
    """ExtensionError unless `fn` can be called with len(args) positional arguments."""
    try:
        inspect.signature(fn).bind(*args)
    except TypeError:
        raise ExtensionError(f"{where} cannot be called as {expected}") from None
    except ValueError:  # No signature to read (a builtin): let the call tell.
        pass


def _call(fn, where, *args):
    """fn(*args); an exception inside becomes one line naming the user's file and line."""
    try:
        return fn(*args)
    except Exception as e:  # pylint: disable=broad-except  (the user's code)
        raise ExtensionError(f"{where} raised {error_at(e)}") from None


def _kind(obj):
    if inspect.isclass(obj):
        return f"the class {obj.__name__}"
    if callable(obj) and hasattr(obj, "__name__"):
        return f"the function {obj.__name__}"
    return f"a {type(obj).__name__}"


def error_at(error):
    """`ValueError: message (file.py, line 12)`: the error and the innermost line of the
    traceback outside this project's own modules (the user's code), if any."""
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, SyntaxError):
        return f"SyntaxError: {error.msg} ({error.filename}, line {error.lineno})"
    here = os.path.dirname(os.path.abspath(__file__))
    frames = [
        f for f in traceback.extract_tb(error.__traceback__)
        if os.path.dirname(os.path.abspath(f.filename)) != here
    ]
    if frames:
        text += f" ({frames[-1].filename}, line {frames[-1].lineno})"
    return text


# ---------------------------------------------------------------------- references

_REFERENCE = re.compile(r"^(?P<target>[^:]+):(?P<name>[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# Modules loaded from a file path by `load`: {absolute path: module}. Ray's workers
# receive their objects by value (workers.py), since no worker can import them by name.
FILE_MODULES = {}


def is_reference(value):
    """Whether `value` has the form of a reference (PATH.py:NAME or module:NAME)."""
    match = isinstance(value, str) and _REFERENCE.match(value)
    if not match:
        return False
    target = match["target"]
    return target.endswith(".py") or bool(_MODULE.match(target))


def label(value):
    """A short name for run folders and tables: a built-in name as it is, a reference's
    NAME (`my_space.py:mlp_space` -> `mlp_space`)."""
    return value.rsplit(":", 1)[-1] if is_reference(value) else value


def load(reference, flag):
    """The object a reference names.

    Raises:
      ExtensionError: a malformed reference, a missing file or module, a file that
        fails to import (its error with its file and line), or a missing NAME.
    """
    if not is_reference(reference):
        raise ExtensionError(
            f"{flag}: {reference!r} is not a reference; write PATH.py:NAME (a Python file) or "
            f"package.module:NAME"
        )
    target, name = reference.rsplit(":", 1)
    module = _load_file(target, flag) if target.endswith(".py") else _load_module(target, flag)
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            defined = sorted(n for n in vars(module) if not n.startswith("_"))
            raise ExtensionError(
                f"{flag}: {target} has no {name!r}; it defines {', '.join(defined) or 'nothing'}"
            )
        obj = getattr(obj, part)
    return obj


def _load_file(path, flag):
    full = os.path.abspath(path)
    if full in FILE_MODULES:
        return FILE_MODULES[full]
    if not os.path.isfile(full):
        raise ExtensionError(f"{flag}: there is no file {path}")
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    module_name = f"nas_user_{re.sub(r'[^A-Za-z0-9_]', '_', os.path.basename(full)[:-3])}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, full)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # Pickling (Ray, dataclasses) finds it by name.
    try:
        spec.loader.exec_module(module)
    except BaseException as e:  # pylint: disable=broad-except  (SystemExit in a user's file too)
        del sys.modules[module_name]
        if isinstance(e, KeyboardInterrupt):
            raise
        raise ExtensionError(f"{flag}: {path} fails to import: {error_at(e)}") from None
    FILE_MODULES[full] = module
    return module


def _load_module(name, flag):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and name.startswith(e.name):
            raise ExtensionError(f"{flag}: there is no module {name!r} (no module named {e.name!r})") from None
        raise ExtensionError(f"{flag}: module {name} fails to import: {error_at(e)}") from None
    except Exception as e:  # pylint: disable=broad-except  (the user's module)
        raise ExtensionError(f"{flag}: module {name} fails to import: {error_at(e)}") from None


def reference_of(obj):
    """The `module:qualname` of a function or class given in Python (its label in
    config.json; importable again where the module is), `module:name` of one defined
    inside a function (`module:lambda` for a lambda), or its type's for an instance."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not (module and qualname):
        return f"{type(obj).__module__}:{type(obj).__qualname__}"
    if "<" in qualname:  # Not importable: its own name is the label.
        qualname = re.sub(r"[^A-Za-z0-9_]", "", obj.__name__) or "object"
    return f"{module}:{qualname}"


def file_fingerprint(reference):
    """{file, sha256} of a PATH.py reference's file (None for a module or built-in)."""
    if not is_reference(reference):
        return None
    target = reference.rsplit(":", 1)[0]
    if not target.endswith(".py") or not os.path.isfile(target):
        return None
    with open(target, "rb") as f:
        return {"file": os.path.abspath(target), "sha256": hashlib.sha256(f.read()).hexdigest()}


# ---------------------------------------------------------------------- registries


class Registry:
    """Built-in entries by name; any other value is a reference to a user's object.

    Args:
      kind: what the entries are (for messages): "space", "network builder", ...
      flag: the command-line flag that names one (for messages): "--space".
      entries: {name: object}, the built-in ones.
    """

    def __init__(self, kind, flag, entries):
        self.kind, self.flag = kind, flag
        self.entries = dict(entries)

    def check_name(self, value):
        """ExtensionError unless `value` is a built-in name or has a reference's form."""
        if value in self.entries or is_reference(value):
            return
        raise ExtensionError(
            f"{self.flag} must be one of {', '.join(self.entries)}, or a reference to your own "
            f"{self.kind} (PATH.py:NAME or package.module:NAME), got {value!r}"
        )

    def is_builtin(self, value):
        return value in self.entries

    def get(self, value):
        """The entry named `value`, or the object its reference names."""
        self.check_name(value)
        if value in self.entries:
            return self.entries[value]
        return load(value, self.flag)
