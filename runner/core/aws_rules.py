"""AWS's own rules between request members and between requests, in one table.

The service models (runner/targets/request_validation.py) describe each member on its own; AWS
also refuses requests whose members do not fit together, or that name a resource that cannot be
used that way (a serverless variant backed by a network-isolated model, a traced function whose
role cannot write traces). moto checks none of these. Each rule here states the operation, the
error AWS answers with, where AWS documents it and the config key that leads to it, and one
predicate over the request. Two readers share the table:

- the local target's emulator (runner/targets/moto_gaps.py) refuses a request that breaks a rule,
  with AWS's error code and text, before moto would create anything;
- the policy gate (policies/rules/aws/) runs the same predicates over the stack's resources, so a
  config that leads to such a request fails the gate (id SG-AWS-NNN) before anything is sent.

A predicate sees the request and a ``World``: what else AWS would look at (the execution role's
permissions, the models an endpoint config names). The emulator answers from its backends, the
gate from the stack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from runner.core import iam_eval
from runner.core.instance_storage import has_instance_storage

# Lambda Developer Guide, "Using AWS Lambda with AWS X-Ray" (execution role permissions).
TRACING_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
# Lambda Developer Guide, "Giving Lambda functions access to resources in an Amazon VPC"
# (required IAM permissions; the AWSLambdaVPCAccessExecutionRole managed policy).
VPC_ACTIONS = ("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface")

SERVERLESS_EXCLUSIONS = ("https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html "
                         "(feature exclusions: VPC configuration, network isolation, data capture, multiple "
                         "production variants)")


class World(Protocol):
    """What AWS looks up beyond the request itself."""

    def role_allows(self, role_arn: str, action: str) -> bool | None:
        """Whether the role's policies allow ``action`` (None: the role is unknown here)."""

    def model(self, name: str) -> Mapping[str, Any] | None:
        """A SageMaker model's CreateModel members (None: unknown here)."""

    def vpc_of(self, resource_id: str) -> str | None:
        """The VPC a subnet or security group belongs to ("" when it does not exist, None: unknown here)."""


@dataclass(frozen=True)
class AwsRule:
    id: str  # SG-AWS-NNN: the gate's rule id
    operation: str  # service:Operation, as in IAM and the API reference
    error_code: str  # what AWS answers with
    title: str
    source: str  # where AWS states it
    config_key: str  # what a sagegate user changes to satisfy it
    remediation: str
    # The problem with this request, in AWS's words where they are known (None: it passes).
    problem: Callable[[Mapping[str, Any], World], str | None]
    # Whether a config can be checked for it before anything exists (a gate rule: policies/rules/aws/),
    # unless another gate rule already does (``gated_by``).
    gated: bool = True
    gated_by: str = ""


def policy_documents_allow(documents: Iterable[Any], action: str) -> bool:
    """Whether identity policies allow ``action`` on some resource with no Deny of it.

    Action wildcards are honoured; resources and conditions are not evaluated (a service's check at
    create time asks whether the action can be allowed at all)."""
    matching = [s for s in iam_eval.statements(documents) if "Action" in s and iam_eval.action_matches(action, s["Action"])]
    return not any(s.get("Effect") == "Deny" for s in matching) and any(s.get("Effect") == "Allow" for s in matching)


# -- the predicates ------------------------------------------------------------------------------
def _notebook_subnet(request: Mapping[str, Any], world: World) -> str | None:
    if request.get("DirectInternetAccess") == "Disabled" and not request.get("SubnetId"):
        return "DirectInternetAccess can be Disabled only when a SubnetId is specified"
    return None


def _notebook_security_groups(request: Mapping[str, Any], world: World) -> str | None:
    if request.get("SubnetId") and not request.get("SecurityGroupIds"):
        return "a notebook instance in a subnet needs SecurityGroupIds of that subnet's VPC"
    if request.get("SecurityGroupIds") and not request.get("SubnetId"):
        return "SecurityGroupIds apply only with a SubnetId"
    return None


def _notebook_network_exists(request: Mapping[str, Any], world: World) -> str | None:
    subnet = request.get("SubnetId")
    if not subnet:
        return None
    vpc = world.vpc_of(str(subnet))
    if vpc == "":
        return f"The subnet ID '{subnet}' does not exist"
    for group in request.get("SecurityGroupIds") or []:
        group_vpc = world.vpc_of(str(group))
        if group_vpc == "":
            return f"The security group '{group}' does not exist"
        if vpc and group_vpc and group_vpc != vpc:
            return f"The security group '{group}' is in {group_vpc}, not in the subnet's VPC {vpc}"
    return None


