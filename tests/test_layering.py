"""The modules' layering: each imports only from its own layer or the layers below it,
and nothing imports in a circle, not even inside a function (read from the source, so
a lazy import counts as much as one at the top)."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Bottom first. A module may import from its own layer (without a circle) and below.
LAYERS = [
    ("spaces, data, settings and files", [
        "state_space", "extensions", "nb201", "hardware", "pareto", "objectives", "fronts",
        "benchmarks", "data", "specs", "budget", "config",
        "poisoning",
        "run_state",
        "run_log",
        "crash_guard", "early_stopping", "stats", "reports", "benchmark_report",
    ]),
    ("ops and networks", [
        "operations", "templates", "supernet", "nb201_supernet", "keras_tuner_hypermodels",
    ]),
    ("how networks are scored", ["naswot", "zero_cost", "costs", "manager", "workers", "weight_sharing"]),
    ("how architectures are proposed", [
        "controller", "embedding", "tpe", "differentiable", "strategies",
    ]),
    ("the loop", ["run_commit", "progress", "final_evaluation", "search", "keras_tuner_oracles"]),
    ("the commands", ["train", "probe", "assess"]),
]


def imports():
    """{module: the repository's modules it imports anywhere in its source}."""
    modules = {p.stem for p in ROOT.glob("*.py")}
    found = {}
    for path in ROOT.glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        found[path.stem] = (names & modules) - {path.stem}
    return found


def test_every_module_at_the_root_has_a_layer():
    placed = [m for _, layer in LAYERS for m in layer]
    assert len(placed) == len(set(placed))
    assert set(imports()) == set(placed)


def test_no_module_imports_from_a_layer_above_its_own():
    level = {m: i for i, (_, layer) in enumerate(LAYERS) for m in layer}
    upward = sorted(
        f"{m} ({LAYERS[level[m]][0]}) imports {d} ({LAYERS[level[d]][0]})"
        for m, deps in imports().items() for d in deps if level[d] > level[m]
    )
    assert not upward


def test_no_module_imports_in_a_circle():
    graph = imports()
    circles = []

    def visit(module, path):
        for d in sorted(graph[module]):
            if d in path:
                circles.append(" -> ".join(path[path.index(d):] + [d]))
            elif d not in done:
                visit(d, path + [d])
        done.add(module)

    done = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert not circles


def test_no_bench_script_shadows_a_module():
    """Tests put bench/ on sys.path: a script named like a module at the root would be
    imported in its place, by whichever test ran first in that process."""
    modules = {p.stem for p in ROOT.glob("*.py")}
    assert not modules & {p.stem for p in (ROOT / "bench").glob("*.py")}
