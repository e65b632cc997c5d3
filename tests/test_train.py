"""End-to-end tests of train.py, run as a subprocess like a user would run it.

Every subprocess pays TensorFlow's start-up (~5 s), so the suite starts all of them
in the background as soon as it is collected (conftest.py) and the tests read the results:
tiny searches (the controller, random search, the other strategies) and the table of bad
command lines.
"""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import frameworks_blocked, run_script, start_background, tiny_flags

import config as config_lib

ROOT = Path(__file__).resolve().parents[1]

# The tiny search (conftest.TINY_SEARCH: 4 children, 2 per step, of the 4-layer toy
# space), writing TensorBoard's events: the tests read them.
TINY = tiny_flags(tensorboard=True)

# Columns of history.csv besides the per-decision ones.
RESULT_COLUMNS = [
    "architecture",
    "val_accuracy",
    "naswot_score",
    "reward",
    "baseline",
    "params",
    "poisoned_layers",
    "train_seconds",
    "seconds",
    "elapsed_seconds",
    "cached",
    "failed",
    "reason",
]
# A poisoned search: a 3-layer macro space plus dropout1.0 and stretched3x3, 3 copies
# each (6 clean + 6 poisoned choices per layer), narrow children.
POISONED = [
    "--space=macro",
    "--num_layers=3",
    "--filters=4",
    "--poison=dropout1.0, stretched3x3",
    "--poison_instances=3",
]
POISONED_RUN = "macro-poisoned-controller-seed0"  # The default run name says it is poisoned.
DECISION_COLUMNS = [f"layer{i}_{s}" for i in range(4) for s in ("kernel", "filters")]


def _run(args, script="train.py", env=None, fresh=False):
    """The command's finished process: a child of the tests' fork server (conftest.py,
    `run_script`), or with `fresh` a new Python process, as a user's command is."""
    if fresh:
        return subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=300, env=env)
    return run_script([script, *args], timeout=300, env=env)


def _then_probe(args, run_dir, probes):
    """A train.py run, then probe.py with each of `probes` (lists of flags): the
    CompletedProcesses, train.py's first."""
    return [_run(args)] + [_run([f"--run={run_dir}", *p], "probe.py") for p in probes]


