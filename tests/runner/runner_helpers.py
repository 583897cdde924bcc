"""Botocore hooks for counting and failing calls, and an independent inventory of a stack."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from botocore.awsrequest import AWSResponse

from runner.core.names import STACK_TAG
from runner.core.settings import Settings
from runner.stack.build import build_stack
from runner.stack.model import Stack

READ_PREFIXES = ("Describe", "Get", "List", "Head")


@lru_cache(maxsize=16)
def _composed(overrides: tuple[str, ...]) -> Settings:
    from runner.app.compose import compose_settings

    return compose_settings(list(overrides))


def settings_for(name: str, *overrides: str) -> Settings:
    settings = copy.deepcopy(_composed(tuple(overrides)))
    settings.name = name
    return settings


def stack_for(name: str, *overrides: str) -> Stack:
    return build_stack(settings_for(name, *overrides))


def is_mutating(operation: str) -> bool:
    return not operation.startswith(READ_PREFIXES)


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_: Any):
        yield self._body


def error_response(protocol: str, status: int, code: str, message: str) -> AWSResponse:
    """An AWS error response in the service's wire protocol, as botocore would receive it."""
    headers = {"x-amzn-RequestId": "injected"}
    if protocol == "query":
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
                "</Error><RequestId>injected</RequestId></ErrorResponse>").encode()
        headers["Content-Type"] = "text/xml"
    elif protocol == "rest-xml":
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        headers["Content-Type"] = "application/xml"
    elif protocol == "rest-json":
        body = json.dumps({"message": message}).encode()
        headers.update({"x-amzn-ErrorType": code, "Content-Type": "application/json"})
    else:
        body = json.dumps({"__type": code, "message": message}).encode()
        headers["Content-Type"] = "application/x-amz-json-1.1"
    return AWSResponse("https://injected", status, headers, _Raw(body))


_PROTOCOLS = {"iam": "query", "s3": "rest-xml", "lambda": "rest-json", "sagemaker": "json",
              "application-auto-scaling": "json", "ec2": "ec2", "sts": "query"}


class Killed(BaseException):
    """The process died (kill -9): no call after this one reaches AWS, nothing cleans up."""


@dataclass
class CallLog:
    """Every request sent (retries included), in order; optionally fails or throttles some."""

    sent: list[str] = field(default_factory=list)
    fail_mutating_call: int | None = None  # 1-based index among mutating calls
    throttle: dict[str, int] = field(default_factory=dict)  # operation -> throttled attempts left
    throttled: list[str] = field(default_factory=list)
    failed: str | None = None
    fail_operation: str | None = None  # every call of this operation fails
    message: str | None = None  # the injected error's message (default: "injected failure of <op>")
    kill_at_mutating_call: int | None = None  # 1-based: this call and every later one never leave
    lose_answer_at_mutating_call: int | None = None  # 1-based: it reaches AWS, the client sees an error

    @property
    def mutating(self) -> list[str]:
        return [op for op in self.sent if is_mutating(op)]

    def __call__(self, event_name: str, **kwargs: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".", 2)
        protocol = _PROTOCOLS.get(service, "json")
        if self.throttle.get(operation, 0) > 0:
            self.throttle[operation] -= 1
            self.throttled.append(operation)
            code = "Throttling" if protocol == "query" else "ThrottlingException"
            return error_response(protocol, 400, code, "Rate exceeded")
        if self.kill_at_mutating_call is not None and (
                self.failed or (is_mutating(operation) and len(self.mutating) + 1 >= self.kill_at_mutating_call)):
            self.failed = self.failed or f"{service}:{operation}"
            raise Killed(self.failed)
        self.sent.append(operation)
        if is_mutating(operation) and self.lose_answer_at_mutating_call == len(self.mutating):
            # As after a timeout: the change happens, the answer never arrives (not retried, so the
            # client's error is this one and not AWS's answer to a repeated request).
            from botocore.httpsession import URLLib3Session

            URLLib3Session().send(kwargs["request"])
            self.failed = f"{service}:{operation}"
            return error_response(protocol, 400, "InjectedLostAnswer", f"the answer to {operation} was lost")
        if (is_mutating(operation) and self.fail_mutating_call == len(self.mutating)) or operation == self.fail_operation:
            self.failed = f"{service}:{operation}"
            return error_response(protocol, 400, "InjectedFault", self.message or f"injected failure of {operation}")
        return None


def watch(target: Any, log: CallLog | None = None) -> tuple[CallLog, Any]:
    log = log or CallLog()
    remove = target.register("before-send", log)
    return log, remove


def assert_refused(overrides: list[str], key: str, fragment: str) -> None:
    """The overrides are refused with one line that names ``key`` first and says ``fragment``."""
    import pytest

    from runner.app.compose import compose_settings
    from runner.core.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        compose_settings(overrides)
    message = str(caught.value)
    assert message.startswith(f"{key}: "), message
    assert fragment in message, message
    assert "\n" not in message


