"""The deployer's declared calls (runner/stack/deployer_calls.py) are the calls it makes: each
configuration is deployed (artifact upload and bucket setup included), deployed again with a change
(update paths), and destroyed with its artifacts on the emulator, and every request the request
log recorded must be declared by some grant of the stack's deployer policy. A new call in the
applier without a declaration fails here. The training stage's launches are compared the same way:
a SageMaker training job, a tuning job and an EC2 run are launched on the emulator (as stage=train
does: the bucket and the job's roles, then the launcher) with torch-free stand-ins for the training
itself. The policy itself passes the IAM catalogue's check."""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console
from runner_helpers import settings_for, with_network

from policies.deployer_policy import deployer_policy, problems
from runner import deploy as deploying
from runner.core.names import ResourceNames
from runner.deploy import artifact_uri, deploy, destroy
from runner.launchers import TrainingRun, ec2_instance_standin, launcher_for
from runner.stack.build import build_stack
from runner.stack.deployer_calls import declared_operations, deployer_grants
from runner.targets.request_log import RequestLog

CONFIGS = {
    "default": (),
    "serverless": ("endpoint=serverless", "autoscaling=none"),
    "ab_test": ("endpoint=ab_test",),
    "notebook+ec2": ("notebook=t3_medium", "training=ec2"),
    "tuning": ("hpo=sagemaker_tuner", "training=sagemaker"),
    "kms+capture": ("endpoint.data_capture=true", "endpoint.kms_key_id=alias/sagegate",
                    "function.kms_key_arn=arn:aws:kms:us-east-1:123456789012:key/sagegate"),
}
# Training launches (stage=train with a remote launcher), with the smallest settings.
LAUNCHES = {
    "sagemaker": ("training=sagemaker", "training.epochs=1"),
    "sagemaker_not_isolated": ("training=sagemaker", "training.epochs=1", "training.network_isolation=false"),
    "tuning": ("training=sagemaker", "hpo=sagemaker_tuner", "training.epochs=1"),
    "ec2": ("training=ec2", "training.epochs=1"),
}
# Calls the emulator's stand-ins make as the caller in AWS's place: the job's or the instance's role is
# assumed here to run the job (runner/launchers/sagemaker.py, ec2_instance_standin.py); on AWS SageMaker
# and EC2 assume it. Only the jobs_run_here branches make them.
LOCAL_ONLY = {"sts:AssumeRole"}
# A torch-free stand-in for the DLAMI's python on the stand-in instance: train.py writes a model directory.
FAKE_PYTHON = """#!/bin/bash
if [ "$1" = "train.py" ]; then
  shift
  while [ $# -gt 0 ]; do case "$1" in --model_dir) model="$2";; esac; shift 2; done
  mkdir -p "$model/code"
  printf '{{"arch": "resnet18", "metrics": {{"test_accuracy": 0.9}}}}' > "$model/model.json"
  printf 'weights' > "$model/model.pth"
  printf 'def model_fn(d): pass\\n' > "$model/code/inference.py"
  exit 0
fi
exec {python} "$@"
"""
# Policies only (not launched): what target=aws, a subnet and customer keys add.
KEYED = {
    "ec2_aws_keyed": ("training=ec2", "target=aws", "training.ec2_subnet_id=subnet-0123abcd",
                      "training.volume_kms_key_id=alias/sagegate-training"),
    "sagemaker_keyed": ("training=sagemaker", "training.volume_kms_key_id=arn:aws:kms:us-east-1:123456789012:key/t",
                        "endpoint.kms_key_id=arn:aws:kms:us-east-1:123456789012:key/e"),
}
# The second deploy changes what the update paths of the drivers touch.
CHANGES = ("function.memory_size=1024", "+tags.team=ml")