# Bad command lines: (id, flags, a word the error must contain, refused before any
# framework is imported: a one-line answer in a fraction of a second, not after
# TensorFlow's start-up). Every one also gets --logdir=<tmp>, so that nothing lands in
# the repository's logs/. The early ones run where importing a framework fails
# (conftest.frameworks_blocked), so the claim is checked, not assumed.
BAD = [
    ("trials-zero", ["--trials=0"], "--trials", True),
    ("trials-not-int", ["--trials=abc"], "trials", True),
    ("space", ["--space=nope"], "space", True),
    ("strategy", ["--strategy=nope"], "strategy", True),
    ("dataset", ["--dataset=nope"], "dataset", True),
    ("epochs-negative", ["--epochs=-1"], "--epochs", True),
    ("acc-beta", ["--acc_beta=1.5"], "acc_beta", True),
    ("val-size-too-big", ["--val_size=99999"], "val_size", True),
    ("unknown-flag", ["--unknown_flag=1"], "unknown_flag", True),
    ("positional", ["extra"], "unexpected arguments", True),
    ("entropy-weight", ["--entropy_weight=-1"], "entropy_weight", True),
    ("run-folder-taken", ["--run_name=taken"], "already holds a run", True),
    ("children-zero", ["--children_per_step=0"], "--children_per_step", True),
    ("batch-zero", ["--batch_size=0"], "--batch_size", True),
    ("num-layers-zero", ["--num_layers=0"], "--num_layers", True),
    ("filters-zero", ["--filters=0"], "--filters", True),
    ("final-epochs-negative", ["--final_epochs=-1"], "--final_epochs", True),
    ("child-lr-zero", ["--child_lr=0"], "--child_lr", True),
    ("clip-negative", ["--clip_rewards=-0.1"], "--clip_rewards", True),
    ("seed-negative", ["--seed=-1"], "--seed", True),
    ("max-failures-zero", ["--max_failures=0"], "--max_failures", True),
    ("train-size-too-big", ["--train_size=99999"], "train_size", True),
    ("val-size-zero", ["--val_size=0"], "val_size", True),
    ("lstm-units-zero", ["--lstm_units=0"], "lstm_units", True),
    ("controller-lr-negative", ["--controller_lr=-1"], "--controller_lr", True),
    ("exploration-one", ["--exploration=1"], "exploration", True),
    ("temperature-zero", ["--temperature=0"], "temperature", True),
    ("grad-clip-zero", ["--grad_clip=0"], "grad_clip", True),
    ("bool-not-bool", ["--cache=maybe"], "cache", True),
    ("float-not-number", ["--acc_beta=abc"], "acc_beta", True),
    ("run-name-slash", ["--run_name=a/b"], "--run_name", True),
    ("resume-missing", ["--resume", "--run_name=nothing"], "no run to resume", True),
    ("logdir-unwritable", ["--logdir=/proc/no-such-folder"], "cannot write", False),
    ("poison-unknown-op", ["--space=macro", "--poison=nope"], "unknown poison op 'nope'", True),
    ("poison-toy-space", ["--poison=zero"], "--space=macro", True),
    (
        "poison-instances-zero",
        ["--space=macro", "--poison=zero", "--poison_instances=0"],
        "--poison_instances",
        True,
    ),
    ("poison-instances-alone", ["--space=macro", "--poison_instances=3"], "needs --poison", True),
    ("poison-twice", ["--space=macro", "--poison=zero,zero"], "twice", True),
    (
        "remove-every-op",
        [
            "--space=macro",
            "--remove_ops="
            + ",".join(
                ["conv3x3", "conv5x5", "sepconv3x3", "sepconv5x5", "maxpool3x3", "avgpool3x3"]
            ),
        ],
        "keep at least one",
        True,
    ),
    ("remove-unknown-op", ["--space=macro", "--remove_ops=conv7x7"], "not a choice", True),
    ("evaluation", ["--evaluation=loss"], "evaluation", True),
    ("max-cost-unknown", ["--max_cost=pixel3:6"], "--max_cost takes cost:value", True),
    ("max-cost-negative", ["--max_cost=params:-5"], "--max_cost takes cost:value", True),
    ("device-cost-toy", ["--max_cost=pixel3_latency:6.4"], "--space=nb201", True),
    (
        "latency-on-table",
        ["--space=nb201", "--evaluation=benchmark", "--max_cost=latency:3"],
        "builds none",
        True,
    ),
    ("cost-target-score", ["--evaluation=naswot", "--cost_target=params:1e5"], "is a score", True),
    ("cost-weight-positive", ["--cost_target=params:1e5", "--cost_weight=0.5"], "--cost_weight", True),
    ("naswot-twice", ["--strategy=proxy_ranking", "--evaluation=naswot"], "--evaluation=naswot", True),
    ("shared-toy", ["--evaluation=shared"], "has no supernet", True),
    (
        "shared-naswot",
        ["--space=macro", "--strategy=proxy_ranking", "--evaluation=shared"],
        "--strategy=proxy_ranking is for --evaluation=train",
        True,
    ),
    ("reward-mode", ["--reward_mode=eval"], "reward_mode", True),
    ("shared-lr", ["--shared_lr=0.01", "--shared_lr_min=0.1"], "--shared_lr_min", True),
    (
        "eval-batch-big",
        ["--space=macro", "--evaluation=shared", "--filters=4", "--eval_batch=101"],
        "scoring minibatch of 101",
        True,
    ),
    ("sample-size", ["--population_size=3", "--sample_size=4"], "--sample_size=4", True),
    ("population-zero", ["--population_size=0"], "--population_size", True),
    ("candidates-few", ["--strategy=proxy_ranking", "--proxy_candidates=3"], "--trials=4", True),
    (
        "candidates-many",
        ["--strategy=proxy_ranking", "--num_layers=1", "--proxy_candidates=7"],
        "6 architectures of the space",
        True,
    ),
    ("naswot-batch-big", ["--evaluation=naswot", "--proxy_batch=301"], "--proxy_batch", True),
    ("workers-negative", ["--workers=-1"], "--workers must be an integer >= 0", True),
    ("benchmark-macro", ["--space=macro", "--evaluation=benchmark"], "needs --space=nb201", True),
    (
        "benchmark-degraded-op",
        ["--space=nb201", "--evaluation=benchmark", "--poison=dropout1.0"],
        "which knows none, skip_connect",
        True,
    ),
    (
        "benchmark-workers",
        ["--space=nb201", "--evaluation=benchmark", "--workers=1"],
        "use --workers=0",
        True,
    ),
    ("benchmark-dataset", ["--benchmark_dataset=svhn"], "benchmark_dataset", True),
    ("nb201-num-layers", ["--space=nb201", "--num_layers=4"], "6 edges", True),
    ("nb201-poison-unknown", ["--space=nb201", "--poison=conv3x3"], "unknown poison op 'conv3x3'", True),
    (
        "workers-shared",
        ["--space=macro", "--evaluation=shared", "--workers=2"],
        "use --workers=0",
        True,
    ),
    # A pool that cannot place a worker (no GPU for --gpus_per_child=1) is refused in
    # tests/test_workers.py, in process: a local Ray started here cost 20 s of CPU.
    # The embedding strategy pre-trains before Ray is reached; it once wrote embedding/
    # into the run folder then, and every later start refused the folder.
    (
        "embedding-ray-unreachable",
        ["--strategy=embedding", "--embedding_pretrain=100", "--embedding_epochs=2", "--workers=1",
         "--ray_address=127.0.0.1:1"],
        "cannot reach a Ray cluster at 127.0.0.1:1",
        False,
    ),
    # Offline and not prepared: one line on how to prepare it (download stays off).
    (
        "data-not-prepared",
        ["--dataset=cifar10", "--data_dir=/nonexistent/nas-tfds"],
        "is not prepared in /nonexistent/nas-tfds",
        True,
    ),
]