def _volume_key_on_instance_storage(request: Mapping[str, Any], world: World) -> str | None:
    definition = request.get("TrainingJobDefinition", request)  # a tuning job nests it
    resources = definition.get("ResourceConfig") or {}
    if resources.get("VolumeKmsKeyId") and has_instance_storage(str(resources.get("InstanceType", ""))):
        return (f"Instance type {resources['InstanceType']} has local storage, encrypted by the hardware: "
                "VolumeKmsKeyId cannot be specified for it")
    return None


def _config_key_on_instance_storage(request: Mapping[str, Any], world: World) -> str | None:
    if not request.get("KmsKeyId"):
        return None
    for variant in request.get("ProductionVariants", []):
        if has_instance_storage(str(variant.get("InstanceType", ""))):
            return (f"Variant {variant.get('VariantName')} runs on {variant['InstanceType']}, which has local "
                    "storage: KmsKeyId cannot be specified for an endpoint config with it")
    return None


def _serverless(request: Mapping[str, Any]) -> bool:
    return any("ServerlessConfig" in v for v in request.get("ProductionVariants", []))


def _serverless_one_variant(request: Mapping[str, Any], world: World) -> str | None:
    variants = request.get("ProductionVariants", [])
    if _serverless(request) and len(variants) > 1:
        return f"Serverless Inference supports one production variant; the endpoint config lists {len(variants)}"
    return None


def _serverless_data_capture(request: Mapping[str, Any], world: World) -> str | None:
    if _serverless(request) and request.get("DataCaptureConfig"):
        return "Serverless Inference does not support data capture (DataCaptureConfig)"
    return None


def _serverless_models(request: Mapping[str, Any], world: World, member: str, what: str) -> str | None:
    if not _serverless(request):
        return None
    for variant in request.get("ProductionVariants", []):
        model = world.model(str(variant.get("ModelName", "")))
        if model and model.get(member):
            return (f"Serverless Inference does not support {what}: model {variant['ModelName']} of variant "
                    f"{variant.get('VariantName')} has {member}")
    return None


def _serverless_isolation(request: Mapping[str, Any], world: World) -> str | None:
    return _serverless_models(request, world, "EnableNetworkIsolation", "network isolation")


def _serverless_vpc(request: Mapping[str, Any], world: World) -> str | None:
    return _serverless_models(request, world, "VpcConfig", "a VPC configuration")


def _role_lacks(request: Mapping[str, Any], world: World, actions: Iterable[str]) -> str | None:
    for action in actions:
        if world.role_allows(str(request.get("Role", "")), action) is False:
            service, _, call = action.partition(":")
            # Lambda's own words (InvalidParameterValueException).
            return f"The provided execution role does not have permissions to call {call} on {service.upper()}"
    return None


def _function_tracing(request: Mapping[str, Any], world: World) -> str | None:
    if (request.get("TracingConfig") or {}).get("Mode") != "Active":
        return None
    return _role_lacks(request, world, TRACING_ACTIONS)


def _function_vpc(request: Mapping[str, Any], world: World) -> str | None:
    if not (request.get("VpcConfig") or {}).get("SubnetIds"):
        return None
    return _role_lacks(request, world, VPC_ACTIONS)