def _artifact(tmp_path, content: bytes):
    path = tmp_path / f"model-{len(content)}.tar.gz"
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("overrides", CONFIGS.values(), ids=CONFIGS.keys())
def test_every_call_of_deploy_update_and_destroy_is_declared(local_target, stack_name, tmp_path, overrides):
    overrides = (*with_network(local_target, *overrides), "destroy.delete_artifacts=true")
    log = RequestLog()
    log.attach(local_target)
    declared: set[str] = set()
    for i, changes in enumerate(((), CHANGES)):
        settings = settings_for(stack_name, *overrides, *changes)
        artifact = _artifact(tmp_path, b"x" * (100 + i))  # a new artifact: a new model and config
        names = ResourceNames.for_settings(settings, local_target.account)
        stack = build_stack(settings, account=local_target.account,
                            model_data_url=artifact_uri(names, artifact))
        declared |= declared_operations(deployer_grants(stack, delete_artifacts=True))
        deploy(stack, local_target, artifact)
    destroy(settings, local_target, delete_artifacts=True)
    sent = {f"{e['service']}:{e['operation']}" for e in log.entries}
    assert sent - declared == set(), "calls the deployer made that no grant declares"
    assert {"s3:PutObject", "sagemaker:CreateEndpoint", "lambda:CreateFunction", "iam:DeleteRole"} <= sent


@pytest.mark.parametrize("overrides", [*CONFIGS.values(), *LAUNCHES.values(), *KEYED.values()],
                         ids=[*CONFIGS.keys(), *LAUNCHES.keys(), *KEYED.keys()])
@pytest.mark.parametrize("delete_artifacts", [False, True])
def test_the_deployer_policy_passes_the_iam_catalogue(overrides, delete_artifacts):
    settings = settings_for("catalogue", *overrides, "notebook.subnet_id=subnet-0123abcd",
                            "notebook.security_group_ids=[sg-0123abcd]") if "notebook=t3_medium" in overrides \
        else settings_for("catalogue", *overrides)
    policy = deployer_policy(build_stack(settings), delete_artifacts=delete_artifacts)
    assert problems(policy) == []
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids))


def test_pass_role_is_limited_to_the_stacks_roles_and_their_services():
    settings = settings_for("passing", "notebook=t3_medium", "notebook.subnet_id=subnet-0123abcd",
                            "notebook.security_group_ids=[sg-0123abcd]")
    policy = deployer_policy(build_stack(settings))
    passes = [s for s in policy["Statement"] if "iam:PassRole" in s["Action"]]
    assert {s["Condition"]["StringEquals"]["iam:PassedToService"] for s in passes} == {
        "sagemaker.amazonaws.com", "lambda.amazonaws.com"}
    for s in passes:
        assert s["Action"] == ["iam:PassRole"]
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        assert all(r.startswith("arn:aws:iam::123456789012:role/passing-") and "*" not in r for r in resources)


@pytest.mark.parametrize("overrides", [(), *LAUNCHES.values(), *KEYED.values()],
                         ids=["default", *LAUNCHES.keys(), *KEYED.keys()])
def test_wildcards_only_where_declared_with_a_reason(overrides):
    stack = build_stack(settings_for("wild", *overrides, "destroy.delete_artifacts=true"))
    for grant in deployer_grants(stack, delete_artifacts=True):
        if any("*" in r for r in grant.resources):
            assert grant.why, grant.sid
        for resource in grant.resources:
            # Else this stack's names, a name AWS assigns bounded by the grant's condition, or one exact
            # resource that is not the stack's (an AMI, a public parameter, a customer key).
            # (A log group is named by its ARN with ":*", CloudWatch Logs' form for the group itself.)
            exact = resource.startswith("arn:") and "*" not in resource.removesuffix(":*").split(":", 5)[5]
            # RunInstances' other resources (interface, group, subnet): with them alone no instance is
            # launched; the instance itself is bound to the stack's tag (LaunchStackTrainingInstance).
            alongside = grant.actions == ("ec2:RunInstances",) and any(
                g.sid == "LaunchStackTrainingInstance" and g.condition for g in deployer_grants(stack))
            assert resource == "*" or "wild" in resource or grant.condition or exact or alongside, \
                (grant.sid, resource)


