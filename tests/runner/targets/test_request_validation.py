"""Requests AWS accepts: the full service-model check (max, enum, pattern included) that runs before
any request leaves sagegate."""

from __future__ import annotations

import copy
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError
from runner_helpers import REFERENCE

from runner.app.compose import compose_settings
from runner.core.errors import UserError
from runner.stack.build import build_stack
from runner.targets.request_validation import RequestRejected, _compiled, install, validate_request

ROLE = "arn:aws:iam::123456789012:role/sagegate-exec"
RESOURCE_ID = "endpoint/sagegate-ep/variant/AllTraffic"
VALID: dict[tuple[str, str], dict[str, Any]] = {
    ("sagemaker", "CreateEndpointConfig"): {
        "EndpointConfigName": "sagegate-ec",
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "sagegate-model",
                                "InitialInstanceCount": 1, "InstanceType": "ml.m5.large",
                                "InitialVariantWeight": 1.0}],
        "Tags": [{"Key": "project", "Value": "sagegate"}],
    },
    ("sagemaker", "CreateTrainingJob"): {
        "TrainingJobName": "sagegate-train-20261205",
        "AlgorithmSpecification": {"TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch:2",
                                   "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://sagegate-bucket/artifacts"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "HyperParameters": {"epochs": "2", "lr": "0.01"},
    },
    ("lambda", "CreateFunction"): {
        "FunctionName": "sagegate-fn", "Runtime": "python3.11", "Role": ROLE,
        "Handler": "handler.lambda_handler", "Code": {"ZipFile": b"PK\x05\x06" + b"\0" * 18},
        "Timeout": 30, "MemorySize": 256, "TracingConfig": {"Mode": "Active"},
        "Environment": {"Variables": {"ENDPOINT_NAME": "sagegate-ep"}},
    },
    ("application-autoscaling", "RegisterScalableTarget"): {
        "ServiceNamespace": "sagemaker", "ResourceId": RESOURCE_ID,
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount", "MinCapacity": 1, "MaxCapacity": 2,
    },
    ("application-autoscaling", "PutScalingPolicy"): {
        "PolicyName": "sagegate-invocations", "ServiceNamespace": "sagemaker", "ResourceId": RESOURCE_ID,
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount", "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 70.0, "ScaleInCooldown": 300, "ScaleOutCooldown": 60,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}},
    },
}
EC, TRAIN, FN = ("sagemaker", "CreateEndpointConfig"), ("sagemaker", "CreateTrainingJob"), ("lambda", "CreateFunction")
SCALE = ("application-autoscaling", "RegisterScalableTarget")


def rules(key: tuple[str, str], params: dict[str, Any]) -> list[tuple[str, str]]:
    return [(v.path, v.rule) for v in validate_request(*key, params)]


