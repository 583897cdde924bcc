"""The emulator answers like AWS where moto does not: here, SageMaker names unique per account and
region (moto 5.2.5 takes a second CreateModel/EndpointConfig/Endpoint/TrainingJob of one name)."""

from __future__ import annotations

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError

from runner.targets.moto_gaps import UNIQUE_NAMES

ROLE = "arn:aws:iam::123456789012:role/sagegate-unique"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311"


def _requests(name: str) -> dict[str, dict]:
    return {
        "CreateModel": {"ModelName": f"{name}-Model", "ExecutionRoleArn": ROLE, "PrimaryContainer": {"Image": IMAGE}},
        "CreateEndpointConfig": {"EndpointConfigName": f"{name}-config", "ProductionVariants": [
            {"VariantName": "AllTraffic", "ModelName": f"{name}-Model", "InstanceType": "ml.m5.large",
             "InitialInstanceCount": 1}]},
        "CreateEndpoint": {"EndpointName": f"{name}-endpoint", "EndpointConfigName": f"{name}-config"},
        "CreateTrainingJob": {
            "TrainingJobName": f"{name}-job", "RoleArn": ROLE,
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600}},
    }


@pytest.mark.parametrize(("operation", "code", "text"), [
    ("CreateModel", "ValidationException", 'Cannot create already existing model "arn:aws:sagemaker:us-east-1:'
                                           '123456789012:model/{name}-model".'),
    ("CreateEndpointConfig", "ValidationException", "Cannot create already existing endpoint configuration"),
    ("CreateEndpoint", "ValidationException", "Cannot create already existing endpoint"),
    ("CreateTrainingJob", "ResourceInUse", "Training job names must be unique within an AWS account and region"),
])
def test_a_second_resource_of_one_name_is_refused_like_aws(local_target, stack_name, operation, code, text):
    sm = local_target.client("sagemaker")
    requests = _requests(stack_name)
    call = {op: getattr(sm, xform_name(op)) for op in requests}
    for op in requests:  # everything once, in dependency order
        call[op](**requests[op])
    with pytest.raises(ClientError) as refused:
        call[operation](**requests[operation])
    error = refused.value.response["Error"]
    assert error["Code"] == code and error["Message"].startswith(text.format(name=stack_name.lower()))


def test_a_deleted_name_can_be_used_again(local_target, stack_name):
    """Models, configs and endpoints are unique while they exist (jobs are never deleted)."""
    sm = local_target.client("sagemaker")
    request = _requests(stack_name)["CreateModel"]
    sm.create_model(**request)
    sm.delete_model(ModelName=request["ModelName"])
    sm.create_model(**request)
    assert sm.describe_model(ModelName=request["ModelName"])["ModelName"] == request["ModelName"]


def test_every_unique_name_rule_names_a_real_member():
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    for target, (member, *_rest) in UNIQUE_NAMES.items():
        operation = model.operation_model(target.split(".", 1)[1])
        assert member in operation.input_shape.required_members, target


def test_a_traced_function_needs_a_role_that_writes_traces(local_target, stack_name):
    """Lambda refuses CreateFunction with TracingConfig Active when the role cannot call X-Ray."""
    from runner_helpers import inventory, settings_for

    from runner.deploy import ApplyError, apply
    from runner.stack.build import build_stack

    without_xray = ('iam.roles.lambda_invoke.scopes=[{service:sagemaker,actions:[InvokeEndpoint],'
                    'resources:[endpoint]},{service:logs,actions:[CreateLogStream,PutLogEvents],'
                    'resources:[function_log_group]}]')
    stack = build_stack(settings_for(stack_name, without_xray))
    with pytest.raises(ApplyError, match=r"\(InvalidParameterValueException\) when calling the CreateFunction "
                                         "operation: The provided execution role does not have permissions to "
                                         r"call PutTraceSegments on XRAY \(set by config key function\); "
                                         ".*remaining: nothing"):
        apply(stack, local_target)
    assert not [r for r in inventory(local_target, stack_name) if r.startswith("function:")]

    apply(build_stack(settings_for(stack_name)), local_target)  # the default role may write traces
    assert f"function:{stack.names.function_name}" in inventory(local_target, stack_name)


@pytest.mark.parametrize(("statements", "allowed"), [
    ([{"Effect": "Allow", "Action": ["xray:PutTraceSegments"], "Resource": "*"}], True),
    ([{"Effect": "Allow", "Action": "xray:*", "Resource": "*"}], True),
    ([{"Effect": "Allow", "Action": "xray:Put*", "Resource": "*"},
      {"Effect": "Deny", "Action": "xray:PutTraceSegments", "Resource": "*"}], False),
    ([{"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}], False),
])
def test_role_can_reads_inline_policies(local_target, stack_name, statements, allowed):
    import json

    from runner.targets.moto_gaps import role_can

    iam = local_target.client("iam")
    role = iam.create_role(RoleName=f"{stack_name}-probe", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="p",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    assert role_can(local_target.account, role["Arn"], "xray:PutTraceSegments") is allowed
