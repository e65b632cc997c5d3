"""assess.py end to end, as a user runs it: a tiny grid, its reports, resuming, bad input."""

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import frameworks_blocked, start_background, tiny_flags

ROOT = Path(__file__).resolve().parents[1]

# The tiny search (conftest.TINY_SEARCH) of 2 children, 2-layer macro ones of 4 channels
# on 120 images: seconds each.
TINY = tiny_flags(
    trials=2, num_layers=2, filters=4, train_size=120, val_size=60, poison="zero",
    poison_instances=2,
) + ["--seeds=0"]
POISONED = "poison-zero-k2"


def assess(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "assess.py", *TINY, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
        **kwargs,
    )


def results(out):
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def background_jobs(folder):
    """The module's grid, started with the suite on the background pool (conftest.py):
    the poisoned half of a grid first, then the whole grid in the same folder."""
    out = folder / "assess"

    def grid():
        half = assess(f"--out={out}", "--clean=false", "--jobs=2")
        whole = assess(f"--out={out}", "--jobs=2", f"--reach={REACH}")
        return out, half, whole

    def naswot():
        proc = assess(f"--out={folder / 'naswot'}", "--clean=false", "--jobs=1",
                      "--evaluation=naswot", "--proxy_batch=32", "--strategies=controller",
                      "--final_epochs=0")
        return folder / "naswot", proc

    return {"grid": grid, "naswot": naswot}


@pytest.fixture(scope="module")
def grid():
    """(folder, CompletedProcess of the half grid, of the whole grid)."""
    return start_background(sys.modules[__name__])["grid"].result()


REACH = 0.3


def test_grid_runs_every_setting_strategy_and_seed_under_one_budget(grid):
    out, half, whole = grid
    assert half.returncode == 0, half.stderr[-3000:]
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert "Traceback" not in half.stderr + whole.stderr
    rows = results(out)
    assert [(r["setting"], r["strategy"], r["seed"]) for r in rows] == [
        ("clean", "controller", "0"),
        ("clean", "random", "0"),
        (POISONED, "controller", "0"),
        (POISONED, "random", "0"),
    ]
    for r in rows:
        assert r["trials"] == "2"
        run_dir = out / r["run_dir"]
        config = json.loads((run_dir / "config.json").read_text())
        assert (config["strategy"], config["seed"]) == (r["strategy"], 0)
        assert config["trials"] == 2 and config["epochs"] == 1 and config["filters"] == 4
        assert config["poison"] == ("zero" if r["setting"] == POISONED else "")
        best = json.loads((run_dir / "best.json").read_text())
        assert float(r["test_accuracy"]) == pytest.approx(best["test_accuracy"], abs=1e-6)
        with open(run_dir / "history.csv", newline="") as f:
            history = list(csv.DictReader(f))
        assert len(history) == 2
        accuracies = [float(h["val_accuracy"]) for h in history]
        assert float(r["best_val_accuracy"]) == pytest.approx(max(accuracies), abs=1e-6)
        assert float(r["last_quarter_mean_fitness"]) == pytest.approx(accuracies[-1], abs=1e-6)
        if r["setting"] == POISONED:
            # 2 layers, 6 clean ops + 2 copies of zero: prior 2/8 per layer.
            assert float(r["poison_prior"]) == pytest.approx(0.25)
            rate = int(history[-1]["poisoned_layers"]) / 2
            assert float(r["last_quarter_poison_rate"]) == pytest.approx(rate)
        else:
            assert r["poison_prior"] == "" and r["last_quarter_poison_rate"] == ""


def test_finished_runs_are_read_back_not_rerun(grid):
    _, half, whole = grid
    for strategy in ("controller", "random"):
        name = f"{POISONED}-{strategy}-seed0"
        assert f"{name}] starting" in half.stdout
        assert f"{name}] finished earlier" in whole.stdout
        assert f"{name}] trial" not in whole.stdout
        assert f"clean-{strategy}-seed0] trial 2/2" in whole.stdout


