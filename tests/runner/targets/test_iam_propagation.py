"""IAM is eventually consistent on AWS, and on the emulator (runner/targets/iam_propagation.py):
a role or role-policy change reaches Lambda and SageMaker only ``iam_propagation_s`` later, and
until then they answer with AWS's own words (docs/aws-rules.md)."""

from __future__ import annotations

import io
import json
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator

import pytest
from botocore.exceptions import ClientError

from runner.targets.emulator import set_iam_propagation
from runner.targets.iam_propagation import IamPropagation, RoleView, trusts

ACCOUNT = "123456789012"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311"
LAMBDA_CANNOT_ASSUME = "The role defined for the function cannot be assumed by Lambda."
XRAY_MISSING = "The provided execution role does not have permissions to call PutTraceSegments on XRAY"
SAGEMAKER_CANNOT_ASSUME = ("Could not assume role {arn}. Please ensure that the role exists and allows principal "
                           "'sagemaker.amazonaws.com' to assume the role.")
BASIC = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}]}
XRAY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "Resource": "*"}]}


def _trust(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


@pytest.fixture
def propagation(emulator_url: str) -> Iterator[Callable[[float], None]]:
    """Sets the shared emulator's delay for this test; the previous one comes back after it."""
    previous: list[float] = []

    def set_delay(delay_s: float) -> None:
        old = set_iam_propagation(emulator_url, delay_s)
        if not previous:
            previous.append(old)

    yield set_delay
    if previous:
        set_iam_propagation(emulator_url, previous[0])


# Long enough that the refused call lands inside the window on a loaded 2-core machine (at 1 s, a
# CI run with other work beside it once made the call after the change had propagated).
LAMBDA_DELAY_S = 2.5


def _after(propagated: float) -> None:
    """Sleep until a change whose call had returned at ``propagated - LAMBDA_DELAY_S`` is in force."""
    time.sleep(max(0.0, propagated - time.monotonic()) + 0.05)


def _refused(call: Callable[..., object], **request: object) -> dict:
    with pytest.raises(ClientError) as refused:
        call(**request)
    return refused.value.response["Error"]


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def _function(name: str, role_arn: str, **extra: object) -> dict:
    return {"FunctionName": name, "Runtime": "python3.12", "Role": role_arn, "Handler": "app.handler",
            "Code": {"ZipFile": _zip()}, **extra}


def test_lambda_cannot_assume_a_role_until_it_has_propagated(local_target, stack_name, propagation):
    propagation(LAMBDA_DELAY_S)
    iam, lam = local_target.client("iam"), local_target.client("lambda")
    role = iam.create_role(RoleName=f"{stack_name}-fn", AssumeRolePolicyDocument=_trust("lambda.amazonaws.com"))["Role"]
    propagated = time.monotonic() + LAMBDA_DELAY_S
    request = _function(f"{stack_name}-fn", role["Arn"])
    error = _refused(lam.create_function, **request)
    assert (error["Code"], error["Message"]) == ("InvalidParameterValueException", LAMBDA_CANNOT_ASSUME)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):  # nothing was created
        lam.get_function(FunctionName=request["FunctionName"])
    assert iam.get_role(RoleName=role["RoleName"])["Role"]["Arn"] == role["Arn"]  # IAM itself has it at once
    _after(propagated)
    assert lam.create_function(**request)["FunctionName"] == request["FunctionName"]


def test_a_traced_function_sees_its_roles_policies_as_they_were_until_the_change_propagates(
        local_target, stack_name, propagation):
    """The well-known race of adding tracing and its permission in one deploy."""
    iam, lam = local_target.client("iam"), local_target.client("lambda")
    role = iam.create_role(RoleName=f"{stack_name}-fn", AssumeRolePolicyDocument=_trust("lambda.amazonaws.com"))["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="basic", PolicyDocument=json.dumps(BASIC))
    propagation(LAMBDA_DELAY_S)  # the role above is already effective; the X-Ray grant below is not yet
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="xray", PolicyDocument=json.dumps(XRAY))
    propagated = time.monotonic() + LAMBDA_DELAY_S
    request = _function(f"{stack_name}-fn", role["Arn"], TracingConfig={"Mode": "Active"})
    error = _refused(lam.create_function, **request)
    assert (error["Code"], error["Message"]) == ("InvalidParameterValueException", XRAY_MISSING)
    _after(propagated)
    assert lam.create_function(**request)["TracingConfig"]["Mode"] == "Active"


