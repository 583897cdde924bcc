"""The emulator refuses what AWS refuses between members and between requests
(runner/core/aws_rules.py): each rule's violation is answered with AWS's error code, and moto
creates nothing; the same request made right is taken."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from botocore.exceptions import ClientError

from runner.core import aws_rules

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311"
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}


def _refused(code: str, call, **request) -> str:
    with pytest.raises(ClientError) as refused:
        call(**request)
    error = refused.value.response["Error"]
    assert error["Code"] == code, error
    return error["Message"]


@pytest.fixture
def network(local_target):
    ec2 = local_target.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.7.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc)["GroupId"]
    other_vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    other_group = ec2.create_security_group(GroupName="o", Description="o", VpcId=other_vpc)["GroupId"]
    return {"subnet": subnet, "group": group, "other_group": other_group}


def test_a_notebook_without_internet_needs_a_subnet_and_groups_that_exist(local_target, stack_name, network):
    sm = local_target.client("sagemaker")
    role = f"arn:aws:iam::{local_target.account}:role/{stack_name}-nb"
    base = {"NotebookInstanceName": f"{stack_name}-nb", "InstanceType": "ml.t3.medium", "RoleArn": role,
            "DirectInternetAccess": "Disabled"}
    assert "only when a SubnetId" in _refused("ValidationException", sm.create_notebook_instance, **base)
    _refused("ValidationException", sm.create_notebook_instance, **base, SubnetId=network["subnet"])
    assert "does not exist" in _refused("ValidationException", sm.create_notebook_instance, **base,
                                        SubnetId="subnet-0000000000000000f", SecurityGroupIds=[network["group"]])
    assert "not in the subnet's VPC" in _refused("ValidationException", sm.create_notebook_instance, **base,
                                                 SubnetId=network["subnet"],
                                                 SecurityGroupIds=[network["other_group"]])
    names = [n["NotebookInstanceName"] for n in sm.list_notebook_instances()["NotebookInstances"]]
    assert f"{stack_name}-nb" not in names  # nothing was created

    sm.create_notebook_instance(**base, SubnetId=network["subnet"], SecurityGroupIds=[network["group"]])
    assert sm.describe_notebook_instance(NotebookInstanceName=f"{stack_name}-nb")["SubnetId"] == network["subnet"]


def _model(sm, name: str, **extra) -> str:
    sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                    PrimaryContainer={"Image": IMAGE}, **extra)
    return name


def _serverless(name: str, model: str, **extra) -> dict:
    return {"EndpointConfigName": name, "ProductionVariants": [
        {"VariantName": "AllTraffic", "ModelName": model,
         "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}], **extra}


def test_serverless_inference_refuses_what_it_does_not_support(local_target, stack_name, network):
    sm = local_target.client("sagemaker")
    plain = _model(sm, f"{stack_name}-plain")
    isolated = _model(sm, f"{stack_name}-isolated", EnableNetworkIsolation=True)
    in_vpc = _model(sm, f"{stack_name}-vpc", VpcConfig={"Subnets": [network["subnet"]],
                                                         "SecurityGroupIds": [network["group"]]})
    config = f"{stack_name}-sl"
    two = _serverless(config, plain)
    two["ProductionVariants"].append({**two["ProductionVariants"][0], "VariantName": "Candidate"})
    assert "one production variant" in _refused("ValidationException", sm.create_endpoint_config, **two)
    assert "data capture" in _refused("ValidationException", sm.create_endpoint_config, **_serverless(
        config, plain, DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": 20,
                                          "DestinationS3Uri": "s3://b/c", "CaptureOptions": [{"CaptureMode": "Input"}]}))
    assert "network isolation" in _refused("ValidationException", sm.create_endpoint_config,
                                           **_serverless(config, isolated))
    assert "VPC" in _refused("ValidationException", sm.create_endpoint_config, **_serverless(config, in_vpc))
    assert config not in [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]

    sm.create_endpoint_config(**_serverless(config, plain))
    # A real-time variant may use the isolated model.
    sm.create_endpoint_config(EndpointConfigName=f"{stack_name}-rt", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": isolated, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


@pytest.mark.parametrize(("actions", "refused_call"), [
    (["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "CreateNetworkInterface on EC2"),
    (["xray:PutTraceSegments", "xray:PutTelemetryRecords", "ec2:CreateNetworkInterface",
      "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface"], None),
    (["ec2:*"], "PutTraceSegments on XRAY"),
])
def test_a_function_in_a_vpc_needs_a_role_that_manages_network_interfaces(local_target, stack_name, network,
                                                                          actions, refused_call):
    iam, lam = local_target.client("iam"), local_target.client("lambda")
    role = iam.create_role(RoleName=f"{stack_name}-fn", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
    request = {"FunctionName": f"{stack_name}-fn", "Runtime": "python3.12", "Role": role["Arn"],
               "Handler": "app.handler", "Code": {"ZipFile": _zip()}, "TracingConfig": {"Mode": "Active"},
               "VpcConfig": {"SubnetIds": [network["subnet"]], "SecurityGroupIds": [network["group"]]}}
    if refused_call:
        message = _refused("InvalidParameterValueException", lam.create_function, **request)
        assert message == f"The provided execution role does not have permissions to call {refused_call}"
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            lam.get_function(FunctionName=request["FunctionName"])
    else:
        assert lam.create_function(**request)["FunctionName"] == request["FunctionName"]


def test_every_rule_names_a_real_operation_a_source_and_a_config_key():
    import botocore.session

    session = botocore.session.get_session()
    for rule in aws_rules.RULES:
        service, _, operation = rule.operation.partition(":")
        assert operation in session.get_service_model(service).operation_names, rule.id
        assert rule.source and rule.config_key and rule.remediation.endswith("."), rule.id


def test_every_rule_a_config_can_break_is_a_gate_rule():
    from policies.rules.registry import all_rules

    rules = {r.id for r in all_rules()}
    assert {r for r in rules if r.startswith("SG-AWS-")} == {r.id for r in aws_rules.RULES if r.gated}
    assert {r.gated_by for r in aws_rules.RULES if r.gated_by} <= rules


def test_every_rule_is_on_the_rules_page():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[3] / "docs" / "aws-rules.md").read_text()
    assert [r.id for r in aws_rules.RULES if f"| {r.id} |" not in page] == []


@pytest.mark.parametrize("instance_type", ["ml.g4dn.xlarge", "ml.g5.xlarge"])
def test_a_volume_key_on_local_storage_is_refused(local_target, stack_name, instance_type):
    sm = local_target.client("sagemaker")
    key = "arn:aws:kms:us-east-1:123456789012:key/sagegate"
    definition = {
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": 10,
                           "VolumeKmsKeyId": key},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600}}
    assert "local storage" in _refused("ValidationException", sm.create_training_job,
                                       TrainingJobName=f"{stack_name}-job", **definition)
    tuning = {"Strategy": "Random", "ResourceLimits": {"MaxNumberOfTrainingJobs": 1, "MaxParallelTrainingJobs": 1}}
    _refused("ValidationException", sm.create_hyper_parameter_tuning_job, HyperParameterTuningJobName=f"{stack_name}-t",
             HyperParameterTuningJobConfig=tuning, TrainingJobDefinition=definition)
    model = _model(sm, f"{stack_name}-m")
    variants = [{"VariantName": "AllTraffic", "ModelName": model, "InstanceType": instance_type,
                 "InitialInstanceCount": 1}]
    _refused("ValidationException", sm.create_endpoint_config, EndpointConfigName=f"{stack_name}-c",
             ProductionVariants=variants, KmsKeyId=key)
    with pytest.raises(ClientError, match="ValidationException"):  # nothing was created
        sm.describe_training_job(TrainingJobName=f"{stack_name}-job")

    # Without the key, or on an EBS-backed type with it, AWS takes them.
    without_key = {k: v for k, v in definition["ResourceConfig"].items() if k != "VolumeKmsKeyId"}
    sm.create_training_job(TrainingJobName=f"{stack_name}-job", **{**definition, "ResourceConfig": without_key})
    sm.create_endpoint_config(EndpointConfigName=f"{stack_name}-c", ProductionVariants=[
        {**variants[0], "InstanceType": "ml.m5.large"}], KmsKeyId=key)