def background_jobs(folder):
    """Every subprocess of this module, started with the suite (conftest.py): name ->
    function returning (CompletedProcess, run folder)."""
    searches = folder / "searches"
    bad_logdir = folder / "bad"
    taken = bad_logdir / "taken"
    taken.mkdir(parents=True)
    (taken / "history.csv").write_text("trial,step\n")
    jobs = {
        "a": (TINY + ["--logdir", str(searches), "--run_name=a"], searches / "a"),
        "poisoned": (TINY + POISONED + ["--logdir", str(searches)], searches / POISONED_RUN),
        "evolution": (
            TINY + ["--strategy=evolution", "--population_size=2", "--sample_size=2"],
            searches / "toy-evolution-seed0",
        ),
        "naswot": (
            TINY + ["--strategy=proxy_ranking", "--proxy_candidates=12", "--proxy_batch=64"],
            searches / "toy-proxy_ranking-seed0",
        ),
        "naswot-reward": (
            TINY + ["--evaluation=naswot", "--proxy_batch=64"],
            searches / "toy-controller-naswot-seed0",
        ),
    }
    for name in ("evolution", "naswot", "naswot-reward"):
        jobs[name][0].extend(["--logdir", str(searches)])
    # The other strategies' searches end without the final retraining (the same code as the
    # controller's, run by "a"): check_search_ran(retrained=False).
    for name in ("evolution", "naswot"):
        jobs[name][0].append("--final_epochs=0")
    # The end-to-end search runs as a user's command does: a new process, train.py's guard.
    functions = {name: lambda a=args, d=where, f=name == "a": (_run(a, fresh=f), d)
                 for name, (args, where) in jobs.items()}
    blocked = frameworks_blocked(folder / "no-frameworks")
    for name, args, _, early in BAD:
        args = TINY + [f"--logdir={bad_logdir}"] + args
        env = blocked if early else None
        functions["bad-" + name] = lambda a=args, e=env: (_run(a, env=e), bad_logdir)
    # The control: a command line that gets as far as the search, where frameworks are blocked.
    control = TINY + [f"--logdir={folder / 'blocked'}"]
    functions["blocked-control"] = lambda: (_run(control, env=blocked), folder / "blocked")
    # The controller with a memory buffer, then the probe on its folder as a user runs it
    # (and with bad flags); the embedding strategy, then the probe refusing its folder.
    memory = searches / "toy-memory_controller-seed0"
    memory_args = TINY + ["--strategy=memory_controller", "--memory_batch=3", "--logdir", str(searches),
                          "--final_epochs=0"]
    probes = [["--samples=12", "--permutations=19"], ["--samples=2"]]
    functions["memory"] = lambda: (_then_probe(memory_args, memory, probes), memory)
    embedding = searches / "toy-embedding-seed0"
    embedding_args = TINY + [
        "--strategy=embedding",
        "--embedding_pretrain=200",
        "--embedding_epochs=5",
        "--logdir",
        str(searches),
        "--final_epochs=0",
    ]
    functions["embedding"] = lambda: (_then_probe(embedding_args, embedding, [[]]), embedding)
    return functions