def with_change(key: tuple[str, str], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """The valid request of ``key`` with one member set (or, for ``...``, removed)."""
    params = copy.deepcopy(VALID[key])
    node: Any = params
    for step in path[:-1]:
        node = node[step]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return params


@pytest.mark.parametrize("key", list(VALID), ids=lambda k: k[1])
def test_valid_requests_pass(key):
    assert validate_request(*key, VALID[key]) == []


CASES = [
    (EC, ("ProductionVariants", 0, "VariantName"), "All Traffic", ("ProductionVariants[0].VariantName", "pattern")),
    (EC, ("ProductionVariants", 0, "InitialInstanceCount"), 0, ("ProductionVariants[0].InitialInstanceCount", "min")),
    (EC, ("ProductionVariants", 0, "InstanceType"), "ml.x9.huge", ("ProductionVariants[0].InstanceType", "enum")),
    (EC, ("ProductionVariants", 0, "VariantName"), ..., ("ProductionVariants[0].VariantName", "required")),
    (EC, ("ProductionVariants", 0, "Weight"), 1.0, ("ProductionVariants[0].Weight", "unknown")),
    (EC, ("ProductionVariants", 0, "InitialInstanceCount"), "1", ("ProductionVariants[0].InitialInstanceCount", "type")),
    (EC, ("ProductionVariants", 0, "InitialVariantWeight"), True, ("ProductionVariants[0].InitialVariantWeight", "type")),
    (EC, ("ProductionVariants",), [VALID[EC]["ProductionVariants"][0]] * 11, ("ProductionVariants", "max")),
    (EC, ("ProductionVariants",), [], ("ProductionVariants", "min")),
    (EC, ("Tags", 0, "Value"), "a#b", ("Tags[0].Value", "pattern")),
    # 64 characters the pattern allows (hyphens repeat freely): only the length is wrong.
    (TRAIN, ("TrainingJobName",), "a" + "-" * 62 + "b", ("TrainingJobName", "max")),
    (TRAIN, ("RoleArn",), ..., ("RoleArn", "required")),
    (TRAIN, ("ResourceConfig", "InstanceType"), "ml.x9.huge", ("ResourceConfig.InstanceType", "enum")),
    (FN, ("MemorySize",), 40960, ("MemorySize", "max")),
    (FN, ("Runtime",), "python2.8", ("Runtime", "enum")),
    (FN, ("Code", "ZipFile"), 123, ("Code.ZipFile", "type")),
    (FN, ("Environment", "Variables", "BAD-KEY"), "x", ("Environment.Variables['BAD-KEY']", "pattern")),
    (SCALE, ("MaxCapacity",), [2], ("MaxCapacity", "type")),
    # ResourceId's pattern is a Java UTF-16 range (XML characters): control characters are out.
    (SCALE, ("ResourceId",), RESOURCE_ID + "\x01", ("ResourceId", "pattern")),
]


@pytest.mark.parametrize("key, path, value, expected", CASES, ids=[f"{c[3][1]}:{c[3][0]}" for c in CASES])
def test_each_rule_is_caught_at_its_path(key, path, value, expected):
    assert rules(key, with_change(key, path, value)) == [expected]


def test_message_names_operation_path_value_and_the_allowed_pattern():
    pattern = botocore.session.get_session().get_service_model("sagemaker").shape_for("VariantName").metadata["pattern"]
    [violation] = validate_request(*EC, with_change(EC, ("ProductionVariants", 0, "VariantName"), "All Traffic"))
    assert violation.message == (
        f"CreateEndpointConfig: ProductionVariants[0].VariantName 'All Traffic' does not match {pattern}")
    [long] = validate_request(*TRAIN, with_change(TRAIN, ("TrainingJobName",), "x" * 500))[:1]
    shown = long.message.removeprefix("CreateTrainingJob: TrainingJobName ").split(" has ")[0]
    assert len(shown) == 80 and shown.startswith("'xxx") and shown.endswith("...")


def test_sensitive_values_are_not_quoted():
    [violation] = validate_request(*FN, with_change(FN, ("Environment", "Variables", "TOKEN"), 982451653))
    assert violation.rule == "type" and "982451653" not in violation.message and "<sensitive>" in violation.message


def test_unicode_property_classes_of_a_real_pattern():
    # sagemaker's TagValue is ([\p{L}\p{Z}\p{N}_.:/=+\-@]*): Python's re cannot compile it.
    pattern = botocore.session.get_session().get_service_model("sagemaker").shape_for("TagValue").metadata["pattern"]
    assert r"\p{L}" in pattern and r"\p{Z}" in pattern
    assert rules(EC, with_change(EC, ("Tags", 0, "Value"), "Café équipe 2026")) == []  # letters beyond ASCII, a space
    assert rules(EC, with_change(EC, ("Tags", 0, "Value"), "cost!")) == [("Tags[0].Value", "pattern")]


def test_supplementary_characters_match_a_java_surrogate_range():
    assert rules(SCALE, with_change(SCALE, ("ResourceId",), RESOURCE_ID + "\U0001F680")) == []


@pytest.mark.parametrize("service", ["sagemaker", "sagemaker-runtime", "lambda", "application-autoscaling",
                                     "iam", "ec2", "s3", "sts", "logs"])
def test_every_pattern_of_the_services_sagegate_calls_compiles(service):
    # An uncompilable pattern is skipped at run time; this is where a botocore upgrade shows one.
    model = botocore.session.get_session().get_service_model(service)
    patterns = {model.shape_for(n).metadata.get("pattern") for n in model.shape_names} - {None}
    assert [p for p in patterns if _compiled(p) is None] == []


def test_rejected_request_is_a_user_error_listing_every_violation():
    params = with_change(EC, ("ProductionVariants", 0, "VariantName"), "All Traffic")
    params["ProductionVariants"][0]["InitialInstanceCount"] = 0
    error = RequestRejected(validate_request(*EC, params))
    assert isinstance(error, UserError) and len(error.violations) == 2
    assert "VariantName 'All Traffic'" in str(error) and "InitialInstanceCount 0" in str(error)
    assert "\n" not in str(error)


def offline_client(**config: Any) -> Any:
    return boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
                        endpoint_url="http://127.0.0.1:9", config=Config(**config) if config else None)