def test_update_function_configuration_with_a_fresh_role_waits_for_it_too(local_target, stack_name, propagation):
    iam, lam = local_target.client("iam"), local_target.client("lambda")
    trust = _trust("lambda.amazonaws.com")
    first = iam.create_role(RoleName=f"{stack_name}-a", AssumeRolePolicyDocument=trust)["Role"]
    lam.create_function(**_function(f"{stack_name}-fn", first["Arn"]))
    propagation(LAMBDA_DELAY_S)
    second = iam.create_role(RoleName=f"{stack_name}-b", AssumeRolePolicyDocument=trust)["Role"]
    propagated = time.monotonic() + LAMBDA_DELAY_S
    error = _refused(lam.update_function_configuration, FunctionName=f"{stack_name}-fn", Role=second["Arn"])
    assert (error["Code"], error["Message"]) == ("InvalidParameterValueException", LAMBDA_CANNOT_ASSUME)
    _after(propagated)
    assert lam.update_function_configuration(FunctionName=f"{stack_name}-fn", Role=second["Arn"])["Role"] == second["Arn"]


def _sagemaker_requests(name: str, role_arn: str) -> dict[str, dict]:
    definition = {"RoleArn": role_arn,
                  "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
                  "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
                  "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
                  "StoppingCondition": {"MaxRuntimeInSeconds": 600}}
    return {
        "create_model": {"ModelName": f"{name}-m", "ExecutionRoleArn": role_arn, "PrimaryContainer": {"Image": IMAGE}},
        "create_training_job": {"TrainingJobName": f"{name}-job", **definition},
        "create_hyper_parameter_tuning_job": {
            "HyperParameterTuningJobName": f"{name}-t", "TrainingJobDefinition": definition,
            "HyperParameterTuningJobConfig": {"Strategy": "Random", "ResourceLimits": {
                "MaxNumberOfTrainingJobs": 1, "MaxParallelTrainingJobs": 1}}},
        "create_notebook_instance": {"NotebookInstanceName": f"{name}-nb", "InstanceType": "ml.t3.medium",
                                     "RoleArn": role_arn},
    }


def test_sagemaker_cannot_assume_a_role_until_it_has_propagated(local_target, stack_name, propagation):
    propagation(5.0)  # long enough for four refused calls on a loaded machine
    iam, sm = local_target.client("iam"), local_target.client("sagemaker")
    role = iam.create_role(RoleName=f"{stack_name}-sm", AssumeRolePolicyDocument=_trust("sagemaker.amazonaws.com"))["Role"]
    propagated = time.monotonic() + 5.05
    requests = _sagemaker_requests(stack_name, role["Arn"])
    for call, request in requests.items():
        error = _refused(getattr(sm, call), **request)
        assert (error["Code"], error["Message"]) == ("ValidationException",
                                                     SAGEMAKER_CANNOT_ASSUME.format(arn=role["Arn"])), call
    time.sleep(max(0.0, propagated - time.monotonic()))
    for call, request in requests.items():
        getattr(sm, call)(**request)
    assert sm.describe_model(ModelName=f"{stack_name}-m")["ExecutionRoleArn"] == role["Arn"]


def test_a_role_that_does_not_trust_the_service_is_refused_at_any_time(local_target, stack_name):
    iam, sm, lam = local_target.client("iam"), local_target.client("sagemaker"), local_target.client("lambda")
    role = iam.create_role(RoleName=f"{stack_name}-ec2", AssumeRolePolicyDocument=_trust("ec2.amazonaws.com"))["Role"]
    error = _refused(sm.create_model, **_sagemaker_requests(stack_name, role["Arn"])["create_model"])
    assert error["Message"] == SAGEMAKER_CANNOT_ASSUME.format(arn=role["Arn"])
    error = _refused(lam.create_function, **_function(f"{stack_name}-fn", role["Arn"]))
    assert error["Message"] == LAMBDA_CANNOT_ASSUME
    iam.update_assume_role_policy(RoleName=role["RoleName"], PolicyDocument=_trust("sagemaker.amazonaws.com"))
    sm.create_model(**_sagemaker_requests(stack_name, role["Arn"])["create_model"])