def test_training_grants_only_for_the_launcher_that_needs_them():
    def sids(*overrides):
        return {g.sid for g in deployer_grants(build_stack(settings_for("only", *overrides)))}

    training = {"RunStackTrainingJobs", "RunStackTuningJobs", "LaunchStackTrainingInstance", "TrainingCodeBundle"}
    assert sids() & training == set()
    assert sids(*LAUNCHES["sagemaker"]) & training == {"RunStackTrainingJobs", "TrainingCodeBundle"}
    assert sids(*LAUNCHES["tuning"]) & training == {"RunStackTrainingJobs", "RunStackTuningJobs", "TrainingCodeBundle"}
    assert sids(*LAUNCHES["ec2"]) & training == {"LaunchStackTrainingInstance", "TrainingCodeBundle"}
    # AWS managed keys (alias/aws/...) need nothing of the caller; customer keys do.
    assert not {s for s in sids() if "Key" in s}
    assert {s for s in sids(*KEYED["sagemaker_keyed"]) if "Key" in s} == {"EndpointVolumeKeyGrant",
                                                                          "EndpointVolumeKeyDescribe"}
    assert {s for s in sids(*KEYED["ec2_aws_keyed"]) if "Key" in s} == {"TrainingVolumeKeyGrant",
                                                                       "TrainingVolumeKeyUse"}


def _run_here(*, run_dir, **_):
    """Stands in for run_local_training (torch-free): what the job's container leaves, an artifact."""
    artifact = Path(run_dir) / "model.tar.gz"
    with tarfile.open(artifact, "w:gz") as archive:
        body = b'{"arch": "resnet18"}'
        info = tarfile.TarInfo("model.json")
        info.size = len(body)
        archive.addfile(info, io.BytesIO(body))
    log = Path(run_dir) / "train.log"
    log.write_text("Testing Accuracy: 0.9\n")
    return SimpleNamespace(artifact=artifact, metrics={"test_accuracy": 0.9}, log_path=log)


@pytest.mark.parametrize("overrides", LAUNCHES.values(), ids=LAUNCHES.keys())
def test_every_call_of_a_training_launch_is_declared(local_target, stack_name, tmp_path, data_dir, monkeypatch,
                                                     overrides):
    fake_python = tmp_path / "fake-python"
    fake_python.write_text(FAKE_PYTHON.format(python=sys.executable))
    fake_python.chmod(0o755)
    monkeypatch.setattr(ec2_instance_standin, "INSTANCE_PYTHON", str(fake_python))
    settings = settings_for(stack_name, *overrides, "destroy.delete_artifacts=true")
    stack = build_stack(settings, account=local_target.account, run_id="calls1")
    log = RequestLog()
    log.attach(local_target)
    # What stage=train does (runner/app/stages.py train_model): the bucket and the job's roles, then the
    # launcher; a console, so the SageMaker launcher also tails the job's CloudWatch log.
    deploying.ensure_bucket(local_target, stack.names)
    deploying.apply_only(stack, local_target, stack.job_role_ids())
    run = TrainingRun(settings, stack, tmp_path / "run", data_dir, local_target,
                      console=Console(file=io.StringIO()), local_runner=_run_here)
    result = launcher_for(settings.training.launcher)(run)
    destroy(settings, local_target, delete_artifacts=True)

    declared = declared_operations(deployer_grants(stack, delete_artifacts=True))
    sent = {f"{e['service']}:{e['operation']}" for e in log.entries}
    assert sent - LOCAL_ONLY - declared == set(), "calls of the training launch that no grant declares"
    job = stack.jobs[0]
    assert {job.api, "s3:PutObject"} <= sent, job.api
    assert result.artifact.is_file()