@pytest.fixture(scope="module")
def processes():
    """name -> Future of (CompletedProcess, run folder)."""
    return start_background(sys.modules[__name__])


def read_history(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [dict(zip(rows[0], row)) for row in rows[1:]]


def check_search_ran(proc, run_dir, retrained=True):
    """The tiny search's output, history, config and best.json; `retrained`: the pick was
    retrained (not: --final_epochs=0)."""
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    out = proc.stdout
    for trial in range(1, 5):
        assert re.search(rf"^trial {trial}/4 step {(trial - 1) // 2} \| ", out, re.M), out
    assert "trial 5/" not in out
    tested = re.search(r"^test accuracy \d\.\d{4} \(validation \d\.\d{4}\)", out, re.M)
    skipped = "no final retraining (--final_epochs=0); best.json has the search's result" in out
    assert (bool(tested), skipped) == (retrained, not retrained), out

    header, rows = read_history(run_dir)
    assert header == ["trial", "step"] + DECISION_COLUMNS + RESULT_COLUMNS
    assert len(rows) == 4
    assert [r["trial"] for r in rows] == ["1", "2", "3", "4"]
    assert [r["step"] for r in rows] == ["0", "0", "1", "1"]
    for r in rows:
        assert r["layer0_kernel"] in ("1", "3") and r["layer3_filters"] in ("16", "32", "64")
        expected = " | ".join(
            f"kernel={r[f'layer{i}_kernel']} filters={r[f'layer{i}_filters']}" for i in range(4)
        )
        assert r["architecture"] == expected
        assert 0.0 <= float(r["val_accuracy"]) <= 1.0
        assert float(r["reward"]) == pytest.approx(
            float(r["val_accuracy"]) - float(r["baseline"]), abs=2e-6
        )
        assert r["cached"] in ("0", "1") and r["failed"] == "0" and r["reason"] == ""
        assert int(r["params"]) > 0 or r["cached"] == "1"
    # The first step's baseline is the first accuracy.
    assert rows[0]["baseline"] == rows[1]["baseline"] == rows[0]["val_accuracy"]
    assert rows[2]["baseline"] == rows[3]["baseline"]

    config = json.loads((run_dir / "config.json").read_text())
    assert config["trials"] == 4 and config["children_per_step"] == 2
    assert config["epochs"] == 1 and config["final_epochs"] == (1 if retrained else 0)  # Default: --epochs.
    assert config["val_size"] == 100 and config["train_size"] == 300
    assert config["batch_size"] == 32 and config["seed"] == 0
    assert config["num_layers"] == 4 and config["space"] == "toy"
    assert config["run_name"] == run_dir.name and config["dataset"] == "mnist5k"

    best = json.loads((run_dir / "best.json").read_text())
    if retrained:
        assert 0.0 <= best["test_accuracy"] <= 1.0
        assert 0.0 <= best["final_val_accuracy"] <= 1.0
    else:
        assert best["test_accuracy"] is None and best["final_val_accuracy"] is None
        assert best["params"] is None and not (run_dir / "best_model.keras").exists()
    assert best["trials"] == 4
    # The search's wall clock: increasing, and within the search time of best.json.
    elapsed = [float(r["elapsed_seconds"]) for r in rows]
    assert 0 < elapsed[0] and elapsed == sorted(elapsed)
    assert elapsed[-1] <= best["search_seconds"]
    best_acc = max(float(r["val_accuracy"]) for r in rows)
    assert best["search_val_accuracy"] == pytest.approx(best_acc, abs=1e-6)
    assert best["architecture_str"] in [r["architecture"] for r in rows]

    events = list(run_dir.glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    return rows, config, best


def test_end_to_end_controller_search(processes):
    proc, run_dir = processes["a"].result()
    rows, config, best = check_search_ran(proc, run_dir)
    assert config["strategy"] == "controller"

    # config.json records every flag of train.py (the controller's in "controller"); the
    # flags are made from config.flag_settings (test_config checks that they agree).
    settings = config_lib.flag_settings()
    assert {"trials", "entropy_weight"} <= {s.name for s in settings}
    missing = [
        s.name
        for s in settings
        if (s.key not in config.get("controller", {}) if s.key else s.field not in config)
    ]
    assert not missing, f"flags missing from config.json: {missing}"
    assert config["controller"]["entropy_weight"] == 1e-4

    # The saved model loads in safe mode and classifies 28x28x1 images into 10 classes.
    import keras  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel

    model = keras.saving.load_model(run_dir / "best_model.keras")
    probs = model.predict(np.zeros((2, 28, 28, 1), "float32"), verbose=0)
    assert probs.shape == (2, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert model.count_params() == best["params"]
    keras.backend.clear_session()


# Random search through train.py: tests/test_extensions.py's documented commands run it
# (assess.py's grid), and every strategy resumes in tests/test_strategies.py.


# Same seed, same architectures, accuracies and rewards in another process: test_resume's
# kill -9 test compares a run's rows before the kill with an uninterrupted run's, two processes.


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("train.py: error:")]


@pytest.mark.parametrize("name, args, word, early", BAD, ids=[b[0] for b in BAD])
def test_bad_values_exit_2_with_one_error_line(processes, name, args, word, early):
    proc, logdir = processes["bad-" + name].result()
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    errors = _error_lines(proc.stderr)
    assert len(errors) == 1, proc.stderr
    assert word in errors[0]
    assert proc.stderr.rstrip("\n").splitlines()[-1] == errors[0]  # The error comes last.
    assert "trial 1/" not in proc.stdout  # Nothing was trained.
    # No run left anything behind (run folders may be created, but stay empty);
    # the pre-existing folder of the "taken" case is untouched.
    written = sorted(str(p.relative_to(logdir)) for p in logdir.rglob("*") if p.is_file())
    assert written == ["taken/history.csv"]


def test_the_early_command_lines_really_run_where_no_framework_can_be_imported(processes):
    proc, _ = processes["blocked-control"].result()
    assert proc.returncode != 0
    assert "was imported, but this command line was to be refused" in proc.stderr


@pytest.mark.parametrize("name", [b[0] for b in BAD])
def test_bad_values_stderr_is_exactly_one_line(processes, name):
    proc, _ = processes["bad-" + name].result()
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error:"), proc.stderr


def test_assess_presets_parse_into_their_grid():
    """configs/assess-*.flags are assess.py's: they parse into the grid they describe."""
    script = (
        "import json, sys, assess\n"
        "assess.FLAGS(['assess.py', '--flagfile=' + sys.argv[1]])\n"
        "base, runs = assess.grid_from_flags()\n"
        "print(json.dumps([base.space, base.evaluation, base.trials, len(runs), assess._budgets()]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "configs/assess-nb201.flags"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # clean and none x 5, controller and random, 30 seeds.
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == ["nb201", "benchmark", 1000, 120, [100, 300, 1000]]


def test_flag_presets_parse_and_resolve():
    """Every configs/*.flags file parses (comments, nested --flagfile) into a valid config."""
    script = (
        "import json, sys, train\n"
        "out = {}\n"
        "for path in sys.argv[1:]:\n"
        "    train.FLAGS.unparse_flags()\n"
        "    train.FLAGS(['train.py', '--flagfile=' + path])\n"
        "    c = train.config_from_flags().resolved()\n"
        "    out[path] = [c.space, c.strategy, c.trials, c.epochs, c.num_layers]\n"
        "print(json.dumps(out))\n"
    )
    presets = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "configs").glob("*.flags")
        if not p.name.startswith("assess-")  # assess.py's: test_assess_presets_parse_into_their_grid.
    )
    assert len(presets) >= 3
    proc = subprocess.run(
        [sys.executable, "-c", script, *presets], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    parsed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert parsed["configs/toy.flags"] == ["toy", "controller", 64, 3, 4]
    assert parsed["configs/random.flags"] == ["toy", "random", 64, 3, 4]
    assert parsed["configs/macro.flags"] == ["macro", "controller", 160, 2, 6]
    assert parsed["configs/evolution.flags"] == ["toy", "evolution", 64, 3, 4]
    assert parsed["configs/naswot.flags"] == ["toy", "proxy_ranking", 64, 3, 4]
    assert parsed["configs/enas.flags"] == ["macro", "controller", 10000, 3, 6]
    assert parsed["configs/rsws.flags"] == ["macro", "random", 10000, 3, 6]
    assert parsed["configs/shared.flags"] == ["macro", "controller", 10000, 3, 6]
    assert parsed["configs/nb201.flags"] == ["nb201", "controller", 1000, 3, 6]
    assert parsed["configs/nb201-random.flags"] == ["nb201", "random", 1000, 3, 6]


def test_poisoned_search_logs_poisoned_layers_and_the_poison_rate(processes):
    proc, run_dir = processes["poisoned"].result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "Gradients do not exist" not in proc.stderr  # Cut-off layers are not news.
    assert "+ 6 poisoned: dropout1.0 x3, stretched3x3 x3; uniform poison rate 0.500" in proc.stdout
    poisoned = {f"{op}#{i}" for op in ("dropout1.0", "stretched3x3") for i in (1, 2, 3)}
    _, rows = read_history(run_dir)
    assert len(rows) == 4
    for r in rows:
        ops = [r[f"layer{i}_op"] for i in range(3)]
        assert int(r["poisoned_layers"]) == sum(op in poisoned for op in ops)
        assert f"poisoned {r['poisoned_layers']}/3" in proc.stdout
    config = json.loads((run_dir / "config.json").read_text())
    assert config["poison"] == "dropout1.0,stretched3x3" and config["poison_instances"] == 3
    best = json.loads((run_dir / "best.json").read_text())
    assert best["poison_prior"] == pytest.approx(0.5)
    rates = [int(r["poisoned_layers"]) / 3 for r in rows]
    assert best["first_quarter_poison_rate"] == pytest.approx(rates[0])
    assert best["last_quarter_poison_rate"] == pytest.approx(rates[-1])
    best_row = next(r for r in rows if r["architecture"] == best["architecture_str"])
    assert best["poisoned_layers"] == int(best_row["poisoned_layers"])

    # TensorBoard gets the poison rate of each step with the prior beside it.
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.util import tensor_util

    events = event_accumulator.EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
    events.Reload()
    rate = [float(tensor_util.make_ndarray(e.tensor_proto)) for e in events.Tensors("poison/rate")]
    prior = [
        float(tensor_util.make_ndarray(e.tensor_proto)) for e in events.Tensors("poison/prior")
    ]
    assert rate == pytest.approx([np.mean(rates[:2]), np.mean(rates[2:])])
    assert prior == pytest.approx([0.5, 0.5])

    # The saved child, poison ops included, loads back in safe mode.
    import keras  # pylint: disable=import-outside-toplevel

    import operations  # noqa: F401  pylint: disable=unused-import (registers its layers)

    model = keras.saving.load_model(run_dir / "best_model.keras", safe_mode=True)
    assert model.predict(np.zeros((1, 28, 28, 1), "float32"), verbose=0).shape == (1, 10)
    keras.backend.clear_session()


def test_evolution_search_mutates_the_fitter_parent(processes):
    proc, run_dir = processes["evolution"].result()
    rows, config, _ = check_search_ran(proc, run_dir, retrained=False)
    assert config["strategy"] == "evolution" and config["population_size"] == 2
    # Step 0 fills the population (2, sampled); with sample_size 2 the parent of each
    # step-1 child is the fitter of the two (the older on a tie), one decision changed.
    first, second = rows[0], rows[1]
    parent = second if float(second["val_accuracy"]) > float(first["val_accuracy"]) else first
    for child in rows[2:]:
        changed = [c for c in DECISION_COLUMNS if child[c] != parent[c]]
        assert len(changed) == 1, (parent["architecture"], child["architecture"])


def test_naswot_search_trains_the_top_candidates_in_score_order(processes):
    proc, run_dir = processes["naswot"].result()
    rows, config, best = check_search_ran(proc, run_dir, retrained=False)
    assert config["proxy_candidates"] == 12 and config["proxy_batch"] == 64
    assert "scored 12/12" in proc.stdout
    with open(run_dir / "naswot.csv", newline="") as f:
        ranking = list(csv.DictReader(f))
    assert len(ranking) == 12 and len({r["architecture"] for r in ranking}) == 12
    scores = [float(r["naswot_score"]) for r in ranking]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0
    assert [r["architecture"] for r in rows] == [r["architecture"] for r in ranking[:4]]
    assert [r["naswot_score"] for r in rows] == [r["naswot_score"] for r in ranking[:4]]
    picked = next(r for r in rows if r["architecture"] == best["architecture_str"])
    assert best["naswot_score"] == pytest.approx(float(picked["naswot_score"]), abs=1e-4)


def test_naswot_reward_trains_only_the_final_pick(processes):
    proc, run_dir = processes["naswot-reward"].result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    header, rows = read_history(run_dir)
    assert header == ["trial", "step"] + DECISION_COLUMNS + RESULT_COLUMNS
    assert len(rows) == 4
    for r in rows:
        assert r["val_accuracy"] == "" and float(r["train_seconds"]) == 0.0  # Not trained.
        assert float(r["reward"]) == pytest.approx(
            float(r["naswot_score"]) - float(r["baseline"]), abs=1e-3
        )
    assert rows[0]["baseline"].startswith(rows[0]["naswot_score"][:6])  # First baseline.
    top = max(rows, key=lambda r: float(r["naswot_score"]))
    best = json.loads((run_dir / "best.json").read_text())
    assert best["search_val_accuracy"] is None
    assert best["architecture_str"] == top["architecture"]
    assert best["naswot_score"] == pytest.approx(float(top["naswot_score"]), abs=1e-4)
    assert 0.0 <= best["test_accuracy"] <= 1.0 and "last_quarter_mean_naswot_score" in best
    assert "best NASWOT score" in proc.stdout
    assert re.search(r"^test accuracy \d\.\d{4}", proc.stdout, re.M)



def test_the_memory_controller_runs_and_the_probe_reads_its_folder(processes):
    (search, probed, bad), run_dir = processes["memory"].result()
    rows, config, _ = check_search_ran(search, run_dir, retrained=False)
    assert config["strategy"] == "memory_controller"
    assert config["controller"]["memory_size"] == 10_000 and config["controller"]["memory_batch"] == 3
    state = json.loads((run_dir / "state.json").read_text())
    memory = np.load(run_dir / state["strategy"]["checkpoint"] / "memory.npy")
    assert memory.shape == (4, 8)  # The 4 children, encoded, after the second update.
    assert probed.returncode == 0, probed.stderr[-3000:]
    assert "sampled: hamming" in probed.stdout and "run's children: fitness" in probed.stdout
    report = json.loads((run_dir / "probe.json").read_text())
    assert report["samples"] == 12 and report["permutations"] == 19 and report["updates"] == 2
    assert report["sampled"]["hamming"]["pairs"] == 66
    assert report["untrained"]["hamming"]["pairs"] == 66  # The reference: before any update.
    assert 0 < report["sampled"]["hamming"]["p"] <= 1
    assert list((run_dir / "probe").glob("events.out.tfevents.*"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == "probe.py: --samples must be >= 3, got 2"


def test_the_embedding_strategy_runs_and_the_probe_refuses_its_folder(processes):
    (search, probed), run_dir = processes["embedding"].result()
    check_search_ran(search, run_dir, retrained=False)
    report = json.loads((run_dir / "embedding" / "pretrain.json").read_text())
    assert report["samples"] == 200 and report["epochs"] == 5
    assert (run_dir / "embedding" / "autoencoder.weights.npz").exists()
    assert "embedding: autoencoder pre-trained on 200 random architectures" in search.stdout
    assert probed.returncode == 2 and "Traceback" not in probed.stderr
    assert "--strategy=embedding run; the probe reads a controller" in probed.stderr