def test_install_rejects_before_anything_is_sent():
    client = offline_client()
    install(client)
    install(client)  # idempotent
    sent: list[str] = []
    client.meta.events.register("before-send", lambda request, **_: sent.append(request.url))
    bad = with_change(EC, ("ProductionVariants", 0, "VariantName"), "All Traffic")
    with pytest.raises(RequestRejected) as caught:
        client.create_endpoint_config(**bad)
    assert [v.path for v in caught.value.violations] == ["ProductionVariants[0].VariantName"]
    assert sent == []


def test_install_checks_the_params_as_they_will_be_sent():
    # The check runs after every other handler of the event, even one registered after install (as
    # botocore's own, e.g. idempotency tokens, are): a fixed request goes on to the (closed) port.
    client = offline_client(retries={"total_max_attempts": 1}, connect_timeout=1)
    install(client)

    def fix(params, **_):
        params["ProductionVariants"][0]["VariantName"] = "AllTraffic"

    client.meta.events.register("before-parameter-build", fix)
    with pytest.raises(EndpointConnectionError):
        client.create_endpoint_config(**with_change(EC, ("ProductionVariants", 0, "VariantName"), "All Traffic"))


@pytest.mark.parametrize("overrides, apis", [
    ([], []),
    (["training=sagemaker"], ["sagemaker:CreateTrainingJob"]),
    (["training=sagemaker", "hpo=sagemaker_tuner"], ["sagemaker:CreateHyperParameterTuningJob"]),
    (["training=ec2"], ["ec2:RunInstances"]),
    ([*REFERENCE], ["sagemaker:CreateHyperParameterTuningJob"]),
], ids=["defaults", "sagemaker", "sagemaker-tuner", "ec2", "reference_2023"])
def test_the_projects_job_requests_are_accepted(overrides, apis):
    stack = build_stack(compose_settings(overrides))
    jobs = [job for job in stack.jobs if job.api]
    assert [job.api for job in jobs] == apis
    for job in jobs:
        service, operation = job.api.split(":")
        assert [v.message for v in validate_request(service, operation, job.request)] == []


def test_a_refused_request_is_the_error_aws_answers_with():
    """Code that handles AWS's refusals (a ClientError with code ValidationException) takes the same
    path on both targets; printed, the refusal is one line naming the operation and member."""
    import botocore.session
    from botocore.exceptions import ClientError

    from runner.targets.request_validation import RequestRejected, reject_invalid

    model = botocore.session.get_session().get_service_model("iam").operation_model("CreateRole")
    with pytest.raises(ClientError) as refused:
        reject_invalid({"RoleName": "r" * 65, "AssumeRolePolicyDocument": "{}"}, model)
    assert isinstance(refused.value, RequestRejected)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert refused.value.operation_name == "CreateRole"
    assert str(refused.value).startswith("request refused before sending (1 problem(s)): CreateRole: RoleName")
