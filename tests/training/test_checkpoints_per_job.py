"""Trials of a tuning job share the tuning job's CheckpointConfig.S3Uri (SageMaker hands every trial the
same definition): each job checkpoints and resumes under its own TRAINING_JOB_NAME folder."""

from pathlib import Path

import pytest
from training_helpers import TINY_SIZE

from training.checkpoint import checkpoint_path
from training.config import parse_run_args
from training.entry import main
from training.errors import ConfigError


def _env(opt_ml: Path, job_name: str | None) -> dict[str, str]:
    env = {"SM_MODEL_DIR": str(opt_ml / "model"), "SM_OUTPUT_DATA_DIR": str(opt_ml / "output" / "data"),
           "SM_NUM_CPUS": "1"}
    return {**env, "TRAINING_JOB_NAME": job_name} if job_name else env


def test_the_default_checkpoint_folder_is_the_jobs_own(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()  # /opt/ml/checkpoints: the job has a CheckpointConfig
    argv = ["--data_dir", "/data"]
    paths = parse_run_args(argv, _env(tmp_path, "tune-abc-001-1a2b3c4d")).paths
    assert paths.checkpoint_dir == tmp_path / "checkpoints" / "tune-abc-001-1a2b3c4d"
    assert parse_run_args(argv, _env(tmp_path, None)).paths.checkpoint_dir == tmp_path / "checkpoints"
    # An explicit folder is taken as given; no CheckpointConfig, no checkpoints.
    explicit = parse_run_args([*argv, "--checkpoint_dir", str(tmp_path / "mine")], _env(tmp_path, "job")).paths
    assert explicit.checkpoint_dir == tmp_path / "mine"
    (tmp_path / "checkpoints").rmdir()
    assert parse_run_args(argv, _env(tmp_path, "job")).paths.checkpoint_dir is None


@pytest.mark.parametrize("name", ["../other-job", "a/b", ".."])
def test_a_job_name_that_is_not_one_folder_is_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(ConfigError, match="TRAINING_JOB_NAME"):
        parse_run_args(["--data_dir", "/data"], _env(tmp_path, name))


def test_two_trials_on_one_checkpoint_prefix_keep_apart(tiny_digits: Path, tmp_path: Path, capsys) -> None:
    """Before: the second trial (another learning rate) found the first one's checkpoint and failed
    ("belongs to a different run"), or with equal values resumed another trial's model."""
    shared = tmp_path / "checkpoints"  # what both trials' /opt/ml/checkpoints sync with
    shared.mkdir()
    argv = ["--data_dir", str(tiny_digits), "--image_size", str(TINY_SIZE), "--epochs", "1", "--batch_size", "16",
            "--patience", "0"]
    for trial, rate in (("tune-1-001-aaaa", "0.002"), ("tune-1-002-bbbb", "0.01")):
        assert main([*argv, "--learning_rate", rate], env=_env(tmp_path, trial)) == 0, capsys.readouterr().err
        assert "resuming from" not in capsys.readouterr().out
    assert sorted(p.name for p in shared.iterdir()) == ["tune-1-001-aaaa", "tune-1-002-bbbb"]
    assert checkpoint_path(shared / "tune-1-001-aaaa").is_file() and checkpoint_path(shared / "tune-1-002-bbbb").is_file()

    # A restarted trial (managed spot keeps the job's name) resumes from its own checkpoint only.
    assert main([*argv, "--learning_rate", "0.01"], env=_env(tmp_path, "tune-1-002-bbbb")) == 0
    out = capsys.readouterr().out
    assert f"resuming from {checkpoint_path(shared / 'tune-1-002-bbbb')}" in out