RULES: tuple[AwsRule, ...] = (
    AwsRule("SG-AWS-001", "sagemaker:CreateNotebookInstance", "ValidationException",
            "Notebook without direct internet access outside a subnet",
            "SageMaker API reference, CreateNotebookInstance, DirectInternetAccess: \"You can set the value of "
            "this parameter to Disabled only if you set a value for the SubnetId parameter.\"",
            "notebook.subnet_id",
            "Set notebook.subnet_id (a private subnet) and notebook.security_group_ids.",
            _notebook_subnet),
    AwsRule("SG-AWS-002", "sagemaker:CreateNotebookInstance", "ValidationException",
            "Notebook subnet without security groups",
            "SageMaker API reference, CreateNotebookInstance, SecurityGroupIds (\"must be for the same VPC as "
            "specified in the subnet\") and SubnetId",
            "notebook.security_group_ids",
            "Give notebook.security_group_ids together with notebook.subnet_id.",
            _notebook_security_groups),
    AwsRule("SG-AWS-009", "sagemaker:CreateNotebookInstance", "ValidationException",
            "Notebook subnet or security group that does not exist",
            "SageMaker API reference, CreateNotebookInstance, SecurityGroupIds: \"The security groups must be for "
            "the same VPC as specified in the subnet.\"",
            "notebook.subnet_id",
            "Name a subnet and security groups of one VPC that exist in the target account and region.",
            _notebook_network_exists, gated=False),
    AwsRule("SG-AWS-010", "sagemaker:CreateTrainingJob", "ValidationException",
            "Volume key on an instance type with local storage",
            "SageMaker API reference, ResourceConfig, VolumeKmsKeyId: \"You can't request a VolumeKmsKeyId when "
            "using an instance type with local storage.\"",
            "training.volume_kms_key_id", "Set training.volume_kms_key_id=null for instance types with local storage.",
            _volume_key_on_instance_storage, gated=False, gated_by="SG-SAN-008"),
    AwsRule("SG-AWS-011", "sagemaker:CreateHyperParameterTuningJob", "ValidationException",
            "Volume key on an instance type with local storage (tuning)",
            "SageMaker API reference, ResourceConfig, VolumeKmsKeyId (as in the training job definition)",
            "training.volume_kms_key_id", "Set training.volume_kms_key_id=null for instance types with local storage.",
            _volume_key_on_instance_storage, gated=False, gated_by="SG-SAN-008"),
    AwsRule("SG-AWS-012", "sagemaker:CreateEndpointConfig", "ValidationException",
            "Endpoint config key with a variant on local storage",
            "SageMaker API reference, CreateEndpointConfig, KmsKeyId: \"If you specify a value for KmsKeyId when "
            "using any nitro-based instances with local storage, the call to CreateEndpointConfig fails.\"",
            "endpoint.kms_key_id", "Set endpoint.kms_key_id=null when a variant runs on an instance type with local "
            "storage.", _config_key_on_instance_storage, gated=False, gated_by="SG-SAN-008"),
    AwsRule("SG-AWS-003", "sagemaker:CreateEndpointConfig", "ValidationException",
            "Serverless endpoint with more than one variant", SERVERLESS_EXCLUSIONS, "endpoint.variants",
            "Keep one variant under endpoint=serverless.", _serverless_one_variant),
    AwsRule("SG-AWS-004", "sagemaker:CreateEndpointConfig", "ValidationException",
            "Serverless endpoint with data capture", SERVERLESS_EXCLUSIONS, "endpoint.data_capture",
            "Set endpoint.data_capture=false under endpoint=serverless.", _serverless_data_capture),
    AwsRule("SG-AWS-005", "sagemaker:CreateEndpointConfig", "ValidationException",
            "Serverless endpoint backed by a network-isolated model", SERVERLESS_EXCLUSIONS, "endpoint.kind",
            "Serve a network-isolated model from a real-time endpoint (endpoint=realtime).", _serverless_isolation),
    AwsRule("SG-AWS-006", "sagemaker:CreateEndpointConfig", "ValidationException",
            "Serverless endpoint backed by a model in a VPC", SERVERLESS_EXCLUSIONS, "endpoint.kind",
            "Serve a model with a VPC configuration from a real-time endpoint.", _serverless_vpc),
    AwsRule("SG-AWS-007", "lambda:CreateFunction", "InvalidParameterValueException",
            "Traced function whose role cannot write traces",
            "Lambda Developer Guide, \"Using AWS Lambda with AWS X-Ray\" (execution role permissions: "
            "xray:PutTraceSegments, xray:PutTelemetryRecords)",
            "iam.roles.lambda_invoke.scopes",
            "Grant the function's role xray:PutTraceSegments and xray:PutTelemetryRecords on Resource '*'.",
            _function_tracing),
    AwsRule("SG-AWS-008", "lambda:CreateFunction", "InvalidParameterValueException",
            "Function in a VPC whose role cannot manage network interfaces",
            "Lambda Developer Guide, \"Giving Lambda functions access to resources in an Amazon VPC\" (required "
            "IAM permissions: ec2:CreateNetworkInterface, ec2:DescribeNetworkInterfaces, "
            "ec2:DeleteNetworkInterface)",
            "iam.roles.lambda_invoke.scopes",
            "Grant the function's role ec2:CreateNetworkInterface, ec2:DescribeNetworkInterfaces and "
            "ec2:DeleteNetworkInterface (DescribeNetworkInterfaces only works on Resource '*').",
            _function_vpc),
)


def rule(rule_id: str) -> AwsRule:
    return next(r for r in RULES if r.id == rule_id)


def rules_for(operation: str) -> tuple[AwsRule, ...]:
    return tuple(rule for rule in RULES if rule.operation == operation)


def refusal(operation: str, request: Mapping[str, Any], world: World) -> tuple[AwsRule, str] | None:
    """The first rule ``request`` breaks, with its message (None: AWS takes it as far as we know)."""
    for rule in rules_for(operation):
        message = rule.problem(request, world)
        if message:
            return rule, message
    return None
