"""The stack of each preset: resources, tags, job requests, and a template cfn-lint accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from runner_helpers import NOTEBOOK, REFERENCE

from runner.app.compose import compose_settings
from runner.core.names import STACK_TAG
from runner.stack.build import build_stack

PRESETS = {
    "default": [],
    "reference_2023": [*REFERENCE],
    "production": ["experiment=production"],
    "ec2": ["training=ec2"],
    "multi+hpo+notebook+serverless": ["training=sagemaker_multi", "hpo=sagemaker_tuner", *NOTEBOOK,
                                      "endpoint=serverless", "autoscaling=none"],
}


def _stack(overrides: list[str]):
    return build_stack(compose_settings(overrides), account="210987654321", run_id="20261125-120000")


def test_default_stack_declares_the_reference_resources() -> None:
    stack = _stack([])
    types = [r.type for r in stack.resources]
    assert types == [
        "AWS::IAM::Role", "AWS::IAM::Role", "AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint", "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy", "AWS::Lambda::Function", "AWS::Lambda::Version",
        "AWS::Lambda::Alias",
    ]
    variant = stack.resource("EndpointConfig").properties["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 1)
    target = stack.resource("ScalableTarget").properties
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 3)
    assert target["ResourceId"] == "endpoint/sagegate-demo-endpoint/variant/AllTraffic"
    policy = stack.resource("ScalingPolicy").properties["TargetTrackingScalingPolicyConfiguration"]
    assert policy == {"TargetValue": 20.0,
                      "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                      "ScaleInCooldown": 30, "ScaleOutCooldown": 30}
    function = stack.resource("InvokeFunction").properties
    assert function["ReservedConcurrentExecutions"] == 5
    assert function["Environment"]["Variables"]["ENDPOINT_NAME"] == "sagegate-demo-endpoint"
    alias = stack.resource("InvokeFunctionAlias").properties
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}
    model = stack.resource("Model").properties
    assert model["PrimaryContainer"]["Image"].endswith("/pytorch-inference:2.5-cpu-py311")
    assert model["ExecutionRoleArn"] == "arn:aws:iam::210987654321:role/sagegate-demo-sagemaker-execution"


@pytest.mark.parametrize("preset", PRESETS)
def test_every_taggable_resource_carries_the_stack_tag(preset: str) -> None:
    stack = _stack(PRESETS[preset])
    for resource in stack.resources:
        if "Tags" in resource.properties:
            tags = {t["Key"]: t["Value"] for t in resource.properties["Tags"]}
            assert tags[STACK_TAG] == stack.name
            assert tags["project"] == "sagegate"


def test_endpoint_config_name_changes_with_its_content() -> None:
    small = _stack([]).resource("EndpointConfig").physical_name
    large = _stack(["endpoint.variants.AllTraffic.instance_type=ml.c5.xlarge"]).resource("EndpointConfig").physical_name
    assert small != large and small == _stack([]).resource("EndpointConfig").physical_name


def test_serverless_endpoint_has_no_instances_and_no_autoscaling() -> None:
    stack = _stack(PRESETS["multi+hpo+notebook+serverless"])
    variant = stack.resource("EndpointConfig").properties["ProductionVariants"][0]
    assert "InstanceType" not in variant and variant["ServerlessConfig"]["MaxConcurrency"] == 5
    assert not stack.find("AWS::ApplicationAutoScaling::ScalableTarget")


def test_training_job_request_is_exact() -> None:
    stack = _stack(["training=sagemaker", "training.epochs=7"])
    (job,) = stack.jobs
    assert job.api == "sagemaker:CreateTrainingJob"
    r = job.request
    assert r["TrainingJobName"] == "sagegate-demo-20261125-120000"
    assert r["AlgorithmSpecification"]["TrainingImage"].endswith("/pytorch-training:2.5-gpu-py311")
    assert {"Name": "Test Loss", "Regex": r"Testing Loss: ([0-9\.]+)"} in r["AlgorithmSpecification"]["MetricDefinitions"]
    # ml.g4dn has NVMe instance storage: SageMaker rejects a volume KMS key there.
    assert r["ResourceConfig"] == {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
    assert r["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert r["EnableManagedSpotTraining"] is True
    assert r["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    assert r["HyperParameters"]["epochs"] == "7" and r["HyperParameters"]["sagemaker_program"] == "train.py"
    assert r["RoleArn"].endswith(":role/sagegate-demo-sagemaker-execution")


def test_multi_instance_job_enables_torch_distributed() -> None:
    (job,) = _stack(["training=sagemaker_multi"]).jobs
    assert job.request["ResourceConfig"]["InstanceCount"] == 2
    assert job.request["HyperParameters"]["sagemaker_torch_distributed_enabled"] == "true"


def test_tuning_job_request_carries_the_ranges_and_objective() -> None:
    (job,) = _stack([*REFERENCE]).jobs
    config = job.request["HyperParameterTuningJobConfig"]
    assert len(job.request["HyperParameterTuningJobName"]) <= 32
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1}
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Minimize", "MetricName": "Test Loss"}
    assert config["ParameterRanges"]["ContinuousParameterRanges"][0]["MinValue"] == "0.001"
    assert config["ParameterRanges"]["CategoricalParameterRanges"][0]["Values"] == ["32", "64", "128", "256", "512"]
    static = job.request["TrainingJobDefinition"]["StaticHyperParameters"]
    assert "learning_rate" not in static and "batch_size" not in static


def test_ec2_run_is_hardened() -> None:
    stack = _stack(["training=ec2"])
    (job,) = stack.jobs
    r = job.request
    assert r["MetadataOptions"]["HttpTokens"] == "required"
    assert r["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    assert r["NetworkInterfaces"][0]["AssociatePublicIpAddress"] is False
    assert r["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert '--data_dir "$DATA_URI"' in r["UserData"] and "shutdown -h +120" in r["UserData"]
    assert stack.resource("InstanceProfileEc2Training").properties["Roles"] == ["sagegate-demo-ec2-training"]


@pytest.mark.parametrize("preset", PRESETS)
def test_template_passes_cfn_lint(preset: str, tmp_path: Path) -> None:
    template = _stack(PRESETS[preset]).template()
    assert "Parameters" not in template and "Conditions" not in template
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
