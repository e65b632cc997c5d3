"""Regularized evolution and the NASWOT strategy, on their own (no child is trained)."""

import csv
import itertools
import json
import pathlib
import sys

import numpy as np
import pytest
from conftest import tiny_config

import manager
import run_log
import search
import strategies
import state_space
import zero_cost

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
import faults  # noqa: E402  (bench/faults.py: the fault harness's reader of a run's scalars)


def results_for(architectures, fitness):
    return [manager.ChildResult(tuple(a), float(f)) for a, f in zip(architectures, fitness)]


def differing(space, a, b):
    return [d.key for d, x, y in zip(space.decisions, a, b) if x != y]


def test_evolution_starts_with_population_size_random_children():
    space = state_space.macro_space(4)
    evo = strategies.EvolutionStrategy(space, seed=0, population_size=5, sample_size=2)
    sampler = np.random.default_rng(0)
    first = evo.propose(3) + evo.propose(2)  # Two steps, nothing learned yet: all random.
    assert first == space.sample(sampler, 5)
    evo.learn(first, results_for(first, range(5)))
    children = evo.propose(4)
    parents = [a for a in first]
    for child in children:  # Now every child is one mutation away from a member.
        assert min(len(differing(space, child, p)) for p in parents) == 1


@pytest.mark.parametrize("seed", range(5))
def test_mutation_changes_exactly_one_decision_to_another_allowed_value(seed):
    space = state_space.macro_space(5)
    evo = strategies.EvolutionStrategy(space, seed=seed, population_size=4, sample_size=2)
    rng = np.random.default_rng(seed)
    changed = set()
    for parent in space.sample(rng, 200):
        child = evo.mutate(parent)
        space.validate(child)
        keys = differing(space, parent, child)
        assert len(keys) == 1
        changed.add(keys[0])
    # Over 200 mutations every decision (op and skip bits alike) gets changed.
    assert changed == {d.key for d in space.decisions}


def test_mutation_skips_decisions_with_a_single_value():
    space = state_space.StateSpace(3).add_state("kernel", [3]).add_state("filters", [8, 16])
    evo = strategies.EvolutionStrategy(space, seed=0, population_size=2, sample_size=1)
    for _ in range(20):
        child = evo.mutate((3, 8, 3, 8, 3, 8))
        assert len(differing(space, (3, 8, 3, 8, 3, 8), child)) == 1


def test_evolution_removes_the_oldest_member_not_the_worst():
    space = state_space.toy_space(4)
    evo = strategies.EvolutionStrategy(space, seed=0, population_size=3, sample_size=3)
    archs = space.sample(np.random.default_rng(1), 5)
    # The oldest member is the fittest: it still leaves first (aging).
    evo.learn(archs[:3], results_for(archs[:3], [0.9, 0.1, 0.2]))
    evo.learn(archs[3:4], results_for(archs[3:4], [0.0]))
    assert [tuple(a) for a, _ in evo.population] == archs[1:4]
    evo.learn(archs[4:5], results_for(archs[4:5], [0.05]))
    assert [tuple(a) for a, _ in evo.population] == archs[2:5]
    assert [f for _, f in evo.population] == [0.2, 0.0, 0.05]


def test_parent_is_the_fittest_of_the_sample():
    space = state_space.toy_space(4)
    archs = space.sample(np.random.default_rng(2), 6)
    # sample_size == population_size: the sample is the whole population.
    evo = strategies.EvolutionStrategy(space, seed=0, population_size=6, sample_size=6)
    evo.learn(archs, results_for(archs, [0.1, 0.5, 0.3, 0.7, 0.2, 0.6]))
    assert evo.parent() == archs[3]
    # A smaller sample: the parent is the fittest of the members drawn.
    evo = strategies.EvolutionStrategy(space, seed=5, population_size=6, sample_size=2)
    evo.learn(archs, results_for(archs, [0.1, 0.5, 0.3, 0.7, 0.2, 0.6]))
    rng = np.random.default_rng(5)
    for _ in range(30):
        drawn = rng.choice(6, 2, replace=False)
        expected = archs[max(sorted(drawn), key=lambda i: evo.population[i][1])]
        assert evo.parent() == expected


def test_evolution_state_round_trips_through_json():
    space = state_space.macro_space(3)
    evo = strategies.EvolutionStrategy(space, seed=0, population_size=3, sample_size=2)
    archs = evo.propose(3)
    evo.learn(archs, results_for(archs, [0.3, 0.2, 0.1]))
    state = json.loads(json.dumps(evo.get_state()))
    again = strategies.EvolutionStrategy(space, seed=9, population_size=3, sample_size=2)
    again.set_state(state)
    assert again.propose(4) == evo.propose(4)