def test_trials_to_reach_is_the_first_child_at_the_accuracy(grid):
    out, _, _ = grid
    rows = results(out)
    for row in rows:
        with open(out / row["run_dir"] / "history.csv", newline="") as f:
            accuracies = [float(r["val_accuracy"]) for r in csv.DictReader(f)]
        first = next((i + 1 for i, a in enumerate(accuracies) if a >= REACH), "")
        assert row["trials_to_reach"] == str(first)
    summary = (out / "summary.md").read_text()
    assert f"trials to reach {REACH:g} (runs that did)" in summary
    reached = sum(r["trials_to_reach"] != "" for r in rows if r["setting"] == "clean" and r["strategy"] == "random")
    clean_random = next(line for line in summary.splitlines() if line.startswith("| clean | random |"))
    assert f"| {reached}/1" in clean_random


def test_summary_and_plots(grid):
    out, _, _ = grid
    summary = (out / "summary.md").read_text()
    assert "4 of 4 runs finished" in summary
    table = [line for line in summary.splitlines() if line.startswith(f"| {POISONED} |")]
    assert len(table) == 2 and "| 0.250 |" in table[0]  # The prior is in the row.
    rows = {(r["setting"], r["strategy"]): r for r in results(out)}
    rate = float(rows[(POISONED, "controller")]["last_quarter_poison_rate"])
    assert f"| {rate:.3f} |" in table[0]
    assert "## Does the controller avoid the poison?" in summary
    assert f"- {POISONED}: last-quarter poison rate {rate:.3f} (controller, 1 seeds)" in summary
    for name in ("poison_rate.png", "accuracy.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert not list(out.glob("*.tmp*"))


def test_an_interrupted_grid_resumes_where_it_stopped(tmp_path):
    out = tmp_path / "interrupted"
    args = [sys.executable, "assess.py", *TINY, f"--out={out}", "--clean=false"]
    args += ["--strategies=controller", "--final_epochs=0"]  # The search resumes: no retraining.
    args[args.index("--trials=2")] = "--trials=6"
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    history = out / "runs" / f"{POISONED}-controller-seed0" / "history.csv"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    err = err.decode()
    assert proc.returncode == 128 + signal.SIGINT, err[-3000:]
    assert "Traceback" not in err
    assert "Resume with:" in err and "assess.py" in err and f"--out={out}" in err
    assert not (out / "results.csv").exists()

    again = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{POISONED}-controller-seed0] resuming" in again.stdout
    rows = results(out)
    assert [(r["strategy"], r["trials"]) for r in rows] == [("controller", "6")]
    with open(history, newline="") as f:
        assert [r["trial"] for r in csv.DictReader(f)] == [str(i) for i in range(1, 7)]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--strategy=random"], "--strategy is set by the grid; use --strategies"),
        (["--seed=1"], "--seed is set by the grid; use --seeds"),
        (["--seeds=a,b"], "--seeds must be integers"),
        (["--seeds=0,0"], "--seeds must be distinct"),
        (["--strategies=genetic"], "unknown strategy 'genetic'"),
        (["--clean=false", "--poison="], "the grid is empty"),
        (["--poison=nope"], "unknown poison op 'nope'"),
        (["--space=toy"], "needs a space with an op decision"),
        (["--trials=0"], "--trials must be an integer >= 1"),
        (["--jobs=0"], "--jobs must be an integer >= 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    # Refused before any framework loads (poisoning.py needs no Keras): in about a second.
    env = frameworks_blocked(tmp_path / "no-frameworks")
    proc = assess(f"--out={tmp_path / 'out'}", *args, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("assess.py: error:"), proc.stderr
    assert message in lines[0]
    assert not (tmp_path / "out" / "runs").exists()


def test_a_folder_with_another_budget_is_refused(grid):
    out, _, _ = grid
    before = (out / "results.csv").read_text()
    proc = assess(f"--out={out}", "--epochs=2")
    assert proc.returncode == 2
    assert "holds an assessment with another budget: epochs=2 (folder: 1)" in proc.stderr
    assert (out / "results.csv").read_text() == before


def in_subprocess(script):
    """Runs `script` in a fresh Python: importing train.py or assess.py defines absl flags
    (--logdir, ...) that would clash with TensorBoard's own in this test process."""
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_several_poisonings_and_removals_make_one_setting_each():
    runs = in_subprocess(
        "import json, assess\n"
        "assess.FLAGS(['assess.py', '--poison=noise10; dropout1.0,tconv3x3',\n"
        "    '--poison_instances=3', '--remove_ops=maxpool3x3,avgpool3x3',\n"
        "    '--strategies=random', '--seeds=4', '--out=/tmp/not-written'])\n"
        "_, runs = assess.grid_from_flags()\n"
        "print(json.dumps([[s.name, c.poison, c.poison_instances, c.remove_ops, c.strategy,\n"
        "    c.seed, c.space, c.run_name, c.logdir] for s, c in runs]))\n"
    )
    assert [r[:4] for r in runs] == [
        ["clean", "", 1, ""],
        ["poison-noise10-k3", "noise10", 3, ""],
        ["poison-dropout1.0+tconv3x3-k3", "dropout1.0,tconv3x3", 3, ""],
        ["removed-maxpool3x3+avgpool3x3", "", 1, "maxpool3x3,avgpool3x3"],
    ]
    for name, *_, strategy, seed, space, run_name, logdir in runs:
        assert (strategy, seed, space) == ("random", 4, "macro")
        assert run_name == f"{name}-random-seed4"
        assert logdir == "/tmp/not-written/runs"
    assert not Path("/tmp/not-written").exists()


def test_config_to_flags_gives_the_config_back():
    """assess.py runs each search as `train.py <config_to_flags(config)>`."""
    same = in_subprocess(
        "import dataclasses, json, train\n"
        "config = dataclasses.replace(train.config_lib.SearchConfig(), space='macro',\n"
        "    num_layers=5, poison='zero,noise2', poison_instances=4, remove_ops='maxpool3x3',\n"
        "    strategy='random', seed=7, train_size=900, cache=False, tensorboard=False,\n"
        "    final_epochs=4, logdir='/tmp/x', run_name='r', controller=dict(learning_rate=0.02,\n"
        "    tanh_constant=None, entropy_weight=0.01)).resolved()\n"
        "train.FLAGS(['train.py', *train.config_to_flags(config)])\n"
        "again = train.config_from_flags().resolved()\n"
        "controller = {k: v for k, v in again.controller.items() if k in config.controller}\n"
        "print(json.dumps([controller == config.controller,\n"
        "    dataclasses.replace(again, controller={}) == dataclasses.replace(config, controller={}),\n"
        "    again.controller['tanh_constant'], again.poison, again.cache]))\n"
    )
    assert same == [True, True, None, "zero,noise2", False]


def test_a_grid_in_shared_mode_scores_with_shared_weights(tmp_path):
    """The controller against random search with weight sharing (ENAS vs RSWS)."""
    flags = ["--evaluation=shared", "--trials=8", "--children_per_step=4"]
    flags += ["--shared_steps_per_epoch=1", "--eval_batch=16", "--derive_candidates=3"]
    flags += ["--final_epochs=0"]  # The derived pick, not retrained: no test accuracy.
    proc = assess(f"--out={tmp_path}", "--clean=false", "--jobs=2", *flags)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = results(tmp_path)
    assert [(r["setting"], r["strategy"]) for r in rows] == [
        (POISONED, "controller"),
        (POISONED, "random"),
    ]
    for r in rows:
        run_dir = tmp_path / r["run_dir"]
        config = json.loads((run_dir / "config.json").read_text())
        assert config["evaluation"] == "shared" and config["shared_steps_per_epoch"] == 1
        best = json.loads((run_dir / "best.json").read_text())
        assert best["supernet_epochs"] == 2 and (run_dir / "derive.csv").exists()
        assert 0 <= float(r["last_quarter_poison_rate"]) <= 1
        shared = best["shared_val_accuracy"]
        assert float(r["best_val_accuracy"]) == pytest.approx(shared, abs=1e-6)
        assert r["test_accuracy"] == "" and best["test_accuracy"] is None
        assert not (run_dir / "best_model.keras").exists()
    assert "poison rate" in (tmp_path / "summary.md").read_text()
    # Run again: both runs are read back, each said finished without a test accuracy.
    again = assess(f"--out={tmp_path}", "--clean=false", "--jobs=2", *flags)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("finished earlier: no test accuracy") == 2, again.stdout


def test_a_grid_scored_by_naswot_reports_the_score_as_the_fitness():
    # It once ran its whole grid and then died in a KeyError: best.json names the
    # quarter means after the metric (naswot_score), the report read "accuracy".
    tmp_path, proc = start_background(sys.modules[__name__])["naswot"].result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    rows = results(tmp_path)
    assert [(r["setting"], r["strategy"]) for r in rows] == [(POISONED, "controller")]
    for r in rows:
        run_dir = tmp_path / r["run_dir"]
        best = json.loads((run_dir / "best.json").read_text())
        with open(run_dir / "history.csv", newline="") as f:
            scores = [float(h["naswot_score"]) for h in csv.DictReader(f)]
        assert float(r["last_quarter_mean_fitness"]) == pytest.approx(scores[-1], abs=1e-3)
        assert float(r["last_quarter_mean_fitness"]) == pytest.approx(
            best["last_quarter_mean_naswot_score"], abs=1e-6
        )
    assert "mean NASWOT score, last quarter" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "accuracy.png").exists() and (tmp_path / "poison_rate.png").exists()


def test_old_strategy_and_flag_names_make_the_grid_of_the_new_ones(tmp_path):
    """--strategies=naswot (config.RENAMED_VALUES) is proxy_ranking, --naswot_batch
    (config.RENAMED_FLAGS) --proxy_batch; an assessment made before the renames (its
    runs/<setting>-naswot-seed<k> folders, its assess.json budget's naswot_batch)
    resumes in its own folders."""
    out = tmp_path / "a"
    found = in_subprocess(
        "import json, os, assess\n"
        f"out = {str(out)!r}\n"
        "def grid(*flags):\n"
        "    assess.FLAGS.unparse_flags()\n"
        "    assess.FLAGS(['assess.py', '--clean', '--seeds=0,1', f'--out={out}', *flags])\n"
        "    base, runs = assess.grid_from_flags()\n"
        "    return base, [(c.strategy, c.run_name, c.proxy_batch) for _, c in runs]\n"
        "_, old = grid('--strategies=naswot,proxy_ranking', '--naswot_batch=32')\n"
        "_, new = grid('--strategies=proxy_ranking', '--proxy_batch=32')\n"
        "os.makedirs(os.path.join(out, 'runs', 'clean-naswot-seed1'))\n"
        "open(os.path.join(out, 'runs', 'clean-naswot-seed1', 'config.json'), 'w').close()\n"
        "base, resumed = grid('--strategies=naswot', '--naswot_batch=32')\n"
        "budget = assess._budget(base)\n"
        "budget['naswot_batch'] = budget.pop('proxy_batch')\n"
        "with open(os.path.join(out, assess.GRID_FILE), 'w') as f:\n"
        "    json.dump({'budget': budget}, f)\n"
        "assess.check_folder(out, base)  # The old budget's names read as the new.\n"
        "print(json.dumps([old, new, resumed]))\n"
    )
    old, new, resumed = found
    assert old == new == [["proxy_ranking", "clean-proxy_ranking-seed0", 32],
                          ["proxy_ranking", "clean-proxy_ranking-seed1", 32]]
    assert resumed == [["proxy_ranking", "clean-proxy_ranking-seed0", 32],
                       ["proxy_ranking", "clean-naswot-seed1", 32]]
