"""Deploy, read back, converge, replace, refuse, destroy: the apply engine on the embedded target."""

from __future__ import annotations

import json
import signal

import pytest
from runner_helpers import CallLog, inventory, settings_for, stack_for, tagged_resources, watch, with_network

from runner.core.names import STACK_TAG
from runner.deploy import (
    ApplyError,
    apply,
    destroy,
    ensure_bucket,
    plan_changes,
    upload_artifact,
    upload_function_code,
)
from runner.deploy.drivers import ForeignResourceError
from runner.stack.build import build_stack


def _read_back(target, stack) -> dict:
    iam, sm = target.client("iam"), target.client("sagemaker")
    aas, lam = target.client("application-autoscaling"), target.client("lambda")
    names = stack.names
    endpoint = sm.describe_endpoint(EndpointName=names.endpoint_name)
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variant = config["ProductionVariants"][0]
    model = sm.describe_model(ModelName=variant["ModelName"])
    resource_id = f"endpoint/{names.endpoint_name}/variant/{variant['VariantName']}"
    scalable = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource_id])["ScalableTargets"][0]
    policy = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource_id)["ScalingPolicies"][0]
    function = lam.get_function(FunctionName=names.function_name)
    alias = lam.get_alias(FunctionName=names.function_name, Name="live")
    provisioned = lam.get_provisioned_concurrency_config(FunctionName=names.function_name, Qualifier="live")
    version = lam.get_function_configuration(FunctionName=names.function_name, Qualifier=alias["FunctionVersion"])
    roles = {}
    for role in stack.find("AWS::IAM::Role"):
        name = role.properties["RoleName"]
        roles[name] = {
            "trust": iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"],
            "policies": {p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                         for p in iam.list_role_policies(RoleName=name)["PolicyNames"]},
            "tags": {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]},
        }
    return {
        "endpoint_status": endpoint["EndpointStatus"], "endpoint_config": endpoint["EndpointConfigName"],
        "instance_type": variant["InstanceType"], "instance_count": variant["InitialInstanceCount"],
        "model_name": variant["ModelName"], "model_data_url": model["PrimaryContainer"]["ModelDataUrl"],
        "image": model["PrimaryContainer"]["Image"], "network_isolation": model["EnableNetworkIsolation"],
        "min": scalable["MinCapacity"], "max": scalable["MaxCapacity"],
        "scaling": policy["TargetTrackingScalingPolicyConfiguration"],
        "memory": function["Configuration"]["MemorySize"], "timeout": function["Configuration"]["Timeout"],
        "environment": function["Configuration"]["Environment"]["Variables"],
        "reserved": function["Concurrency"]["ReservedConcurrentExecutions"],
        "function_tags": function["Tags"], "provisioned": provisioned["RequestedProvisionedConcurrentExecutions"],
        "provisioned_status": provisioned["Status"], "version_description": version["Description"],
        "roles": roles,
    }


def test_deploy_from_empty_matches_the_plan(local_target, stack_name):
    stack = stack_for(stack_name)
    changes = plan_changes(stack, local_target)
    assert {c.action for c in changes} == {"create"}
    assert [c.logical_id for c in changes] == [
        "RoleSagemakerExecution", "RoleLambdaInvoke", "Model", "EndpointConfig", "Endpoint", "ScalableTarget",
        "ScalingPolicy", "InvokeFunction", "InvokeFunctionVersion", "InvokeFunctionAlias"]

    report = apply(stack, local_target)
    assert report.ok and len(report.created) == 10 and not report.updated and not report.deleted

    live = _read_back(local_target, stack)
    props = {r.logical_id: r.properties for r in stack.resources}
    variant = props["EndpointConfig"]["ProductionVariants"][0]
    scaling = props["ScalingPolicy"]["TargetTrackingScalingPolicyConfiguration"]
    function = props["InvokeFunction"]
    assert live["endpoint_status"] == "InService"
    assert live["endpoint_config"] == props["EndpointConfig"]["EndpointConfigName"]
    assert (live["instance_type"], live["instance_count"]) == (variant["InstanceType"], variant["InitialInstanceCount"])
    assert live["model_name"] == props["Model"]["ModelName"]
    assert live["model_data_url"] == stack.model_data_url
    assert live["image"] == props["Model"]["PrimaryContainer"]["Image"]
    assert live["network_isolation"] is True
    assert (live["min"], live["max"]) == (props["ScalableTarget"]["MinCapacity"], props["ScalableTarget"]["MaxCapacity"])
    assert (live["min"], live["max"]) == (1, 3)
    assert live["scaling"]["TargetValue"] == scaling["TargetValue"] == 20.0
    assert (live["scaling"]["ScaleInCooldown"], live["scaling"]["ScaleOutCooldown"]) == (30, 30)
    assert (live["memory"], live["timeout"]) == (function["MemorySize"], function["Timeout"])
    assert live["environment"] == function["Environment"]["Variables"]
    assert (live["reserved"], live["provisioned"]) == (5, 2)
    assert live["provisioned_status"] == "READY"
    assert live["version_description"] == props["InvokeFunctionVersion"]["Description"]
    assert live["function_tags"][STACK_TAG] == stack_name
    for role in stack.find("AWS::IAM::Role"):
        got = live["roles"][role.properties["RoleName"]]
        assert got["trust"] == role.properties["AssumeRolePolicyDocument"]
        assert got["policies"] == {p["PolicyName"]: p["PolicyDocument"] for p in role.properties["Policies"]}
        assert got["tags"][STACK_TAG] == stack_name


