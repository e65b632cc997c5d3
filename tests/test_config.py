"""config.py: the settings' checks, run folders made before --evaluation, and the flags
made from the settings."""

import dataclasses
import json
import pathlib
import subprocess
import sys

import pytest

import config
import specs

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(evaluation="shared"), "needs --space=macro"),
        (dict(space="macro", strategy="proxy_ranking", evaluation="shared"), "--strategy=proxy_ranking is for --evaluation=train"),
        (dict(evaluation="trained"), "--evaluation must be one of"),
        (dict(space="macro", evaluation="shared", reward_mode="eval"), "--reward_mode"),
        (dict(space="macro", evaluation="shared", shared_bn="none"), "--shared_bn"),
        (dict(space="macro", shared_steps_per_epoch=0), "--shared_steps_per_epoch"),
        (dict(space="macro", eval_batch=0), "--eval_batch"),
        (dict(space="macro", derive_candidates=0), "--derive_candidates"),
        (dict(space="macro", shared_lr=0.01, shared_lr_min=0.1), "--shared_lr_min"),
        (dict(space="macro", shared_grad_clip=0.0), "--shared_grad_clip"),
        (dict(space="macro", shared_l2=-1.0), "--shared_l2"),
        (dict(space="macro", strategy="tpe", evaluation="shared"), "--strategy=tpe is for"),
        (dict(space="macro", strategy="darts", evaluation="shared"),
         "--strategy=darts needs a supernet with mixed ops: --space=nb201, got --space=macro"),
        (dict(space="nb201", strategy="gdas"), "--strategy=gdas is for --evaluation=shared"),
        (dict(space="nb201", evaluation="shared", template="examples/my_space.py:build_mlp"),
         "--template=examples/my_space.py:build_mlp has none"),
        (dict(strategy="random", controller={"memory_size": 50}), "--memory_size is a setting of the controller"),
        (dict(strategy="embedding", embedding_pretrain=1), "--embedding_pretrain must be"),
        (dict(strategy="embedding", embedding_latent=0), "--embedding_latent must be"),
        (dict(strategy="embedding", embedding_lr=0.0), "--embedding_lr must be"),
    ],
)
def test_bad_shared_settings_are_one_clear_error(changes, message):
    with pytest.raises(config.ConfigError, match=message):
        config.SearchConfig(**changes).resolved()


def test_shared_run_name_says_so():
    c = config.SearchConfig(space="macro", evaluation="shared", poison="zero").resolved()
    assert c.run_name == "macro-poisoned-controller-shared-seed0"


@pytest.mark.parametrize("reward, evaluation", [("naswot", "naswot"), ("accuracy", "train")])
def test_a_run_made_with_the_old_reward_flag_reads_back_as_its_evaluation(
    tmp_path, reward, evaluation
):
    saved = {k: v for k, v in config.SearchConfig().resolved().__dict__.items()}
    del saved["evaluation"]
    saved["reward"] = reward
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert config.read_config(tmp_path).evaluation == evaluation


@pytest.mark.parametrize(
    "changes, workers",
    [
        (dict(), 0),  # The default search: 64 trials, in the search process.
        (dict(trials=100), 0),
        (dict(trials=101), 1),  # Long searches: one worker process, flat memory.
        (dict(trials=101, strategy="proxy_ranking"), 1),
        (dict(space="macro", evaluation="shared", trials=10_000), 0),  # One supernet, no children.
        (dict(trials=5, workers=3), 3),
        (dict(trials=500, workers=0), 0),
    ],
)
def test_workers_default_to_one_process_for_long_searches_only(changes, workers):
    assert config.SearchConfig(**changes).resolved().workers == workers


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(workers=-1), "--workers must be an integer >= 0"),
        (dict(workers=1.5), "--workers must be an integer >= 0"),
        (dict(space="macro", evaluation="shared", workers=2), "use --workers=0"),
        (dict(workers=1, cpus_per_child=0), "--cpus_per_child must be > 0"),
        (dict(workers=1, gpus_per_child=-1), "--gpus_per_child must be >= 0"),
        (dict(worker_children=0), "--worker_children must be an integer >= 1"),
        (dict(worker_growth_mb=0), "--worker_growth_mb must be an integer >= 1"),
    ],
)
def test_bad_worker_settings_are_one_clear_error(changes, message):
    with pytest.raises(config.ConfigError, match=message):
        config.SearchConfig(**changes).resolved()


