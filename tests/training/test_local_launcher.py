"""The local launcher end to end: bundle, /opt/ml tree, SageMaker environment, artifact."""

import json
import tarfile
from pathlib import Path

import pytest
from training_helpers import TINY_SIZE

from runner.launchers.local import (
    LaunchError,
    TrainingFailed,
    _container_env,
    hyperparameter_arguments,
    run_local_training,
)

HPS = {"image_size": TINY_SIZE, "epochs": 2, "batch_size": 16, "freeze_backbone": False, "weights": None}


def test_local_training_end_to_end(tiny_digits: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    checkpoints = tmp_path / "checkpoints"
    result = run_local_training(hyperparameters=HPS, data_dir=tiny_digits, run_dir=run_dir,
                                checkpoint_dir=checkpoints, quiet=True, timeout_s=300)
    assert result.artifact == run_dir / "model.tar.gz" and result.log_path == run_dir / "train.log"
    with tarfile.open(result.artifact) as tar:
        names = set(tar.getnames())
        meta = json.load(tar.extractfile("model.json"))
    assert {"model.pth", "model.json", "code/training/model.py", "code/training/__init__.py"} <= names
    assert meta["image_size"] == TINY_SIZE and meta["hyperparameters"]["freeze_backbone"] is False
    assert result.metrics["test_accuracy"] == pytest.approx(meta["metrics"]["test_accuracy"])
    assert result.metrics["epochs_run"] == 2.0
    log = result.log_path.read_text()
    assert log.count("Train Loss:") == 2 and "Testing Loss:" in log
    # The entry found SageMaker's channel, model dir and the /opt/ml/checkpoints link.
    assert "input/data/training" in log
    assert (checkpoints / "checkpoint.pt").exists()
    assert [p.name for p in run_dir.iterdir() if p.name.endswith(".partial")] == []


def test_two_instances_train_one_ddp_job(tiny_digits: Path, tmp_path: Path) -> None:
    result = run_local_training(hyperparameters=HPS, data_dir=tiny_digits, run_dir=tmp_path, instance_count=2,
                                quiet=True, timeout_s=300)
    log = result.log_path.read_text()
    assert "[algo-1] model: resnet18, full fine-tune, 2 process(es)" in log
    assert log.count("Train Loss:") == 2  # printed by the primary only
    assert result.artifact.exists()


def test_failed_training_raises_with_the_log_and_leaves_no_artifact(make_tree, tmp_path: Path) -> None:
    data = make_tree()
    for image in (data / "valid" / "5").iterdir():
        image.unlink()
    with pytest.raises(TrainingFailed, match="empty class folder") as failure:
        run_local_training(hyperparameters=HPS, data_dir=data, run_dir=tmp_path / "run", quiet=True)
    assert failure.value.returncode == 2
    assert any("empty class folder" in line for line in failure.value.tail)
    assert "valid/5" in failure.value.log_path.read_text()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["train.log"]


def test_timeout_stops_training_without_an_artifact(tiny_digits: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingFailed, match="timed out"):
        run_local_training(hyperparameters=HPS, data_dir=tiny_digits, run_dir=tmp_path, quiet=True, timeout_s=0.5)
    assert not (tmp_path / "model.tar.gz").exists()


def test_missing_data_folder(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match=str(tmp_path / "none")):
        run_local_training(hyperparameters=HPS, data_dir=tmp_path / "none", run_dir=tmp_path / "run", quiet=True)


def test_container_environment_is_sagemakers(tmp_path: Path) -> None:
    env = _container_env(tmp_path, {"epochs": 3, "freeze_backbone": True, "weights": None},
                         ["algo-1", "algo-2"], "algo-2", 1, 29500)
    assert env["SM_CHANNEL_TRAINING"] == str(tmp_path / "input" / "data" / "training")
    assert env["SM_MODEL_DIR"] == str(tmp_path / "model")
    assert env["SM_OUTPUT_DATA_DIR"] == str(tmp_path / "output" / "data")
    assert json.loads(env["SM_HPS"]) == {"epochs": 3, "freeze_backbone": True}
    assert json.loads(env["SM_HOSTS"]) == ["algo-1", "algo-2"] and env["SM_CURRENT_HOST"] == "algo-2"
    assert env["SM_NUM_GPUS"] == "0" and json.loads(env["SM_CHANNELS"]) == ["training"]
    assert env["SM_HP_FREEZE_BACKBONE"] == "true"
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["current_host"] == "algo-2" and training_env["is_master"] is False
    assert (env["RANK"], env["WORLD_SIZE"], env["MASTER_PORT"]) == ("1", "2", "29500")
    assert hyperparameter_arguments({"epochs": 3, "freeze_backbone": True, "weights": None}) == \
        ["--epochs", "3", "--freeze_backbone", "true"]