def test_second_deploy_makes_no_mutating_call(local_target, stack_name):
    stack = stack_for(stack_name)
    apply(stack, local_target)
    log, _ = watch(local_target)
    report = apply(stack_for(stack_name), local_target)
    assert log.sent, "the hook saw no call at all"
    assert log.mutating == []
    assert {c.action for c in report.changes} == {"no-change"}


def test_changed_instance_type_replaces_the_config_and_updates_the_endpoint(local_target, stack_name):
    first = stack_for(stack_name)
    apply(first, local_target)
    old_config = first.resource("EndpointConfig").properties["EndpointConfigName"]
    second = stack_for(stack_name, "endpoint.variants.AllTraffic.instance_type=ml.c5.xlarge")
    new_config = second.resource("EndpointConfig").properties["EndpointConfigName"]
    assert new_config != old_config

    changes = {c.logical_id: c for c in plan_changes(second, local_target) if c.action != "no-change"}
    assert changes["EndpointConfig"].action == "replace" and changes["EndpointConfig"].replaces == old_config
    assert changes["EndpointConfig"].details == ["ProductionVariants"]
    assert changes["Endpoint"].action == "update" and changes["Endpoint"].details == ["EndpointConfigName"]
    assert changes["ScalableTarget"].action == changes["ScalingPolicy"].action == "replace"
    assert set(changes) == {"EndpointConfig", "Endpoint", "ScalableTarget", "ScalingPolicy"}

    log, _ = watch(local_target)
    apply(second, local_target)
    ops = log.mutating
    assert ops.index("CreateEndpointConfig") < ops.index("DeregisterScalableTarget") < ops.index("UpdateEndpoint") \
        < ops.index("RegisterScalableTarget") < ops.index("DeleteEndpointConfig")
    live = _read_back(local_target, second)
    assert live["instance_type"] == "ml.c5.xlarge" and live["endpoint_config"] == new_config
    assert (live["min"], live["max"]) == (1, 3)
    assert f"endpoint-config:{old_config}" not in inventory(local_target, stack_name)
    log.sent.clear()
    apply(second, local_target)
    assert log.mutating == []


def test_function_config_change_publishes_a_version_and_moves_the_alias(local_target, stack_name):
    apply(stack_for(stack_name), local_target)
    lam = local_target.client("lambda")
    before = lam.get_alias(FunctionName=f"{stack_name}-invoke", Name="live")["FunctionVersion"]
    stack = stack_for(stack_name, "function.memory_size=512", "function.provisioned_concurrency=3")
    changes = {c.logical_id: c for c in plan_changes(stack, local_target) if c.action != "no-change"}
    assert set(changes) == {"InvokeFunction", "InvokeFunctionVersion", "InvokeFunctionAlias"}
    assert "MemorySize" in changes["InvokeFunction"].details
    apply(stack, local_target)
    alias = lam.get_alias(FunctionName=f"{stack_name}-invoke", Name="live")
    assert alias["FunctionVersion"] != before
    assert lam.get_function_configuration(FunctionName=f"{stack_name}-invoke",
                                          Qualifier=alias["FunctionVersion"])["MemorySize"] == 512
    assert lam.get_provisioned_concurrency_config(FunctionName=f"{stack_name}-invoke",
                                                  Qualifier="live")["RequestedProvisionedConcurrentExecutions"] == 3