def test_the_memory_controller_keeps_10000_architectures_unless_told_otherwise():
    c = config.SearchConfig(strategy="memory_controller").resolved()
    assert c.controller["memory_size"] == specs.MEMORY_SIZE == 10_000
    c = config.SearchConfig(strategy="memory_controller", controller={"memory_size": 64}).resolved()
    assert c.controller["memory_size"] == 64
    c = config.SearchConfig(strategy="controller", controller={"memory_size": 64}).resolved()
    assert c.controller["memory_size"] == 64  # --memory_size on the plain controller.


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(controller={"learning_rate": -1.0}), r"--controller_lr must be a number > 0, got -1.0"),
        (dict(controller={"lstm_units": 0}), r"--lstm_units must be an integer >= 1, got 0"),
        (dict(controller={"memory_size": -1}), r"--memory_size must be an integer >= 0"),
        (dict(controller={"exploration": 1.0}), r"--exploration must be in \[0, 1\)"),
        (dict(controller={"lstm_unitz": 3}), r"unknown controller setting.*'lstm_unitz'"),
        (dict(val_size=4000), "val_size=4000 leaves no training data"),
        (dict(train_size=3901, val_size=100), "exceeds the 4000 available"),
        (dict(space="macro", evaluation="shared", val_size=100, eval_batch=101),
         "scoring minibatch of 101 must be between 1 and the 100 validation images"),
        (dict(space="macro", evaluation="shared", train_size=64, batch_size=65),
         "supernet minibatch of 65 must be between 1 and the 64 training images"),
        (dict(evaluation="naswot", train_size=100, proxy_batch=101),
         "--proxy_batch=101 is larger than the 100 training images"),
        (dict(strategy="proxy_ranking", val_size=3900, proxy_batch=128),
         "--proxy_batch=128 is larger than the 100 training images"),
    ],
)
def test_controller_settings_and_data_sizes_are_refused_by_the_config(changes, message):
    with pytest.raises(config.ConfigError, match=message):
        config.SearchConfig(**changes).resolved()


def test_a_benchmark_search_loads_no_images_so_their_sizes_do_not_matter():
    c = config.SearchConfig(space="nb201", evaluation="benchmark", val_size=10**6).resolved()
    assert c.val_size == 10**6


def test_the_controller_checks_are_the_same_for_the_config_and_the_controller():
    assert config.check_controller({})["lstm_units"] == config.CONTROLLER_DEFAULTS["lstm_units"]
    with pytest.raises(config.ConfigError, match=r"^learning_rate must be a number > 0"):
        config.check_controller({"learning_rate": 0})


def test_a_training_free_evaluation_is_any_score_and_names_the_run():
    assert config.SCORES == ("naswot", *config.PROXIES)
    for score in config.SCORES:
        c = config.SearchConfig(evaluation=score).resolved()
        assert c.score_name == score and c.run_name == f"toy-controller-{score}-seed0"
    c = config.SearchConfig(strategy="proxy_ranking", proxy="synflow").resolved()
    assert c.score_name == "synflow" and c.run_name == "toy-proxy_ranking-synflow-seed0"
    assert config.SearchConfig(strategy="proxy_ranking").resolved().run_name == "toy-proxy_ranking-seed0"


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(proxy="fisher"), r"--proxy must be one of \['naswot', 'synflow'"),
        (dict(proxy="synflow"), "--proxy=synflow is the score --strategy=proxy_ranking ranks by"),
        (dict(strategy="proxy_ranking", evaluation="snip"), "--strategy=proxy_ranking ranks by a score"),
        (dict(evaluation="fisher"), "--evaluation must be one of"),
    ],
)
def test_bad_score_settings_are_one_clear_error(changes, message):
    with pytest.raises(config.ConfigError, match=message):
        config.SearchConfig(**changes).resolved()


# ---------------------------------------------------------------------- one source

