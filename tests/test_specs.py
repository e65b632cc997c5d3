"""specs.py: each built-in's needs and checks live with its entry, and every name the
command line takes reaches them (no branch on a built-in's name elsewhere)."""

import ast
import itertools
import pathlib

import pytest

import config as config_lib
import specs
import state_space
from config import ConfigError, SearchConfig

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The loop, the settings, the poisoning, the strategies and the evaluations: where the
# issue asked that no if-chain over a built-in's name remain.
MODULES = ("config", "search", "run_commit", "progress", "final_evaluation", "poisoning",
           "strategies", "manager", "benchmarks", "templates")
SETTINGS = ("strategy", "evaluation", "space", "benchmark", "template", "proxy")


def test_no_module_of_the_loop_branches_on_a_built_in_name():
    names = set(specs.SPACES) | set(specs.EVALUATIONS) | set(specs.STRATEGIES) | set(specs.BENCHMARKS)
    found = []
    for module in MODULES:
        tree = ast.parse((ROOT / f"{module}.py").read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            constants = [n.value for n in operands if isinstance(n, ast.Constant)] + [
                e.value for n in operands if isinstance(n, (ast.Tuple, ast.List, ast.Set))
                for e in n.elts if isinstance(e, ast.Constant)
            ]
            other = " ".join(ast.unparse(n) for n in operands if not isinstance(n, ast.Constant))
            if set(constants) & names and any(s in other for s in SETTINGS):
                found.append(f"{module}.py:{node.lineno}: {ast.unparse(node)}")
    assert not found, found


def test_every_built_in_has_one_spec():
    import benchmarks  # pylint: disable=import-outside-toplevel
    import manager  # pylint: disable=import-outside-toplevel
    import strategies  # pylint: disable=import-outside-toplevel
    import templates  # pylint: disable=import-outside-toplevel

    assert tuple(specs.SPACES) == tuple(state_space.SPACES) == tuple(templates.TEMPLATES)
    assert tuple(specs.STRATEGIES) == tuple(strategies.STRATEGIES)
    assert tuple(specs.BENCHMARKS) == tuple(benchmarks.BENCHMARKS)
    assert tuple(specs.EVALUATIONS) == tuple(manager.EVALUATIONS)
    assert {n for n, e in specs.EVALUATIONS.items() if e.score} == set(specs.SCORES)
    assert all(e.title for e in specs.EVALUATIONS.values() if e.score)


@pytest.mark.parametrize("space", [*specs.SPACES, "x.py:space"])
def test_every_combination_resolves_or_is_one_line(space):
    """Each space x strategy x evaluation either resolves or is refused in one line that
    names a flag; a strategy's own list of evaluations is what it is refused outside of."""
    extra = {} if space in specs.SPACES else {"template": "x.py:build"}
    for strategy, evaluation in itertools.product(specs.STRATEGIES, specs.EVALUATIONS):
        settings = dict(space=space, strategy=strategy, evaluation=evaluation, **extra)
        try:
            c = SearchConfig(**settings).resolved()
        except ConfigError as e:
            assert "\n" not in str(e) and str(e).startswith("--"), (settings, str(e))
            continue
        allowed = specs.STRATEGIES[strategy].evaluations
        assert allowed is None or evaluation in allowed, settings
        assert c.workers == 0 or not specs.EVALUATIONS[evaluation].in_process
        assert c.num_layers == specs.space(space).layers
    for strategy, spec in specs.STRATEGIES.items():
        for evaluation in set(specs.EVALUATIONS) - set(spec.evaluations or specs.EVALUATIONS):
            with pytest.raises(ConfigError, match=f"--strategy={strategy} is for"):
                SearchConfig(space=space, strategy=strategy, evaluation=evaluation, **extra).resolved()


def test_a_users_objects_get_the_user_entries():
    user = dict(space="x.py:space", template="x.py:build")
    with pytest.raises(ConfigError, match=r"--proxy=snip is the score --strategy=proxy_ranking ranks by"):
        SearchConfig(**user, strategy="y.py:Local", proxy="snip").resolved()
    with pytest.raises(ConfigError, match=r"--evaluation=shared needs --space=macro"):
        SearchConfig(**user, evaluation="shared").resolved()
    with pytest.raises(ConfigError, match=r"--memory_size is a setting of the controller"):
        SearchConfig(**user, strategy="y.py:Local", controller={"memory_size": 5}).resolved()
    # A user's space may be poisoned (its op decision is checked when it is made) and a
    # user's strategy takes any evaluation.
    assert SearchConfig(**user, poison="zero").resolved().poison == "zero"
    for evaluation in specs.EVALUATIONS:
        if evaluation not in ("shared", "benchmark"):
            SearchConfig(**user, strategy="y.py:Local", evaluation=evaluation).resolved()
    # A table of the user's own: the NB201 table's space and ops are not asked for.
    c = SearchConfig(space="x.py:s", evaluation="benchmark", benchmark="x.py:t", poison="noise2")
    assert c.resolved().poison == "noise2"


def test_a_setting_of_nb201s_table_is_refused_elsewhere():
    for name, value in (("benchmark_noise", 0.01), ("benchmark_dataset", "cifar100")):
        with pytest.raises(ConfigError, match=rf"--{name} .* of NAS-Bench-201's table: it needs "
                                              r"--evaluation=benchmark"):
            SearchConfig(space="nb201", **{name: value}).resolved()
        with pytest.raises(ConfigError, match=rf"--{name} .*\(--benchmark=nb201\), got "
                                              r"--benchmark=x.py:t"):
            SearchConfig(space="x.py:s", evaluation="benchmark", benchmark="x.py:t",
                         **{name: value}).resolved()


def test_the_run_name_names_each_setting_off_its_default():
    assert SearchConfig().resolved().run_name == "toy-controller-seed0"
    assert SearchConfig(space="nb201", evaluation="benchmark", benchmark_dataset="cifar100",
                        strategy="random").resolved().run_name == "nb201-random-benchmark-cifar100-seed0"
    assert SearchConfig(strategy="proxy_ranking", proxy="synflow").resolved().run_name == (
        "toy-proxy_ranking-synflow-seed0")
    assert config_lib.SearchConfig(evaluation="snip").resolved().run_name == "toy-controller-snip-seed0"