def test_injected_throttling_is_retried(local_target, stack_name):
    stack = stack_for(stack_name)
    # Two wire protocols (JSON and REST-JSON); late calls, as adaptive mode then slows the client down.
    log = CallLog(throttle={"CreateEndpoint": 2, "CreateAlias": 1})
    watch(local_target, log)
    report = apply(stack, local_target)
    assert report.ok
    assert sorted(log.throttled) == ["CreateAlias", "CreateEndpoint", "CreateEndpoint"]
    assert log.sent.count("CreateEndpoint") == log.sent.count("CreateAlias") == 1  # then succeeded
    assert f"endpoint:{stack.names.endpoint_name}" in inventory(local_target, stack_name)


def test_foreign_same_named_resource_is_refused(local_target, stack_name):
    stack = stack_for(stack_name)
    role = stack.resource("RoleLambdaInvoke").properties
    iam = local_target.client("iam")
    iam.create_role(RoleName=role["RoleName"], AssumeRolePolicyDocument=json.dumps(role["AssumeRolePolicyDocument"]),
                    Tags=[{"Key": "owner", "Value": "someone-else"}])
    with pytest.raises(ForeignResourceError, match=role["RoleName"]):
        plan_changes(stack, local_target)
    log, _ = watch(local_target)
    with pytest.raises(ForeignResourceError, match="not tagged sagegate:stack"):
        apply(stack, local_target)
    # Nothing of the stack was created, and the foreign role is untouched.
    assert [op for op in log.mutating if not op.startswith(("PutObject", "CreateBucket", "PutBucket", "PutPublic"))] == []
    assert inventory(local_target, stack_name) == {f"role:{role['RoleName']}"}
    assert iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"] == []
    destroy(settings_for(stack_name), local_target)
    assert inventory(local_target, stack_name) == {f"role:{role['RoleName']}"}


def test_destroy_leaves_nothing_tagged_and_keeps_artifacts(local_target, stack_name, tmp_path):
    notebook = with_network(local_target, "notebook=t3_medium")
    stack = stack_for(stack_name, *notebook)
    ensure_bucket(local_target, stack.names)
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(b"weights")
    uri = upload_artifact(local_target, stack.names, artifact)
    assert upload_artifact(local_target, stack.names, artifact) == uri  # content-addressed, once
    apply(stack, local_target)
    assert f"notebook:{stack.names.notebook_name}" in tagged_resources(local_target, stack_name) | inventory(
        local_target, stack_name)

    report = destroy(settings_for(stack_name, *notebook), local_target)
    assert report.deleted and inventory(local_target, stack_name) == set()
    assert tagged_resources(local_target, stack_name) == set()
    s3 = local_target.client("s3")
    key = uri.split("/", 3)[3]
    assert s3.get_object(Bucket=stack.names.bucket, Key=key)["Body"].read() == b"weights"
    assert any(stack.names.bucket in kept for kept in report.kept)

    log, _ = watch(local_target)
    again = destroy(settings_for(stack_name), local_target)
    assert again.deleted == [] and log.mutating == []

    gone = destroy(settings_for(stack_name), local_target, delete_artifacts=True)
    assert gone.deleted_objects >= 2
    assert stack.names.bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_removed_parts_are_swept(local_target, stack_name):
    apply(stack_for(stack_name, *with_network(local_target, "notebook=t3_medium")), local_target)
    stack = stack_for(stack_name, "autoscaling=none")
    changes = [c for c in plan_changes(stack, local_target) if c.action != "no-change"]
    assert sorted((c.action, c.type) for c in changes) == [
        ("delete", "AWS::ApplicationAutoScaling::ScalableTarget"),
        ("delete", "AWS::IAM::Role"),
        ("delete", "AWS::SageMaker::NotebookInstance"),
    ]
    apply(stack, local_target)
    left = inventory(local_target, stack_name)
    assert not any(item.startswith(("scalable-target:", "scaling-policy:", "notebook:")) for item in left)
    assert f"role:{stack_name}-notebook" not in left


def test_apply_failure_raises_with_a_report(local_target, stack_name):
    stack = stack_for(stack_name)
    ensure_bucket(local_target, stack.names)
    upload_function_code(local_target, stack)
    log = CallLog(fail_mutating_call=3)
    watch(local_target, log)
    with pytest.raises(ApplyError) as caught:
        apply(stack, local_target)
    report = caught.value.report
    assert report.failed and report.error and "InjectedFault" in str(caught.value)
    assert report.rolled_back and not report.remaining


