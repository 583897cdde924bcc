"""AWS::Lambda::Function, ::Version and ::Alias: the function that invokes the endpoint.

Provisioned concurrency lives on the alias; the version is published from this exact code and
configuration, so a change to either publishes a new one and moves the alias.
"""

from __future__ import annotations

from typing import Any

from runner.stack.function_package import HANDLER, build_function_package
from runner.stack.model import Resource, content_hash
from runner.stack.parts import StackParts

_NOT_VERSIONED = ("Tags", "ReservedConcurrentExecutions")


def build_function(parts: StackParts) -> list[Resource]:
    settings, names = parts.settings, parts.names
    f, e = settings.function, settings.endpoint
    package = build_function_package()
    role_arn, role_id = parts.role_for("function")
    function_props: dict[str, Any] = {
        "FunctionName": names.function_name,
        "Description": f"sagegate {settings.name}: invokes {names.endpoint_name}",
        "Runtime": f.runtime,
        "Architectures": [f.architecture],
        "Handler": HANDLER,
        "Role": role_arn,
        "Code": {"S3Bucket": names.bucket, "S3Key": f"code/function-{package.sha256_hex[:16]}.zip"},
        "MemorySize": f.memory_size,
        "Timeout": f.timeout,
        "ReservedConcurrentExecutions": f.reserved_concurrency,
        "Environment": {"Variables": {
            "ENDPOINT_NAME": names.endpoint_name,
            "TOP_K": str(e.top_k),
            "CONNECT_TIMEOUT_S": str(f.connect_timeout),
            "READ_TIMEOUT_S": str(f.read_timeout),
        }},
        "TracingConfig": {"Mode": "Active"},
        "Tags": parts.tags,
    }
    if f.kms_key_arn:
        function_props["KmsKeyArn"] = f.kms_key_arn
    if f.subnet_ids:
        function_props["VpcConfig"] = {"SubnetIds": list(f.subnet_ids), "SecurityGroupIds": list(f.security_group_ids)}
    alias_props: dict[str, Any] = {
        "FunctionName": names.function_name,
        "Name": f.alias,
        "FunctionVersion": {"Fn::GetAtt": ["InvokeFunctionVersion", "Version"]},
    }
    if f.provisioned_concurrency > 0:
        alias_props["ProvisionedConcurrencyConfig"] = {"ProvisionedConcurrentExecutions": f.provisioned_concurrency}
    return [
        Resource("InvokeFunction", "AWS::Lambda::Function", function_props, depends_on=[role_id],
                 config_key="function"),
        Resource("InvokeFunctionVersion", "AWS::Lambda::Version", {
            "FunctionName": names.function_name,
            # Tags and reserved concurrency are not part of a version (PublishVersion snapshots code
            # and configuration; PutFunctionConcurrency applies to the function, and Lambda hands
            # back the existing version when $LATEST has not changed): in the hash they would name
            # a version no publish can make, and every deploy would publish and move the alias.
            "Description": f"code {package.sha256_hex[:16]} config "
                           f"{content_hash({k: v for k, v in function_props.items() if k not in _NOT_VERSIONED})}",
        }, depends_on=["InvokeFunction"], config_key="function"),
        Resource("InvokeFunctionAlias", "AWS::Lambda::Alias", alias_props, depends_on=["InvokeFunctionVersion"],
                 config_key="function"),
    ]
