import json
from pathlib import Path

import pytest

from training.config import Hyperparameters, parse_bool, parse_run_args, process_place
from training.errors import ConfigError

PATHS = ["--data_dir", "/data", "--model_dir", "/model"]


def test_defaults_are_the_default_local_run() -> None:
    hp = parse_run_args(PATHS, {}).hyperparameters
    assert (hp.arch, hp.image_size, hp.weights, hp.freeze_backbone) == ("resnet18", 64, None, False)
    assert (hp.learning_rate, hp.batch_size, hp.epochs, hp.bf16) == (2e-3, 64, 3, False)


def test_arguments_win_over_sm_hps_which_wins_over_defaults() -> None:
    env = {"SM_HPS": json.dumps({"epochs": 7, "batch_size": 32, "learning_rate": 0.01})}
    hp = parse_run_args([*PATHS, "--epochs", "2"], env).hyperparameters
    assert hp.epochs == 2  # argument
    assert hp.batch_size == 32 and hp.learning_rate == 0.01  # SM_HPS
    assert hp.patience == Hyperparameters().patience  # default


@pytest.mark.parametrize("text, expected", [("true", True), ("True", True), ("FALSE", False), ("0", False)])
def test_booleans_arrive_as_strings(text: str, expected: bool) -> None:
    hp = parse_run_args([*PATHS, "--freeze_backbone", text, "--channels_last", text], {}).hyperparameters
    assert hp.freeze_backbone is expected and hp.channels_last is expected
    assert parse_bool(text) is expected


def test_booleans_and_null_from_sm_hps() -> None:
    env = {"SM_HPS": json.dumps({"freeze_backbone": True, "weights": None, "augment": "false"})}
    hp = parse_run_args(PATHS, env).hyperparameters
    assert hp.freeze_backbone is True and hp.weights is None and hp.augment is False
    assert parse_run_args([*PATHS, "--weights", "null"], {}).hyperparameters.weights is None
    assert parse_run_args([*PATHS, "--weights", "IMAGENET1K_V1"], {}).hyperparameters.weights == "IMAGENET1K_V1"


def test_paths_come_from_sagemaker_variables(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    env = {"SM_CHANNEL_TRAINING": "/opt/ml/input/data/training", "SM_MODEL_DIR": str(tmp_path / "model"),
           "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data"}
    paths = parse_run_args([], env).paths
    assert paths.data.root == "/opt/ml/input/data/training"
    assert paths.model_dir == tmp_path / "model"
    assert paths.output_dir == Path("/opt/ml/output/data")
    # /opt/ml/checkpoints is the checkpoints folder beside SM_MODEL_DIR, used when it exists.
    assert paths.checkpoint_dir == tmp_path / "checkpoints"


def test_arguments_win_over_sagemaker_variables(tmp_path: Path) -> None:
    env = {"SM_CHANNEL_TRAINING": "/env/data", "SM_MODEL_DIR": "/env/model", "SM_OUTPUT_DATA_DIR": "/env/out"}
    args = ["--data_dir", "/arg/data", "--model_dir", "/arg/model", "--output_dir", "/arg/out",
            "--checkpoint_dir", str(tmp_path / "ck")]
    paths = parse_run_args(args, env).paths
    assert (paths.data.root, paths.model_dir, paths.output_dir) == ("/arg/data", Path("/arg/model"), Path("/arg/out"))
    assert paths.checkpoint_dir == tmp_path / "ck"
    assert parse_run_args([*args[:-2], "--checkpoint_dir", "none"], env).paths.checkpoint_dir is None


def test_one_channel_per_split() -> None:
    env = {"SM_CHANNEL_TRAIN": "/c/train", "SM_CHANNEL_VALID": "/c/valid", "SM_CHANNEL_TEST": "/c/test",
           "SM_MODEL_DIR": "/m"}
    data = parse_run_args([], env).paths.data
    assert (data.root, data.train, data.valid, data.test) == (None, "/c/train", "/c/valid", "/c/test")
    del env["SM_CHANNEL_TEST"]
    with pytest.raises(ConfigError, match="SM_CHANNEL_TEST"):
        parse_run_args([], env)


@pytest.mark.parametrize("argv, env, message", [
    ([], {"SM_MODEL_DIR": "/m"}, "--data_dir"),
    (["--data_dir", "/d"], {}, "--model_dir"),
    ([*PATHS, "--epochs", "0"], {}, "--epochs"),
    ([*PATHS, "--epochs", "two"], {}, "--epochs"),
    ([*PATHS, "--arch", "vgg"], {}, "--arch"),
    ([*PATHS, "--on_bad_image", "ignore"], {}, "--on_bad_image"),
    ([*PATHS, "--freeze_backbone", "maybe"], {}, "--freeze_backbone"),
    ([*PATHS, "--learning-rate", "0.1"], {}, "--learning-rate"),
    (PATHS, {"SM_HPS": "{not json"}, "SM_HPS"),
])
def test_bad_input_names_the_argument(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_run_args(argv, env)


def test_sagemaker_own_hyperparameters_are_ignored() -> None:
    hp = parse_run_args([*PATHS, "--sagemaker_program", "train.py", "--epochs", "4"], {}).hyperparameters
    assert hp.epochs == 4


def test_process_place_from_torchrun_and_sagemaker() -> None:
    place = process_place({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                           "SM_NUM_CPUS": "4"})
    assert place.distributed and not place.is_primary and place.threads == 2
    assert process_place({"WORLD_SIZE": "2", "RANK": "0"}).is_primary
    # Independent hosts (no DDP): only the first host writes the artifact.
    hosts = json.dumps(["algo-1", "algo-2"])
    assert process_place({"SM_HOSTS": hosts, "SM_CURRENT_HOST": "algo-1"}).is_primary
    assert not process_place({"SM_HOSTS": hosts, "SM_CURRENT_HOST": "algo-2"}).is_primary
    with pytest.raises(ConfigError, match="SM_CURRENT_HOST"):
        process_place({"SM_HOSTS": hosts, "SM_CURRENT_HOST": "algo-9"})