def test_ctrl_c_stops_at_a_resource_boundary_and_rolls_back(local_target, stack_name):
    stack = stack_for(stack_name)
    ensure_bucket(local_target, stack.names)
    upload_function_code(local_target, stack)
    sent: list[str] = []

    def press_ctrl_c(event_name, **_):
        operation = event_name.rsplit(".", 1)[1]
        sent.append(operation)
        if operation == "CreateModel":
            signal.raise_signal(signal.SIGINT)  # the user presses Ctrl-C while the model is created

    local_target.register("before-send", press_ctrl_c)
    with pytest.raises(ApplyError, match="apply interrupted") as caught:
        apply(stack, local_target)
    report = caught.value.report
    assert report.interrupted
    assert report.created[-1] == f"AWS::SageMaker::Model {stack.resource('Model').properties['ModelName']}"
    assert "CreateEndpointConfig" not in sent  # the next resource never started
    assert sorted(report.rolled_back) == sorted(report.created) and report.remaining == []
    assert inventory(local_target, stack_name) == set()


@pytest.mark.parametrize("overrides", [
    ("notebook=t3_medium", "training=ec2"),
    ("endpoint=serverless", "function.provisioned_concurrency=0"),
    ("experiment=reference_2023", "endpoint.data_capture=true", "endpoint.kms_key_id=alias/sagegate",
     "function.kms_key_arn=arn:aws:kms:us-east-1:123456789012:key/sagegate"),
], ids=["notebook-ec2", "serverless", "reference-kms"])
def test_every_configuration_converges_in_one_apply(local_target, stack_name, overrides):
    overrides = with_network(local_target, *overrides)
    apply(stack_for(stack_name, *overrides), local_target)
    log, _ = watch(local_target)
    report = apply(stack_for(stack_name, *overrides), local_target)
    assert log.mutating == [] and {c.action for c in report.changes} == {"no-change"}


def test_foreign_endpoint_and_its_scaling_are_never_touched(local_target, stack_name):
    stack = stack_for(stack_name)
    sm, aas = local_target.client("sagemaker"), local_target.client("application-autoscaling")
    model = stack.resource("Model").properties
    sm.create_model(ModelName=f"other-{stack_name}", ExecutionRoleArn=model["ExecutionRoleArn"],
                    PrimaryContainer=model["PrimaryContainer"])
    sm.create_endpoint_config(EndpointConfigName=f"other-{stack_name}", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": f"other-{stack_name}", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=stack.names.endpoint_name, EndpointConfigName=f"other-{stack_name}",
                       Tags=[{"Key": STACK_TAG, "Value": "another-stack"}])
    resource_id = f"endpoint/{stack.names.endpoint_name}/variant/AllTraffic"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource_id,
                                 ScalableDimension="sagemaker:variant:DesiredInstanceCount", MinCapacity=1, MaxCapacity=2)

    with pytest.raises(ForeignResourceError, match=f"{stack.names.endpoint_name} already exists and is tagged "
                                                   f"{STACK_TAG}=another-stack"):
        apply(stack, local_target)
    destroy(settings_for(stack_name), local_target)
    assert sm.describe_endpoint(EndpointName=stack.names.endpoint_name)["EndpointStatus"] == "InService"
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource_id])["ScalableTargets"]


def test_foreign_bucket_is_refused_and_kept(local_target, stack_name):
    stack = stack_for(stack_name)
    s3 = local_target.client("s3")
    s3.create_bucket(Bucket=stack.names.bucket)
    with pytest.raises(ForeignResourceError, match=stack.names.bucket):
        apply(stack, local_target)
    report = destroy(settings_for(stack_name), local_target, delete_artifacts=True)
    assert report.deleted == [] and any("not tagged" in kept for kept in report.kept)
    assert stack.names.bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_a_request_aws_would_refuse_is_refused_before_it_is_sent(local_target, stack_name):
    """moto takes a tag value with '!' ; IAM and SageMaker refuse it (pattern [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*).
    The local target refuses it too, before the request leaves, and rolls back what was created."""
    settings = settings_for(stack_name)
    settings.tags = {**settings.tags, "owner": "ml-team!"}
    stack = build_stack(settings)
    log, _ = watch(local_target)
    with pytest.raises(ApplyError, match=r"CreateRole: Tags\[\d\]\.Value 'ml-team!' does not match") as failed:
        apply(stack, local_target)
    assert "CreateRole" not in log.sent  # refused before it was sent
    assert "(set by config key tags)" in str(failed.value)  # what to change
    assert failed.value.report.remaining == []
    assert not [r for r in inventory(local_target, stack_name) if not r.startswith("bucket:")]