def scalable_targets(aas) -> list[dict[str, Any]]:
    """Every SageMaker scalable target of the account, all pages."""
    pages = aas.get_paginator("describe_scalable_targets").paginate(ServiceNamespace="sagemaker")
    return [t for page in pages for t in page["ScalableTargets"]]


def scaling_policies(aas) -> list[dict[str, Any]]:
    """Every SageMaker scaling policy of the account, all pages."""
    pages = aas.get_paginator("describe_scaling_policies").paginate(ServiceNamespace="sagemaker")
    return [p for page in pages for p in page["ScalingPolicies"]]


def inventory(target: Any, stack_name: str) -> set[str]:
    """Everything in the account that belongs to the stack: by tag or by the stack's names."""
    found: set[str] = set()
    iam, sm, lam = target.client("iam"), target.client("sagemaker"), target.client("lambda")
    aas = target.client("application-autoscaling")
    prefix = f"{stack_name}-"
    for role in [r for page in iam.get_paginator("list_roles").paginate() for r in page["Roles"]]:
        if role["RoleName"].startswith(prefix):
            found.add(f"role:{role['RoleName']}")
    for profile in [p for page in iam.get_paginator("list_instance_profiles").paginate() for p in page["InstanceProfiles"]]:
        if profile["InstanceProfileName"].startswith(prefix):
            found.add(f"instance-profile:{profile['InstanceProfileName']}")
    # (moto ignores NameContains: filter here)
    for kind, operation, key, name_key in (
            ("model", "list_models", "Models", "ModelName"),
            ("endpoint-config", "list_endpoint_configs", "EndpointConfigs", "EndpointConfigName"),
            ("endpoint", "list_endpoints", "Endpoints", "EndpointName"),
            ("notebook", "list_notebook_instances", "NotebookInstances", "NotebookInstanceName")):
        for page in sm.get_paginator(operation).paginate(NameContains=prefix):
            for item in page[key]:
                if item[name_key].startswith(prefix):
                    found.add(f"{kind}:{item[name_key]}")
    # Paginated: the shared emulator holds every test's targets, beyond one page (50) in a full run.
    for target_ in scalable_targets(aas):
        if target_["ResourceId"].startswith(f"endpoint/{prefix}"):
            found.add(f"scalable-target:{target_['ResourceId']}")
    for policy in scaling_policies(aas):
        if policy["ResourceId"].startswith(f"endpoint/{prefix}"):
            found.add(f"scaling-policy:{policy['PolicyName']}")
    for function in [f for page in lam.get_paginator("list_functions").paginate() for f in page["Functions"]]:
        name = function["FunctionName"]
        if not name.startswith(prefix):
            continue
        found.add(f"function:{name}")
        for version in lam.list_versions_by_function(FunctionName=name)["Versions"]:
            if version["Version"] != "$LATEST":
                found.add(f"version:{name}:{version['Version']}")
        for alias in lam.list_aliases(FunctionName=name)["Aliases"]:
            found.add(f"alias:{name}:{alias['Name']}")
    return found


def tagged_resources(target: Any, stack_name: str) -> set[str]:
    """The inventory's members that carry the stack tag (roles, SageMaker resources, functions)."""
    iam, sm, lam = target.client("iam"), target.client("sagemaker"), target.client("lambda")
    tagged = set()
    for item in inventory(target, stack_name):
        kind, _, name = item.partition(":")
        tags: list[dict[str, str]] | dict[str, str] = []
        if kind == "role":
            tags = iam.list_role_tags(RoleName=name)["Tags"]
        elif kind in ("model", "endpoint-config", "endpoint"):
            describe = {"model": ("describe_model", "ModelName", "ModelArn"),
                        "endpoint-config": ("describe_endpoint_config", "EndpointConfigName", "EndpointConfigArn"),
                        "endpoint": ("describe_endpoint", "EndpointName", "EndpointArn")}[kind]
            arn = getattr(sm, describe[0])(**{describe[1]: name})[describe[2]]
            tags = sm.list_tags(ResourceArn=arn)["Tags"]
        elif kind == "function":
            tags = lam.get_function(FunctionName=name).get("Tags", {})
        values = tags if isinstance(tags, dict) else {t["Key"]: t["Value"] for t in tags}
        if values.get(STACK_TAG) == stack_name:
            tagged.add(item)
    return tagged


# A notebook without direct internet access needs a subnet and security groups (SG-AWS-001/002):
# ids of the right shape for tests that never send the request...
NOTEBOOK = ("notebook=t3_medium", "notebook.subnet_id=subnet-0123456789abcdef0",
            "notebook.security_group_ids=[sg-0123456789abcdef0]")


