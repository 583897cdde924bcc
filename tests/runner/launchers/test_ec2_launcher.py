"""training=ec2: the RunInstances request is sent as gated, and on the local target its user data
really runs (stand-in instance, metadata stand-in, emulator S3) and leaves the artifact it uploads."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from runner_helpers import settings_for

from runner import deploy
from runner.launchers import LaunchError, TrainingRun, ec2_instance_standin, launcher_for
from runner.launchers.ec2_instance_standin import run_user_data
from runner.stack.build import build_stack
from runner.stack.ec2_user_data import artifact_uri_of, hyperparameters_of, time_limit_minutes_of
from training.archive import pack_directory

FAKE_PYTHON = """#!/bin/bash
# A torch-free stand-in for the DLAMI's python: train.py writes a model directory, the rest is real.
if [ "$1" = "train.py" ]; then
  shift
  while [ $# -gt 0 ]; do
    case "$1" in --model_dir) model="$2";; --data_dir) data="$2";; --epochs) epochs="$2";; esac
    shift 2
  done
  [ -n "${{SLEEP:-}}" ] && sleep "$SLEEP"
  mkdir -p "$model/code"
  printf '{{"arch": "resnet18", "metrics": {{"test_accuracy": 0.9}}, "data": "%s"}}' "$data" > "$model/model.json"
  printf 'weights' > "$model/model.pth"
  printf 'def model_fn(d): pass\\n' > "$model/code/inference.py"
  echo "Epoch 1/$epochs"
  echo "Testing Accuracy: 0.9"
  exit "${{TRAIN_EXIT:-0}}"