def test_evolution_rejects_a_sample_larger_than_the_population():
    with pytest.raises(ValueError, match="sample_size"):
        strategies.EvolutionStrategy(state_space.toy_space(2), 0, population_size=2, sample_size=3)


class FakeScorer:
    """Scores an architecture by the sum of its filters; counts the calls."""

    def __init__(self):
        self.calls = []

    def score(self, architecture):
        self.calls.append(architecture)
        return zero_cost.Score(float(sum(architecture[1::2])), relu_units=7, params=1)


class FakeManager:
    proxy = "naswot"

    def __init__(self):
        self.scorer = FakeScorer()

    def score_all(self, architectures):
        return (self.scorer.score(a) for a in architectures)


def test_naswot_strategy_proposes_distinct_candidates_best_score_first(tmp_path):
    space = state_space.toy_space(2)  # 36 architectures.
    fake = FakeManager()
    strategy = strategies.ProxyRankingStrategy(space, 0, 30, fake, str(tmp_path), out=lambda line: None)
    first = strategy.propose(4)
    assert len(fake.scorer.calls) == 30 and len(set(fake.scorer.calls)) == 30
    ranked = sorted(fake.scorer.calls, key=lambda a: -sum(a[1::2]))  # Stable, like the strategy.
    assert first + strategy.propose(3) == ranked[:7]
    assert len(fake.scorer.calls) == 30  # Scored once.
    assert strategy.scores[ranked[0]] == 128.0
    with open(tmp_path / "naswot.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["rank"]) for r in rows] == list(range(1, 31))
    assert [r["architecture"] for r in rows] == [space.format(a) for a in ranked]
    assert [float(r["naswot_score"]) for r in rows] == [sum(a[1::2]) for a in ranked]
    # The state carries the ranking: a resumed strategy goes on without scoring again.
    again = strategies.ProxyRankingStrategy(space, 0, 30, FakeManager(), str(tmp_path), out=print)
    again.set_state(json.loads(json.dumps(strategy.get_state())))
    assert again.propose(5) == ranked[7:12]
    assert again.manager.scorer.calls == []


# The strategies whose state is all the strategy's own search the NAS-Bench-201 table (no
# training: the resume of trained children is test_resume.py's); NASWOT's ranking and the
# early stopping of trained children need the toy space's children.
TABLE = {"space": "nb201", "evaluation": "benchmark"}


@pytest.mark.parametrize(
    "strategy, changes",
    [
        ("evolution", TABLE),
        ("proxy_ranking", {}),
        ("tpe", {"tpe_startup": 2, **TABLE}),
        # The budget-aware controller with a memory buffer: both resume with it; and the
        # step in flight's exploration mix is the strategy's state (bench/faults.py once
        # found budget/exploration at step 1 differing after a resume inside that step):
        # the TensorBoard scalars are compared too.
        ("budget_controller", {"controller": {"memory_size": 5, "memory_batch": 3},
                               "tensorboard": True, **TABLE}),
        ("embedding", {"embedding_pretrain": 200, "embedding_epochs": 5, **TABLE}),
        ("random", {"early_stop": "median", "early_stop_after": 2, "epochs": 2}),
    ],
)
def test_stopped_and_resumed_search_matches_an_uninterrupted_one(tmp_path, strategy, changes,
                                                                 monkeypatch):
    monkeypatch.setattr(search, "BENCHMARK_COMMIT_SECONDS", 0.0)  # The table: a commit per step.

    def config(name):
        return tiny_config(
            tmp_path,
            name,
            strategy=strategy,
            trials=6,
            train_size=100,
            val_size=50,
            batch_size=50,
            population_size=2,
            sample_size=2,
            proxy_candidates=8,
            proxy_batch=32,
            final_epochs=0,  # The final retraining resumes in test_resume.py.
            **changes,
        )

    search.run_search(config("full"), out=lambda line: None)
    asked = itertools.count(1)  # The loop asks after every child (table children print no line).
    with pytest.raises(KeyboardInterrupt):  # Stopped mid-step, after the third child.
        search.run_search(
            config("cut"),
            out=lambda line: None,
            should_stop=lambda: next(asked) >= 3,
        )
    resumed = []
    search.run_search(config("cut"), out=resumed.append, resume=True)
    assert not any("scoring" in line for line in resumed)  # NASWOT: ranking from the state.

    def history(name):
        with open(tmp_path / name / "history.csv", newline="") as f:
            reader = csv.DictReader(f)
            accuracy = run_log.accuracy_column(reader.fieldnames)  # A table names its reward.
            rows = list(reader)
        return [
            (r["architecture"], r[accuracy], r["naswot_score"], r.get("stopped_epoch"))
            for r in rows
        ]

    assert len(history("full")) == 6
    assert history("cut") == history("full")
    if changes.get("tensorboard"):  # Stopped after the third child: inside step 1.
        got, expected = faults.scalars(tmp_path / "cut"), faults.scalars(tmp_path / "full")
        assert (1, "budget/exploration") in expected and got == expected
    best = [json.loads((tmp_path / n / "best.json").read_text()) for n in ("full", "cut")]
    untimed = [{k: v for k, v in b.items() if "seconds" not in k} for b in best]
    assert untimed[0] == untimed[1]  # The pick, its score, the quarters' means, ...
    if changes.get("evaluation") != "benchmark":  # A table's pick has the table's test accuracy.
        assert best[0]["test_accuracy"] is None and best[0]["final_val_accuracy"] is None


def test_the_budget_aware_controller_explores_early_and_sharpens_late():
    space = state_space.toy_space(3)
    spent = [0.0]
    strategy = strategies.BudgetControllerStrategy(
        space, 0, {}, progress=lambda: spent[0], explore=0.6, sharpen=3.0
    )
    assert strategy.schedule_at(0.0) == (0.6, 1.0)
    assert strategy.schedule_at(0.5) == pytest.approx((0.3, 2.0))
    assert strategy.schedule_at(1.0) == (0.0, 3.0)
    # Teach the policy one architecture, then sample it at the start and at the end.
    target = space.sample(np.random.default_rng(1))
    others = [space.sample(np.random.default_rng(i)) for i in range(2, 9)]
    for _ in range(60):
        strategy.controller.update([target] + others, [1.0] + [-0.15] * len(others))

    def hits(n=400):
        return sum(a == target for a in strategy.propose(n)) / n

    early = hits()
    spent[0] = 1.0
    late = hits()
    policy = np.prod(
        [p[space.decisions[d].choices.index(v)]
         for d, (p, v) in enumerate(zip(strategy.controller.probabilities([target]), target))]
    )
    assert early < policy < late, (early, policy, late)
    scalars = strategy.learn([target], [manager.ChildResult(target, 1.0)])
    assert scalars["budget/fraction"] == 1.0 and scalars["budget/sharpen"] == 3.0


def test_a_controller_without_a_schedule_samples_as_before():
    space = state_space.toy_space(3)
    a = strategies.ControllerStrategy(space, 4, {})
    b = strategies.ControllerStrategy(space, 4, {})
    assert a.propose(20) == b.controller.sample(20, exploration=None, sharpen=None)


# Every strategy with a training-free evaluation, each score by at least one strategy;
# --strategy=proxy_ranking ranks by a zero-cost proxy instead (--proxy).
@pytest.mark.parametrize(
    "strategy, evaluation, changes",
    [
        ("controller", "synflow", {}),
        ("random", "snip", {}),
        ("evolution", "grad_norm", {}),
        ("tpe", "params", {"tpe_startup": 2}),
        ("budget_controller", "flops", {}),
        ("memory_controller", "naswot", {"controller": {"memory_batch": 2}}),
        ("embedding", "synflow", {"embedding_pretrain": 50, "embedding_epochs": 2}),
        ("reinforce_table", "snip", {}),
        ("proxy_ranking", "train", {"proxy": "grad_norm"}),
    ],
)
def test_every_strategy_searches_with_a_training_free_score(tmp_path, strategy, evaluation, changes):
    c = tiny_config(
        tmp_path,
        strategy=strategy,
        evaluation=evaluation,
        train_size=64,
        val_size=32,
        population_size=2,
        sample_size=2,
        proxy_candidates=6,
        proxy_batch=16,
        final_epochs=1 if strategy == "controller" else 0,  # One pick retrained is enough.
        **changes,
    ).resolved()
    best = search.run_search(c, out=lambda line: None)
    with open(tmp_path / c.run_name / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    column = f"{c.score_name}_score"
    assert len(rows) == 4 and not any(r["failed"] == "1" for r in rows)
    if evaluation == "train":  # Ranked by the proxy, the top trained.
        with open(tmp_path / c.run_name / "naswot.csv", newline="") as f:
            ranking = list(csv.DictReader(f))
        assert [r["architecture"] for r in rows] == [r["architecture"] for r in ranking[:4]]
        assert [float(r[column]) for r in ranking] == sorted(
            (float(r[column]) for r in ranking), reverse=True
        )
        return
    scores = [float(r[column]) for r in rows]
    assert all(r["val_accuracy"] == "" for r in rows) and min(scores) >= 0  # Scored, not trained.
    for r in rows:
        assert float(r["reward"]) == pytest.approx(float(r[column]) - float(r["baseline"]), abs=1e-3)
    assert best[column] == pytest.approx(max(scores), abs=1e-4)
    assert best["search_val_accuracy"] is None
    assert (0 <= best["test_accuracy"] <= 1) if c.final_epochs else best["test_accuracy"] is None