REFERENCE = ("experiment=reference_2023", *NOTEBOOK[1:])


def with_network(target: Any, *overrides: str) -> tuple[str, ...]:
    """...and, for tests that do, ``notebook=t3_medium`` given a subnet and security group that exist
    on ``target`` (one private network per emulator, made on first use)."""
    with_notebook = ("notebook=t3_medium", "experiment=reference_2023")
    at = next((i for i, o in enumerate(overrides) if o in with_notebook), None)
    if at is None:
        return overrides
    ec2 = target.client("ec2")
    found = ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": ["sagegate-tests-private"]}])["Subnets"]
    if found:
        subnet, vpc = found[0]["SubnetId"], found[0]["VpcId"]
        group = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                      {"Name": "group-name", "Values": ["sagegate-tests"]}])
        group_id = group["SecurityGroups"][0]["GroupId"]
    else:
        vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24", TagSpecifications=[
            {"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": "sagegate-tests-private"}]}])["Subnet"]["SubnetId"]
        group_id = ec2.create_security_group(GroupName="sagegate-tests", Description="sagegate tests",
                                             VpcId=vpc)["GroupId"]
    return (*overrides[:at + 1], f"notebook.subnet_id={subnet}", f"notebook.security_group_ids=[{group_id}]",
            *overrides[at + 1:])


def exhaustive() -> bool:
    """True under ``pytest --exhaustive`` (tests/conftest.py): every case, not the default sample."""
    import os

    return os.environ.get("SAGEGATE_EXHAUSTIVE") == "1"


def sample(cases: list[Any], size: int, seed: str = "sagegate") -> list[Any]:
    """``size`` of ``cases`` chosen by a fixed seed (the same sample on every run, so a failure
    reproduces), always keeping the first and the last; every case under ``--exhaustive``."""
    import random

    if exhaustive() or len(cases) <= size:
        return list(cases)
    middle = random.Random(seed).sample(range(1, len(cases) - 1), max(size - 2, 0))
    return [cases[i] for i in [0, *sorted(middle), len(cases) - 1]]


# -- deploys under faults (tests/runner/deploy/test_fault_matrix.py, test_killed_process.py) -----
UPDATE = "endpoint.variants.AllTraffic.instance_type=ml.c5.large"  # an instance-type update
UPDATE_CALLS = ["CreateEndpointConfig", "DeleteScalingPolicy", "DeregisterScalableTarget", "UpdateEndpoint",
                "RegisterScalableTarget", "PutScalingPolicy", "DeleteEndpointConfig"]


def deploy(target: Any, stack: Stack) -> Any:
    from runner.deploy import apply

    return apply(stack, target)  # the bucket's check, the code's upload, the plan and its changes


def mutating_calls(target: Any, stack: Stack) -> list[str]:
    """The mutating calls a deploy of ``stack`` sends."""
    log, remove = watch(target)
    deploy(target, stack)
    remove()
    return log.mutating


def _shaped_name(text: str, name: str) -> str:
    return re.sub(r"-(model|config)-[0-9a-f]{8}", r"-\1-HASH", text.replace(name, "NAME"))


def deployed_state(target: Any, name: str) -> dict[str, Any]:
    """What a user would check: the stack's resources, the endpoint's config and variants, and the
    autoscaling registered on them (names shaped so two stacks compare)."""
    sm = target.client("sagemaker")
    state: dict[str, Any] = {"inventory": {_shaped_name(i, name) for i in inventory(target, name)}}
    try:
        endpoint = sm.describe_endpoint(EndpointName=f"{name}-endpoint")
    except sm.exceptions.ClientError:
        endpoint = None
    if endpoint is not None:
        config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        state["endpoint"] = (endpoint["EndpointStatus"], _shaped_name(endpoint["EndpointConfigName"], name),
                             [(v["VariantName"], v["InstanceType"]) for v in config["ProductionVariants"]])
    aas = target.client("application-autoscaling")
    prefix = f"endpoint/{name}-endpoint/"
    state["targets"] = sorted((_shaped_name(t["ResourceId"], name), t["MinCapacity"], t["MaxCapacity"])
                              for t in scalable_targets(aas) if t["ResourceId"].startswith(prefix))
    state["policies"] = sorted((_shaped_name(p["PolicyName"], name), repr(p["TargetTrackingScalingPolicyConfiguration"]))
                               for p in scaling_policies(aas) if p["ResourceId"].startswith(prefix))
    return state


def converges(target: Any, stack: Stack, expected: dict[str, Any], why: Any) -> None:
    """The next deploy reaches ``expected``; one more sends no mutating call."""
    assert deploy(target, stack).ok, why
    assert deployed_state(target, stack.name) == expected, why
    assert mutating_calls(target, stack) == [], why