def test_the_delay_is_read_and_set_over_http(emulator_url, propagation):
    propagation(2.5)
    with urllib.request.urlopen(f"{emulator_url}/_sagegate/iam-propagation", timeout=10) as answer:  # noqa: S310
        assert json.loads(answer.read()) == {"delay_s": 2.5}


def test_the_setting_reaches_the_emulator_a_run_starts():
    from runner_helpers import settings_for

    from runner.targets import open_target

    settings = settings_for("t-iam", "target.iam_propagation_s=2")
    assert settings.target.iam_propagation_s == 2
    with open_target(settings) as target, urllib.request.urlopen(  # noqa: S310
            f"{target.endpoint_url}/_sagegate/iam-propagation", timeout=10) as answer:
        assert json.loads(answer.read()) == {"delay_s": 2.0}


# -- the bookkeeping alone, on a clock of its own ------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_services_see_the_role_as_it_was_before_each_change_still_propagating():
    clock = _Clock()
    iam = IamPropagation(delay_s=2.0, clock=clock)
    without, with_xray = RoleView(_trust("lambda.amazonaws.com"), (BASIC,)), \
        RoleView(_trust("lambda.amazonaws.com"), (BASIC, XRAY))
    iam.record(ACCOUNT, "r", None)  # CreateRole at 100
    clock.now = 101.0
    iam.record(ACCOUNT, "r", without)  # PutRolePolicy (X-Ray) at 101
    assert iam.view(ACCOUNT, "r", lambda: with_xray) is None  # not created yet, as far as services know
    clock.now = 102.0
    assert iam.view(ACCOUNT, "r", lambda: with_xray) == without
    clock.now = 103.0
    assert iam.view(ACCOUNT, "r", lambda: with_xray) == with_xray
    assert not iam.pending(ACCOUNT, "r")
    assert iam.view("210987654321", "r", lambda: with_xray) == with_xray  # per account


def test_a_change_keeps_the_delay_in_force_when_it_was_made():
    clock = _Clock()
    iam = IamPropagation(delay_s=0.0, clock=clock)
    iam.record(ACCOUNT, "r", None)
    iam.delay_s = 5.0
    assert not iam.pending(ACCOUNT, "r")


@pytest.mark.parametrize(("statement", "trusted"), [
    ({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}, True),
    ({"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com", "lambda.amazonaws.com"]},
      "Action": ["sts:AssumeRole", "sts:TagSession"]}, True),
    ({"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}, False),
    ({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:TagSession"}, False),
])
def test_trusts_reads_the_trust_policy(statement, trusted):
    view = RoleView(json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    assert trusts(view, "lambda.amazonaws.com") is trusted


def test_a_permission_just_granted_is_not_in_force_for_the_roles_own_calls_until_it_propagates(
        local_target, stack_name, propagation):
    """The run-time authoriser (runner/targets/iam_enforcement.py) sees the role as the services do."""
    iam, s3 = local_target.client("iam"), local_target.client("s3")
    bucket = f"{stack_name}-propagation"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="model.tar.gz", Body=b"weights")
    role = iam.create_role(RoleName=f"{stack_name}-reader", AssumeRolePolicyDocument=_trust("sagemaker.amazonaws.com"))
    propagation(3.0)  # the role is in force; the grant below is not yet
    iam.put_role_policy(RoleName=role["Role"]["RoleName"], PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    in_force = time.monotonic() + 3.05
    as_role = local_target.role_client("s3", role["Role"]["Arn"], "reader")
    assert _refused(as_role.get_object, Bucket=bucket, Key="model.tar.gz")["Code"] == "AccessDenied"
    time.sleep(max(0.0, in_force - time.monotonic()))
    assert as_role.get_object(Bucket=bucket, Key="model.tar.gz")["Body"].read() == b"weights"
