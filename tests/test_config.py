"""config.py: the weight-sharing settings' checks, and run folders made before --evaluation."""

import json

import pytest

import config


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(evaluation="shared"), "needs --space=macro"),
        (dict(space="macro", strategy="naswot", evaluation="shared"), "is for --strategy"),
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
        (dict(strategy="random", controller={"memory_size": 50}), "--controller_memory is a setting of the controller"),
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
        (dict(trials=101, strategy="naswot"), 1),
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
    assert c.controller["memory_size"] == config.MEMORY_SIZE == 10_000
    c = config.SearchConfig(strategy="memory_controller", controller={"memory_size": 64}).resolved()
    assert c.controller["memory_size"] == 64
    c = config.SearchConfig(strategy="controller", controller={"memory_size": 64}).resolved()
    assert c.controller["memory_size"] == 64  # --controller_memory on the plain controller.


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(controller={"learning_rate": -1.0}), r"--controller_lr must be a number > 0, got -1.0"),
        (dict(controller={"lstm_units": 0}), r"--lstm_units must be an integer >= 1, got 0"),
        (dict(controller={"memory_size": -1}), r"--controller_memory must be an integer >= 0"),
        (dict(controller={"exploration": 1.0}), r"--exploration must be in \[0, 1\)"),
        (dict(controller={"lstm_unitz": 3}), r"unknown controller setting.*'lstm_unitz'"),
        (dict(val_size=4000), "val_size=4000 leaves no training data"),
        (dict(train_size=3901, val_size=100), "exceeds the 4000 available"),
        (dict(space="macro", evaluation="shared", val_size=100, eval_batch=101),
         "scoring minibatch of 101 must be between 1 and the 100 validation images"),
        (dict(space="macro", evaluation="shared", train_size=64, batch_size=65),
         "supernet minibatch of 65 must be between 1 and the 64 training images"),
        (dict(evaluation="naswot", train_size=100, naswot_batch=101),
         "--naswot_batch=101 is larger than the 100 training images"),
        (dict(strategy="naswot", val_size=3900, naswot_batch=128),
         "--naswot_batch=128 is larger than the 100 training images"),
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
    c = config.SearchConfig(strategy="naswot", proxy="synflow").resolved()
    assert c.score_name == "synflow" and c.run_name == "toy-naswot-synflow-seed0"
    assert config.SearchConfig(strategy="naswot").resolved().run_name == "toy-naswot-seed0"


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(proxy="fisher"), r"--proxy must be one of \['naswot', 'synflow'"),
        (dict(proxy="synflow"), "--proxy=synflow is the score --strategy=naswot ranks by"),
        (dict(strategy="naswot", evaluation="snip"), "--strategy=naswot ranks by a score"),
        (dict(evaluation="fisher"), "--evaluation must be one of"),
    ],
)
def test_bad_score_settings_are_one_clear_error(changes, message):
    with pytest.raises(config.ConfigError, match=message):
        config.SearchConfig(**changes).resolved()
