"""AWS::Lambda::Function, ::Version and ::Alias.

A code or configuration change updates the function, publishes a new version (its description
names the code and configuration hashes, so an unchanged function finds its version again) and
moves the alias, which holds the provisioned concurrency.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from runner.core.errors import UserError
from runner.deploy.drivers.base import (
    PENDING,
    Driver,
    DriverContext,
    Live,
    is_not_found,
    owner_of,
    retry_while_propagating,
    tag_dict,
)

_CONFIG_KEYS = ("Runtime", "Handler", "Role", "MemorySize", "Timeout", "Description", "Environment",
                "TracingConfig", "KmsKeyArn", "VpcConfig")
# UpdateFunctionConfiguration takes a VpcConfig with empty lists to leave a VPC.
_NO_VPC: dict[str, list[str]] = {"SubnetIds": [], "SecurityGroupIds": []}
LAMBDA_DELAY_S = 2.0


def _code_sha256_b64(ctx: DriverContext, code: dict[str, str]) -> str | None:
    s3 = ctx.client("s3")
    try:
        body = s3.get_object(Bucket=code["S3Bucket"], Key=code["S3Key"])["Body"].read()
    except s3.exceptions.ClientError as exc:
        if is_not_found(exc) or "NoSuchKey" in str(exc):
            return None
        raise
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


class FunctionDriver(Driver):
    type = "AWS::Lambda::Function"

    def describe(self, props: dict[str, Any]) -> str:
        return (f"{props['Runtime']} {props['MemorySize']} MB timeout {props['Timeout']} s\n"
                f"reserved concurrency {props['ReservedConcurrentExecutions']}")

    def desired_state(self, props: dict[str, Any]) -> dict[str, Any]:
        state = {k: props.get(k) for k in _CONFIG_KEYS}
        return state | {"Architectures": props.get("Architectures", ["x86_64"]), "Code": props["Code"],
                        "ReservedConcurrentExecutions": props.get("ReservedConcurrentExecutions"),
                        "Tags": tag_dict(props.get("Tags"))}

    def read(self, ctx: DriverContext, props: dict[str, Any]) -> Live | None:
        live = self.read_named(ctx, props["FunctionName"])
        if live is not None:
            wanted = _code_sha256_b64(ctx, props["Code"])
            live.state["Code"] = props["Code"] if wanted == live.state["CodeSha256"] else {
                "CodeSha256": live.state["CodeSha256"]}
        return live

    def read_named(self, ctx: DriverContext, name: str) -> Live | None:
        lam = ctx.client("lambda")
        try:
            answer = lam.get_function(FunctionName=name)
        except lam.exceptions.ResourceNotFoundException:
            return None
        config = answer["Configuration"]
        state = {k: config.get(k) for k in _CONFIG_KEYS}
        state["KmsKeyArn"] = config.get("KMSKeyArn")
        vpc = config.get("VpcConfig") or {}
        state["VpcConfig"] = ({"SubnetIds": vpc["SubnetIds"], "SecurityGroupIds": vpc.get("SecurityGroupIds", [])}
                              if vpc.get("SubnetIds") else None)
        state |= {"Architectures": config.get("Architectures", ["x86_64"]), "CodeSha256": config.get("CodeSha256"),
                  "ReservedConcurrentExecutions": answer.get("Concurrency", {}).get("ReservedConcurrentExecutions"),
                  "Tags": tag_dict(answer.get("Tags"))}
        return Live(self.type, name, {"FunctionName": name}, state, owner_of(answer.get("Tags")),
                    {"Arn": config["FunctionArn"]})

    def _wait_ready(self, ctx: DriverContext, name: str) -> None:
        lam = ctx.client("lambda")

        def ready() -> bool:
            config = lam.get_function_configuration(FunctionName=name)
            if config.get("State") == "Failed" or config.get("LastUpdateStatus") == "Failed":
                raise UserError(f"function {name} failed: {config.get('StateReason') or config.get('LastUpdateStatusReason')}")
            return config.get("State", "Active") == "Active" and config.get("LastUpdateStatus", "Successful") == "Successful"

        ctx.wait(f"function {name} to be ready", ready, LAMBDA_DELAY_S)

    def create(self, ctx: DriverContext, props: dict[str, Any]) -> Live:
        lam = ctx.client("lambda")
        request = {k: v for k, v in props.items() if k not in ("ReservedConcurrentExecutions", "Tags", "KmsKeyArn")}
        if props.get("KmsKeyArn"):
            request["KMSKeyArn"] = props["KmsKeyArn"]  # CloudFormation's spelling -> the API's
        request["Tags"] = tag_dict(props.get("Tags"))
        request["Publish"] = False
        name = props["FunctionName"]
        answer = retry_while_propagating(ctx, f"function {name}", lambda: lam.create_function(**request),
                                         role_arn=request.get("Role"))
        live = Live(self.type, name, {"FunctionName": name}, owner=ctx.stack_name, outputs={"Arn": answer["FunctionArn"]})
        ctx.created(live)
        self._wait_ready(ctx, name)
        if props.get("ReservedConcurrentExecutions") is not None:
            lam.put_function_concurrency(FunctionName=name,
                                         ReservedConcurrentExecutions=props["ReservedConcurrentExecutions"])
        return live

    def update(self, ctx: DriverContext, props: dict[str, Any], live: Live, details: list[str]) -> None:
        lam = ctx.client("lambda")
        name = props["FunctionName"]
        if "Code" in details or "Architectures" in details:
            lam.update_function_code(FunctionName=name, S3Bucket=props["Code"]["S3Bucket"], S3Key=props["Code"]["S3Key"],
                                     Architectures=props.get("Architectures", ["x86_64"]))
            self._wait_ready(ctx, name)
        config_changes = [k for k in details if k in _CONFIG_KEYS]
        if config_changes:
            request = {k: props[k] for k in _CONFIG_KEYS if k in props and k != "KmsKeyArn"}
            if "KmsKeyArn" in props:
                request["KMSKeyArn"] = props["KmsKeyArn"]
            if "VpcConfig" in details:
                request["VpcConfig"] = props.get("VpcConfig") or _NO_VPC
            retry_while_propagating(ctx, f"function {name}",
                                    lambda: lam.update_function_configuration(FunctionName=name, **request),
                                    role_arn=request.get("Role"))
            self._wait_ready(ctx, name)
        if "ReservedConcurrentExecutions" in details:
            if props.get("ReservedConcurrentExecutions") is None:
                lam.delete_function_concurrency(FunctionName=name)
            else:
                lam.put_function_concurrency(FunctionName=name,
                                             ReservedConcurrentExecutions=props["ReservedConcurrentExecutions"])
        if "Tags" in details:
            desired, have = tag_dict(props.get("Tags")), live.state["Tags"]
            removed = sorted(set(have) - set(desired))
            if removed:
                lam.untag_resource(Resource=live.outputs["Arn"], TagKeys=removed)
            changed = {k: v for k, v in desired.items() if have.get(k) != v}
            if changed:
                lam.tag_resource(Resource=live.outputs["Arn"], Tags=changed)
        return None

    def delete(self, ctx: DriverContext, live: Live) -> None:
        lam = ctx.client("lambda")
        try:
            lam.delete_function(FunctionName=live.key["FunctionName"])
        except lam.exceptions.ResourceNotFoundException:
            pass

    def discover(self, ctx: DriverContext) -> list[Live]:
        live = self.read_named(ctx, ctx.names.function_name)
        return [live] if live and live.owner == ctx.stack_name else []


class VersionDriver(Driver):
    type = "AWS::Lambda::Version"
    tagged = False
    named_by_live = True

    def describe(self, props: dict[str, Any]) -> str:
        return str(props["Description"])

    def name(self, props: dict[str, Any]) -> str:
        return f"{props['FunctionName']}:{props.get('Version', PENDING)}"

    def desired_state(self, props: dict[str, Any]) -> dict[str, Any]:
        return {"Description": props.get("Description", "")}

    def read(self, ctx: DriverContext, props: dict[str, Any]) -> Live | None:
        lam = ctx.client("lambda")
        name = props["FunctionName"]
        try:
            versions = []
            for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=name):
                versions.extend(page["Versions"])
        except lam.exceptions.ResourceNotFoundException:
            return None
        for version in reversed(versions):
            if version["Version"] != "$LATEST" and version.get("Description") == props.get("Description", ""):
                return Live(self.type, f"{name}:{version['Version']}",
                            {"FunctionName": name, "Version": version["Version"]},
                            {"Description": version.get("Description")}, outputs={"Version": version["Version"]})
        return None

    def create(self, ctx: DriverContext, props: dict[str, Any]) -> Live:
        lam = ctx.client("lambda")
        name = props["FunctionName"]
        answer = lam.publish_version(FunctionName=name, Description=props.get("Description", ""))
        live = Live(self.type, f"{name}:{answer['Version']}", {"FunctionName": name, "Version": answer["Version"]},
                    outputs={"Version": answer["Version"]})
        # Lambda hands back the existing version when $LATEST has not changed since it: not ours.
        if answer.get("Description", "") == props.get("Description", ""):
            ctx.created(live)
        return live

    def update(self, ctx: DriverContext, props: dict[str, Any], live: Live, details: list[str]) -> None:
        return None  # a version is found by its description: a different one is a new version

    def delete(self, ctx: DriverContext, live: Live) -> None:
        lam = ctx.client("lambda")
        try:
            lam.delete_function(FunctionName=live.key["FunctionName"], Qualifier=live.key["Version"])
        except lam.exceptions.ResourceNotFoundException:
            pass


class AliasDriver(Driver):
    type = "AWS::Lambda::Alias"
    tagged = False

    def describe(self, props: dict[str, Any]) -> str:
        pc = props.get("ProvisionedConcurrencyConfig", {}).get("ProvisionedConcurrentExecutions", 0)
        return f"alias {props['Name']}, provisioned concurrency {pc}"

    def name(self, props: dict[str, Any]) -> str:
        return f"{props['FunctionName']}:{props['Name']}"

    def desired_state(self, props: dict[str, Any]) -> dict[str, Any]:
        provisioned = (props.get("ProvisionedConcurrencyConfig") or {}).get("ProvisionedConcurrentExecutions")
        return {"FunctionVersion": props["FunctionVersion"], "ProvisionedConcurrentExecutions": provisioned}

    def read(self, ctx: DriverContext, props: dict[str, Any]) -> Live | None:
        lam = ctx.client("lambda")
        name, alias = props["FunctionName"], props["Name"]
        try:
            answer = lam.get_alias(FunctionName=name, Name=alias)
        except lam.exceptions.ResourceNotFoundException:
            return None
        state = {"FunctionVersion": answer["FunctionVersion"],
                 "ProvisionedConcurrentExecutions": self._provisioned(ctx, name, alias)}
        return Live(self.type, f"{name}:{alias}", {"FunctionName": name, "Name": alias}, state,
                    outputs={"Arn": answer["AliasArn"]})

    @staticmethod
    def _provisioned(ctx: DriverContext, name: str, alias: str) -> int | None:
        lam = ctx.client("lambda")
        try:
            config = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=alias)
        except lam.exceptions.ProvisionedConcurrencyConfigNotFoundException:
            return None
        return config["RequestedProvisionedConcurrentExecutions"]

    def _wait_ready(self, ctx: DriverContext, name: str, alias: str) -> None:
        lam = ctx.client("lambda")

        def ready() -> bool:
            config = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=alias)
            if config["Status"] == "FAILED":
                raise UserError(f"provisioned concurrency on {name}:{alias} failed: {config.get('StatusReason')}")
            return config["Status"] == "READY"

        ctx.wait(f"provisioned concurrency on {name}:{alias}", ready, 10.0)

    def _put_provisioned(self, ctx: DriverContext, props: dict[str, Any], wanted: int | None) -> None:
        lam = ctx.client("lambda")
        name, alias = props["FunctionName"], props["Name"]
        if wanted:
            lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=alias,
                                                   ProvisionedConcurrentExecutions=wanted)
            self._wait_ready(ctx, name, alias)
        else:
            lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=alias)

    def create(self, ctx: DriverContext, props: dict[str, Any]) -> Live:
        lam = ctx.client("lambda")
        name, alias = props["FunctionName"], props["Name"]
        answer = lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=props["FunctionVersion"])
        live = Live(self.type, f"{name}:{alias}", {"FunctionName": name, "Name": alias},
                    outputs={"Arn": answer["AliasArn"]})
        ctx.created(live)
        wanted = self.desired_state(props)["ProvisionedConcurrentExecutions"]
        if wanted:
            self._put_provisioned(ctx, props, wanted)
        return live

    def update(self, ctx: DriverContext, props: dict[str, Any], live: Live, details: list[str]) -> None:
        lam = ctx.client("lambda")
        name, alias = props["FunctionName"], props["Name"]
        if "FunctionVersion" in details:
            previous = live.state["FunctionVersion"]

            def undo() -> None:
                if lam.get_alias(FunctionName=name, Name=alias)["FunctionVersion"] != previous:
                    lam.update_alias(FunctionName=name, Name=alias, FunctionVersion=previous)

            ctx.moved(f"alias {name}:{alias} on version {previous}", undo)
            lam.update_alias(FunctionName=name, Name=alias, FunctionVersion=props["FunctionVersion"])

        if "ProvisionedConcurrentExecutions" in details:
            self._put_provisioned(ctx, props, self.desired_state(props)["ProvisionedConcurrentExecutions"])
        elif "FunctionVersion" in details and live.state.get("ProvisionedConcurrentExecutions"):
            self._wait_ready(ctx, name, alias)  # Lambda re-allocates on the new version

    def delete(self, ctx: DriverContext, live: Live) -> None:
        lam = ctx.client("lambda")
        name, alias = live.key["FunctionName"], live.key["Name"]
        try:
            if self._provisioned(ctx, name, alias) is not None:
                lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=alias)
            lam.delete_alias(FunctionName=name, Name=alias)
        except lam.exceptions.ResourceNotFoundException:
            pass
