"""The remote launchers send exactly the stack's job requests, then deliver a real artifact record.

The EC2 launcher, whose user data runs on a stand-in instance, is tested in test_ec2_launcher.py."""

from __future__ import annotations

import copy
import io
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from runner_helpers import inventory, settings_for

from runner import deploy
from runner.launchers import TrainingRun, launcher_for
from runner.stack.build import build_stack


def _fake_local_training(calls: list[dict]):
    """Stands in for run_local_training (torch-free): records its arguments, writes an artifact."""

    def run_local_training(*, hyperparameters, data_dir, run_dir, instance_count=1, quiet=False, timeout_s=None,
                           checkpoint_dir=None, channels=None, submit_directory=None, network_isolation=False,
                           job_name=None, aws_environment=None):
        calls.append({"hyperparameters": dict(hyperparameters), "data_dir": Path(data_dir),
                      "instance_count": instance_count, "channels": dict(channels or {}),
                      "submit_directory": submit_directory, "network_isolation": network_isolation,
                      "job_name": job_name, "aws_environment": dict(aws_environment or {})})
        artifact = Path(run_dir) / "model.tar.gz"
        with tarfile.open(artifact, "w:gz") as archive:
            info = tarfile.TarInfo("model.json")
            body = b'{"arch": "resnet18"}'
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
        log = Path(run_dir) / "train.log"
        log.write_text("Testing Accuracy: 0.9\n")
        return SimpleNamespace(artifact=artifact, metrics={"test_accuracy": 0.9}, log_path=log)

    return run_local_training


def _capture(target, operation: str) -> list[dict]:
    sent: list[dict] = []

    def hook(params, **_):
        sent.append(copy.deepcopy(params))

    target.register(f"provide-client-params.{operation}", hook)
    return sent


def _launch(name, settings, stack, target, run_dir, data_dir, calls):
    """What the train stage does: the bucket and the job's roles first, then the launcher."""
    deploy.ensure_bucket(target, stack.names)
    deploy.apply_only(stack, target, stack.job_role_ids())
    run = TrainingRun(settings, stack, run_dir, data_dir, target, local_runner=_fake_local_training(calls))
    return launcher_for(name)(run)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "digits"
    for split in ("train", "valid", "test"):
        for label in ("0", "1"):
            (root / split / label).mkdir(parents=True)
            (root / split / label / "a.png").write_bytes(b"png-" + split.encode() + label.encode())
    return root


@pytest.mark.parametrize("overrides", [("training=sagemaker",), ("training=sagemaker_multi",),
                                       ("training=sagemaker", "training.network_isolation=false")])
def test_sagemaker_launcher_sends_the_stacks_training_job(local_target, stack_name, tmp_path, data_dir, overrides):
    settings = settings_for(stack_name, *overrides)
    stack = build_stack(settings, run_id="run1")
    sent = _capture(local_target, "sagemaker.CreateTrainingJob")
    calls: list[dict] = []
    result = _launch("sagemaker", settings, stack, local_target, tmp_path / "run", data_dir, calls)

    (job,) = [j for j in stack.jobs if j.kind == "training_job"]
    assert sent == [job.request]
    assert calls[0]["instance_count"] == job.request["ResourceConfig"]["InstanceCount"]
    assert calls[0]["hyperparameters"] == {k: v for k, v in job.request["HyperParameters"].items()
                                           if not k.startswith("sagemaker_")}
    s3 = local_target.client("s3")
    bucket, key = result.artifact_uri[5:].split("/", 1)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == result.artifact.read_bytes()
    # The bundle: an S3 URI in sagemaker_submit_directory, or (network isolation) the code channel's.
    (code,) = [c for c in job.request["InputDataConfig"] if c["ChannelName"] == "code"] or [None]
    bundle_uri = code["DataSource"]["S3DataSource"]["S3Uri"] if code else \
        job.request["HyperParameters"]["sagemaker_submit_directory"]
    bundle_bucket, bundle_key = bundle_uri[5:].split("/", 1)
    assert s3.head_object(Bucket=bundle_bucket, Key=bundle_key)["ContentLength"] > 0
    data_bucket, data_prefix = stack.names.data_uri[5:].split("/", 1)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=data_bucket, Prefix=data_prefix)["Contents"]}
    assert f"{data_prefix}/train/0/a.png" in keys and len(keys) == 6
    role = job.request["RoleArn"].rsplit("/", 1)[1]
    assert f"role:{role}" in inventory(local_target, stack_name)
    assert result.metrics == {"test_accuracy": 0.9} and result.job_name == job.request["TrainingJobName"]
    # An isolated container gets no AWS settings; one that is not reaches AWS (the emulator) as its role.
    isolated = job.request["EnableNetworkIsolation"]
    environment = calls[0]["aws_environment"]
    if isolated:
        assert environment == {}
    else:  # the job's role's temporary credentials, on the emulator
        assert environment["AWS_ENDPOINT_URL"] == local_target.endpoint_url
        assert environment["AWS_ACCESS_KEY_ID"].startswith("ASIA") and environment["AWS_SESSION_TOKEN"]


def test_sagemaker_launcher_sends_the_stacks_tuning_job(local_target, stack_name, tmp_path, data_dir):
    settings = settings_for(stack_name, "training=sagemaker", "hpo=sagemaker_tuner")
    stack = build_stack(settings, run_id="tune1")
    (job,) = [j for j in stack.jobs if j.kind == "tuning_job"]
    sent = _capture(local_target, "sagemaker.CreateHyperParameterTuningJob")
    calls: list[dict] = []
    result = _launch("sagemaker", settings, stack, local_target, tmp_path / "run", data_dir, calls)
    assert sent == [job.request]
    static = {k: v for k, v in job.request["TrainingJobDefinition"]["StaticHyperParameters"].items()
              if not k.startswith("sagemaker_")}
    assert static.items() <= calls[0]["hyperparameters"].items()
    assert result.artifact.is_file() and result.artifact_uri.startswith("s3://")


def test_the_stacks_tuning_request_is_valid_for_the_api(stack_name):
    import botocore.session
    from botocore.validate import ParamValidator

    settings = settings_for(stack_name, "training=sagemaker", "hpo=sagemaker_tuner")
    (job,) = [j for j in build_stack(settings).jobs if j.kind == "tuning_job"]
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("CreateHyperParameterTuningJob").input_shape
    report = ParamValidator().validate(job.request, shape)
    assert not report.has_errors(), report.generate_report()