fi
exec {python} "$@"
"""


@pytest.fixture
def fake_python(tmp_path: Path) -> Path:
    import sys

    path = tmp_path / "fake-python"
    path.write_text(FAKE_PYTHON.format(python=sys.executable))
    path.chmod(0o755)
    return path


def _ready(target, stack_name: str, *overrides: str):
    """Settings and stack of an EC2 run, with its bucket, role and instance profile in place."""
    settings = settings_for(stack_name, "training=ec2", *overrides)
    stack = build_stack(settings, run_id="ec2run")
    deploy.ensure_bucket(target, stack.names)
    deploy.apply_only(stack, target, stack.job_role_ids())
    return settings, stack


def _request(stack) -> dict:
    return next(j for j in stack.jobs if j.kind == "ec2_run").request


def _state(target, instance_id: str) -> str:
    reservations = target.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def _start(target, settings, stack, data_dir: Path, tmp_path: Path) -> tuple[dict, str]:
    """What the launcher does before the instance runs: inputs in S3, then RunInstances."""
    from runner.launchers.sagemaker import prepare_inputs

    prepare_inputs(TrainingRun(settings, stack, tmp_path / "run", data_dir, target), target)
    request = _request(stack)
    instance_id = target.client("ec2").run_instances(**request)["Instances"][0]["InstanceId"]
    return request, instance_id


# ---- the user data, run on the stand-in instance -------------------------------------------------------

def test_the_user_data_packs_and_uploads_model_tar_gz_with_the_instance_profiles_credentials(
        local_target, stack_name, tmp_path, data_dir, fake_python):
    settings, stack = _ready(local_target, stack_name)
    request, instance_id = _start(local_target, settings, stack, data_dir, tmp_path)
    log = tmp_path / "train.log"

    outcome = run_user_data(local_target, request, instance_id, tmp_path / "instance", log, python=str(fake_python))

    assert outcome.returncode == 0, "\n".join(outcome.tail)
    # The hard limit was scheduled first, and the EXIT trap shut the instance down, which terminated it.
    assert outcome.shutdown_requests == [f"-h +{settings.training.max_runtime // 60}", "-h now"]
    assert _state(local_target, instance_id) in ("shutting-down", "terminated")
    # Credentials came from the metadata stand-in, with a session token first (IMDSv2).
    methods = [(m, p) for m, p, status in outcome.metadata_requests if status == 200]
    assert ("PUT", "/latest/api/token") in methods
    role = request["IamInstanceProfile"]["Name"]
    assert ("GET", f"/latest/meta-data/iam/security-credentials/{role}") in methods
    # model.tar.gz: the model directory packed exactly as SageMaker packs /opt/ml/model, uploaded.
    uri = artifact_uri_of(request["UserData"])
    bucket, key = uri[5:].split("/", 1)
    uploaded = local_target.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    model_dir = tmp_path / "instance" / "opt" / "sagegate" / "model"
    assert uploaded == pack_directory(model_dir, tmp_path / "expected.tar.gz").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(uploaded)) as archive:
        assert sorted(archive.getnames()) == ["code/inference.py", "model.json", "model.pth"]
    # The data set is read from S3 (the training package syncs it), not from this machine.
    assert json.loads((model_dir / "model.json").read_text())["data"] == stack.names.data_uri
    assert "Testing Accuracy: 0.9" in log.read_text()


def test_the_script_gets_no_aws_settings_from_this_machine(local_target, tmp_path, monkeypatch):
    from runner.launchers.ec2_instance_standin import instance_env

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIALEAK")
    monkeypatch.setenv("AWS_PROFILE", "mine")
    env = instance_env(tmp_path / "root", tmp_path / "bin", tmp_path / "home", "/usr/bin/python3",
                       "http://127.0.0.1:9/", local_target.endpoint_url)
    assert {k for k in env if k.startswith("AWS_")} == {
        "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"}
    assert not (tmp_path / "home" / ".aws").exists()
    assert env["PATH"].split(os.pathsep)[0] == str(tmp_path / "bin")  # the shutdown stand-in comes first


def test_a_failing_run_still_shuts_the_instance_down(local_target, stack_name, tmp_path, data_dir, fake_python,
                                                      monkeypatch):
    settings, stack = _ready(local_target, stack_name)
    request, instance_id = _start(local_target, settings, stack, data_dir, tmp_path)
    monkeypatch.setenv("TRAIN_EXIT", "3")  # not passed on: the instance's environment is its own
    fake = tmp_path / "failing-python"
    fake.write_text(fake_python.read_text().replace('exit "${TRAIN_EXIT:-0}"', "exit 3"))
    fake.chmod(0o755)

    outcome = run_user_data(local_target, request, instance_id, tmp_path / "instance", tmp_path / "train.log",
                            python=str(fake))
    assert outcome.returncode == 3
    assert outcome.shutdown_requests[-1] == "-h now"
    assert _state(local_target, instance_id) in ("shutting-down", "terminated")
    bucket, key = artifact_uri_of(request["UserData"])[5:].split("/", 1)
    assert "Contents" not in local_target.client("s3").list_objects_v2(Bucket=bucket, Prefix=key)


def test_the_time_limit_stops_a_stuck_run_and_terminates_the_instance(local_target, stack_name, tmp_path, data_dir,
                                                                       fake_python):
    settings, stack = _ready(local_target, stack_name, "training.max_runtime=120")
    request, instance_id = _start(local_target, settings, stack, data_dir, tmp_path)
    stuck = tmp_path / "stuck-python"
    stuck.write_text(fake_python.read_text().replace('[ -n "${SLEEP:-}" ] && sleep "$SLEEP"', "sleep 600"))
    stuck.chmod(0o755)
    assert time_limit_minutes_of(request["UserData"]) == 2

    # Two "minutes" of 0.5 s each.
    outcome = run_user_data(local_target, request, instance_id, tmp_path / "instance", tmp_path / "train.log",
                            python=str(stuck), minute_s=0.5)
    assert outcome.returncode is None and outcome.stopped_by == "time limit"
    assert outcome.shutdown_requests == ["-h +2"]
    assert _state(local_target, instance_id) in ("shutting-down", "terminated")


# ---- the rendered script -------------------------------------------------------------------------------

def test_the_user_data_is_bash_with_a_hard_limit_a_trap_a_pack_and_an_upload(stack_name):
    settings = settings_for(stack_name, "training=ec2", "target=aws", "training.ec2_subnet_id=subnet-0123456789abcdef0")
    user_data = _request(build_stack(settings, run_id="r1"))["UserData"]
    lines = user_data.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert f"shutdown -h +{settings.training.max_runtime // 60}" in lines
    assert "trap 'shutdown -h now' EXIT" in lines
    assert lines.index(f"shutdown -h +{settings.training.max_runtime // 60}") < lines.index(
        "trap 'shutdown -h now' EXIT") < next(i for i, line in enumerate(lines) if "train.py" in line)
    assert 'ROOT="${SAGEGATE_ROOT:-/opt/sagegate}"' in lines
    assert 'PYTHON="${SAGEGATE_PYTHON:-/opt/pytorch/bin/python}"' in lines
    assert lines[-2] == '"$PYTHON" -m training.archive pack "$ROOT/model" "$ROOT/model.tar.gz"'
    assert lines[-1] == '"$PYTHON" -m training.s3sync put "$ROOT/model.tar.gz" "$ARTIFACT_URI"'
    assert "aws " not in user_data  # no AWS CLI: the DLAMI's python (boto3) does every transfer
    assert hyperparameters_of(user_data)["epochs"] == str(settings.training.epochs)
    assert artifact_uri_of(user_data).endswith(f"/artifacts/{settings.name}-r1/model.tar.gz")
    checked = subprocess.run(["bash", "-n"], input=user_data, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr


# ---- the launcher --------------------------------------------------------------------------------------

def test_the_launcher_sends_the_stacks_request_and_returns_what_the_script_uploaded(
        local_target, stack_name, tmp_path, data_dir, fake_python, monkeypatch):
    monkeypatch.setattr(ec2_instance_standin, "INSTANCE_PYTHON", str(fake_python))
    settings, stack = _ready(local_target, stack_name)
    sent: list[dict] = []
    local_target.register("provide-client-params.ec2.RunInstances",
                          lambda params, **_: sent.append(copy.deepcopy(params)))
    result = launcher_for("ec2")(TrainingRun(settings, stack, tmp_path / "run", data_dir, local_target))

    assert sent == [_request(stack)]
    assert result.artifact_uri == artifact_uri_of(_request(stack)["UserData"])
    bucket, key = result.artifact_uri[5:].split("/", 1)
    assert local_target.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read() == result.artifact.read_bytes()
    assert result.metrics == {"test_accuracy": 0.9}
    assert result.log_path == tmp_path / "run" / "train.log" and "Epoch 1/" in result.log_path.read_text()
    (instance,) = local_target.client("ec2").describe_instances(InstanceIds=[result.job_name])["Reservations"][0][
        "Instances"]
    assert instance["State"]["Name"] in ("shutting-down", "terminated")
    assert instance["MetadataOptions"]["HttpTokens"] == "required"


def test_the_launcher_refuses_a_subnet_without_a_route_to_s3_before_run_instances(
        local_target, stack_name, tmp_path, data_dir):
    ec2 = local_target.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    settings, stack = _ready(local_target, stack_name, f"training.ec2_subnet_id={subnet}")
    sent: list[dict] = []
    local_target.register("provide-client-params.ec2.RunInstances", lambda params, **_: sent.append(params))
    with pytest.raises(LaunchError, match=f"training.ec2_subnet_id: subnet {subnet} .* cannot reach S3"):
        launcher_for("ec2")(TrainingRun(settings, stack, tmp_path / "run", data_dir, local_target))
    assert sent == []


@pytest.mark.parametrize("instance_type", ["m5.xlarge", "g4dn.xlarge"])
def test_cpu_and_gpu_instance_types_launch_the_emulators_deep_learning_ami(local_target, stack_name,
                                                                            instance_type):
    settings, stack = _ready(local_target, stack_name, f"training.instance_type={instance_type}")
    request = _request(stack)
    ec2 = local_target.client("ec2")
    (image,) = ec2.describe_images(ImageIds=[request["ImageId"]])["Images"]
    assert image["Name"].startswith("Deep Learning AMI")
    instance = ec2.run_instances(**request)["Instances"][0]  # validated against the service model first
    assert (instance["ImageId"], instance["InstanceType"]) == (request["ImageId"], instance_type)
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])


def test_user_data_that_never_shuts_down_is_refused_and_its_instance_terminated(
        local_target, stack_name, tmp_path, data_dir, fake_python, monkeypatch):
    monkeypatch.setattr(ec2_instance_standin, "INSTANCE_PYTHON", str(fake_python))
    settings, stack = _ready(local_target, stack_name)
    request = _request(stack)
    request["UserData"] = "\n".join(line for line in request["UserData"].splitlines()
                                    if not line.startswith(("shutdown ", "trap "))) + "\n"
    with pytest.raises(LaunchError, match="ended without shutting the instance down") as refused:
        launcher_for("ec2")(TrainingRun(settings, stack, tmp_path / "run", data_dir, local_target))
    instance_id = str(refused.value).split("terminated ", 1)[1].split()[0]
    assert _state(local_target, instance_id) in ("shutting-down", "terminated")


def test_the_emulator_refuses_an_ami_it_does_not_have(local_target, stack_name):
    from botocore.exceptions import ClientError

    _, stack = _ready(local_target, stack_name)
    request = {**_request(stack), "ImageId": "ami-0123456789abcdef0"}
    with pytest.raises(ClientError) as refused:
        local_target.client("ec2").run_instances(**request)
    assert refused.value.response["Error"]["Code"] == "InvalidAMIID.NotFound"