# Runs in a fresh Python: importing train.py defines absl flags (--logdir, ...) that
# would clash with TensorBoard's own in the test process.
_FLAGS_AGAINST_FIELDS = r"""
import dataclasses, json
import config, train

F = train.FLAGS
problems = []
settings = config.flag_settings()
own = {f.name for f in F.flags_by_module_dict()["train"]}
expected = {s.name for s in settings} | {"resume"} | set(config.RENAMED_FLAGS)
if own != expected:
    problems.append(f"flags {sorted(own ^ expected)}")
defaults = config.SearchConfig()


def other_value(s):
    if s.kind == "enum":
        return next(v for v in s.allowed if v != s.default)
    if s.kind == "boolean":
        return not s.default
    if s.kind == "integer":
        return (s.default or 0) + 3
    if s.kind == "float":
        return (s.default or 0.0) + 0.375
    return "2h" if s.name == "time_budget" else "given-" + s.name


def parsed(argv):
    F.unparse_flags()
    F(["train.py", *argv])
    return dataclasses.asdict(train.config_from_flags())


# An old name of a renamed flag sets what its new name sets.
for old, new in config.RENAMED_FLAGS.items():
    value = other_value(next(s for s in settings if s.name == new))
    via_old, via_new = parsed([f"--{old}={value}"]), parsed([f"--{new}={value}"])
    if via_old != via_new or via_new == parsed([]):
        problems.append(f"--{old}={value} is not --{new}={value}")
def resolved(argv):
    F.unparse_flags()
    F(["train.py", *argv])
    return dataclasses.asdict(train.config_from_flags().resolved())


# An old value of a renamed one (config.RENAMED_VALUES) runs what its new value runs, and
# a command line of old names (an old flag file) the same search as one of new names.
for setting, renamed in config.RENAMED_VALUES.items():
    for old, new in renamed.items():
        if resolved([f"--{setting}={old}"]) != resolved([f"--{setting}={new}"]):
            problems.append(f"--{setting}={old} is not --{setting}={new}")
old = resolved(["--strategy=naswot", "--naswot_candidates=700", "--naswot_batch=32"])
new = resolved(["--strategy=proxy_ranking", "--proxy_candidates=700", "--proxy_batch=32"])
if old != new or (new["strategy"], new["proxy_candidates"], new["proxy_batch"]) != (
        "proxy_ranking", 700, 32):
    problems.append(f"old names {old} are not the new {new}")
for s in settings:
    flag = F[s.name]
    if flag.default != s.default or not flag.help.endswith(s.help) or not s.help.strip():
        problems.append(f"{s.name}: flag {flag.default!r} vs setting {s.default!r}")
    enum = list(getattr(flag.parser, "enum_values", None) or [])
    if s.kind == "enum" and (enum != list(s.allowed) or s.default not in s.allowed):
        problems.append(f"{s.name}: allowed values")
    # A value other than the default, given as the flag, reaches its field and nothing else.
    value = other_value(s)
    F.unparse_flags()
    given = f"--{'' if value else 'no'}{s.name}" if s.kind == "boolean" else f"--{s.name}={value}"
    F(["train.py", given])
    got = train.config_from_flags()
    if s.key:
        changed = {k for k, v in got.controller.items() if v != config.CONTROLLER_DEFAULTS[k]}
        if got.controller[s.key] != value or changed - {s.key}:
            problems.append(f"--{s.name}={value}: controller {got.controller}")
        got.controller = {}
    else:
        if getattr(got, s.field) != value:
            problems.append(f"--{s.name}={value}: {s.field}={getattr(got, s.field)!r}")
        setattr(got, s.field, s.default)
        got.controller = {}
    if s.name in ("time_budget", "benchmark_seconds"):
        got.trials = defaults.trials  # A time budget alone leaves --trials unlimited.
    if dataclasses.asdict(got) != dataclasses.asdict(dataclasses.replace(defaults, controller={})):
        problems.append(f"--{s.name}={value} changed other settings")
print(json.dumps([len(settings), problems]))
"""


def test_every_flag_is_its_setting_s_field_and_reaches_only_that_field():
    """train.py's flags are made from SearchConfig's fields (config.flag_settings):
    the same names, defaults, help and allowed values; and each flag, given alone with
    a value other than its default, changes its own setting and no other; a renamed
    flag's old name (config.RENAMED_FLAGS) sets what its new name does, and a renamed
    value's old name (config.RENAMED_VALUES: --strategy=naswot) runs what its new one does."""
    proc = subprocess.run(
        [sys.executable, "-c", _FLAGS_AGAINST_FIELDS], cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    count, problems = json.loads(proc.stdout.strip().splitlines()[-1])
    assert problems == []
    assert count == len(dataclasses.fields(config.SearchConfig)) - 1 + len(config.CONTROLLER_HELP)


def test_every_field_declares_its_help_and_each_group_starts_once():
    fields = dataclasses.fields(config.SearchConfig)
    assert all(f.metadata["help"].strip() for f in fields)
    groups = [f.metadata["group"] for f in fields if f.metadata["group"]]
    assert len(groups) == len(set(groups)) and fields[0].metadata["group"]
    assert set(config.CONTROLLER_HELP) == set(config.CONTROLLER_DEFAULTS) - {"init_range"}


def test_old_names_of_settings_and_values_give_the_new_ones():
    """SearchConfig takes a renamed field's old name (config.RENAMED_FLAGS) as a keyword,
    and resolves a renamed value (config.RENAMED_VALUES) to its new one."""
    old = config.SearchConfig(strategy="naswot", naswot_candidates=90, naswot_batch=16, trials=9)
    new = config.SearchConfig(strategy="proxy_ranking", proxy_candidates=90, proxy_batch=16, trials=9)
    assert old.proxy_candidates == 90 and old.proxy_batch == 16
    assert old.resolved() == new.resolved()
    assert new.resolved().strategy == "proxy_ranking"
    assert config.earlier_run_names(new.resolved()) == ["toy-naswot-seed0"]
    with pytest.raises(TypeError, match="naswot_batch is the old name of proxy_batch"):
        config.SearchConfig(naswot_batch=16, proxy_batch=32)


def test_a_config_json_written_with_old_names_reads_back_under_the_new(tmp_path):
    saved = dataclasses.asdict(config.SearchConfig(strategy="proxy_ranking", trials=9).resolved())
    saved["strategy"] = "naswot"
    saved["naswot_candidates"], saved["naswot_batch"] = saved.pop("proxy_candidates"), 16
    del saved["proxy_batch"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    read = config.read_config(str(tmp_path))
    assert (read.strategy, read.proxy_candidates, read.proxy_batch) == ("proxy_ranking", 90, 16)
