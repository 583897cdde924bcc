"""training.network_isolation=true: the source bundle goes in as the SDK's `code` channel, and every trial of a
tuning job keeps its checkpoints under its own prefix."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.app.compose import compose_settings
from runner.stack.build import build_stack
from runner.stack.jobs import CHECKPOINT_LOCAL_PATH
from runner.targets.request_validation import validate_request
from training.config import parse_run_args

SOURCEDIR_IN_CONTAINER = "/opt/ml/input/data/code/sourcedir.tar.gz"  # the SDK's CONTAINER_CODE_CHANNEL_SOURCEDIR_PATH


def _job(*overrides: str):
    stack = build_stack(compose_settings(list(overrides)), account="210987654321", run_id="20261206-010000")
    (job,) = stack.jobs
    service, operation = job.api.split(":")
    assert [v.message for v in validate_request(service, operation, job.request)] == []
    return job, stack.names.bucket


def _definition(job) -> tuple[dict, dict]:
    if job.kind == "training_job":
        return job.request, job.request["HyperParameters"]
    return job.request["TrainingJobDefinition"], job.request["TrainingJobDefinition"]["StaticHyperParameters"]


@pytest.mark.parametrize("hpo", ["hpo=none", "hpo=sagemaker_tuner"])
def test_an_isolated_job_gets_its_code_as_the_sdks_code_channel(hpo: str) -> None:
    job, bucket = _job("training=sagemaker", "training.network_isolation=true", hpo)
    definition, hps = _definition(job)
    assert definition["EnableNetworkIsolation"] is True
    training, code = definition["InputDataConfig"]
    assert training["ChannelName"] == "training"
    # Exactly what sagemaker.job._Job._prepare_channel builds for estimator.code_uri: an S3Prefix
    # channel on the tarball's key, fully replicated, no InputMode of its own (the job's File mode).
    assert code == {"ChannelName": "code", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/code/sourcedir.tar.gz",
        "S3DataDistributionType": "FullyReplicated"}}}
    assert hps["sagemaker_submit_directory"] == SOURCEDIR_IN_CONTAINER
    assert hps["sagemaker_program"] == "train.py"
    assert not any(str(v).startswith("s3://") for v in hps.values())  # nothing the container must fetch


@pytest.mark.parametrize("hpo", ["hpo=none", "hpo=sagemaker_tuner"])
def test_without_isolation_the_request_stays_as_it_was(hpo: str) -> None:
    job, _ = _job("training=sagemaker", "training.network_isolation=false", hpo)
    definition, hps = _definition(job)
    assert definition["EnableNetworkIsolation"] is False
    assert [c["ChannelName"] for c in definition["InputDataConfig"]] == ["training"]
    assert hps["sagemaker_submit_directory"].startswith("s3://") and \
        hps["sagemaker_submit_directory"].endswith("/code/sourcedir.tar.gz")


def test_tuning_trials_checkpoint_under_different_prefixes(tmp_path: Path) -> None:
    """SageMaker gives every trial the definition's one CheckpointConfig and syncs LocalPath with S3Uri
    recursively; each trial's training package writes under LocalPath/<its TRAINING_JOB_NAME>/."""
    job, _ = _job("training=sagemaker", "hpo=sagemaker_tuner", "training.checkpointing=true")
    config = job.request["TrainingJobDefinition"]["CheckpointConfig"]
    assert config["LocalPath"] == CHECKPOINT_LOCAL_PATH
    local_path = tmp_path / "checkpoints"  # /opt/ml/checkpoints, beside SM_MODEL_DIR
    local_path.mkdir()
    tuning_name = job.request["HyperParameterTuningJobName"]
    prefixes = set()
    for trial in (f"{tuning_name}-001-0a1b2c3d", f"{tuning_name}-002-4e5f6a7b"):
        env = {"SM_MODEL_DIR": str(tmp_path / "model"), "TRAINING_JOB_NAME": trial}
        folder = parse_run_args(["--data_dir", "/data"], env).paths.checkpoint_dir
        assert folder is not None and folder.parent == local_path
        prefixes.add(f"{config['S3Uri'].rstrip('/')}/{folder.relative_to(local_path).as_posix()}/")
    assert len(prefixes) == 2 and not any(a != b and b.startswith(a) for a in prefixes for b in prefixes)


def test_the_isolated_models_container_needs_nothing_outside_its_artifact() -> None:
    """The artifact carries code/inference.py (training/artifact.py): the model's environment points
    there, never at S3, so its EnableNetworkIsolation container finds its code."""
    stack = build_stack(compose_settings(["training=sagemaker", "training.network_isolation=true"]),
                        account="210987654321", run_id="20261206-010000")
    models = [r.properties for r in stack.resources if r.type == "AWS::SageMaker::Model"]
    assert models
    for model in models:
        assert model["EnableNetworkIsolation"] is True
        environment = model["PrimaryContainer"]["Environment"]
        assert environment["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"  # inside model.tar.gz
        assert environment["SAGEMAKER_PROGRAM"] == "inference.py"
        assert not [v for v in environment.values() if "s3://" in v or "amazonaws.com" in v]
