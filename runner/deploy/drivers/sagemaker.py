"""AWS::SageMaker::Model, ::EndpointConfig, ::Endpoint and ::NotebookInstance.

Models and endpoint configs are immutable and carry a content hash in their names: a change is a
new resource (the plan calls it a replace of the one the endpoint uses now), the endpoint is
updated to it, and the sweeper deletes the old one afterwards.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from runner.deploy.drivers.base import (
    Driver,
    DriverContext,
    Live,
    is_not_found,
    owner_of,
    retry_while_propagating,
    tag_dict,
)
from runner.stack.autoscaling import SCALABLE_DIMENSION

ENDPOINT_DELAY_S = 15.0
# Endpoint states in which no change is in flight (DescribeEndpoint EndpointStatus).
_SETTLED = ("InService", "Failed", "OutOfService")


def _tags(sm: Any, arn: str) -> list[dict[str, str]]:
    return sm.list_tags(ResourceArn=arn).get("Tags", [])


def _retag(sm: Any, arn: str, desired: dict[str, str], live: dict[str, str]) -> None:
    removed = sorted(set(live) - set(desired))
    if removed:
        sm.delete_tags(ResourceArn=arn, TagKeys=removed)
    changed = {k: v for k, v in desired.items() if live.get(k) != v}
    if changed:
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in sorted(changed.items())])


def _not_found(exc: Exception) -> bool:
    return is_not_found(exc, "could not find")


def _list(sm: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    for page in sm.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(key, []))
    return items


def live_endpoint_config_name(ctx: DriverContext) -> str | None:
    """The config the stack's endpoint uses now (None without an owned endpoint)."""
    endpoint = EndpointDriver().read_named(ctx, ctx.names.endpoint_name)
    if endpoint is None or endpoint.owner != ctx.stack_name:
        return None
    return endpoint.state["EndpointConfigName"]


class ModelDriver(Driver):
    type = "AWS::SageMaker::Model"
    replace_on = frozenset({"ExecutionRoleArn", "PrimaryContainer", "EnableNetworkIsolation"})

    def describe(self, props: dict[str, Any]) -> str:
        container = props["PrimaryContainer"]
        return f"image {container['Image'].split('/')[-1]}\ndata {container['ModelDataUrl']}"

    def desired_state(self, props: dict[str, Any]) -> dict[str, Any]:
        return {"ExecutionRoleArn": props["ExecutionRoleArn"], "PrimaryContainer": props["PrimaryContainer"],
                "EnableNetworkIsolation": bool(props.get("EnableNetworkIsolation", False)),
                "Tags": tag_dict(props.get("Tags"))}

    def read(self, ctx: DriverContext, props: dict[str, Any]) -> Live | None:
        return self.read_named(ctx, props["ModelName"])

    def read_named(self, ctx: DriverContext, name: str) -> Live | None:
        sm = ctx.client("sagemaker")
        try:
            model = sm.describe_model(ModelName=name)
        except sm.exceptions.ClientError as exc:
            if _not_found(exc):
                return None
            raise
        tags = _tags(sm, model["ModelArn"])
        container = model.get("PrimaryContainer", {})
        state = {"ExecutionRoleArn": model.get("ExecutionRoleArn"),
                 "PrimaryContainer": {k: container[k] for k in ("Image", "ModelDataUrl", "Environment") if k in container},
                 "EnableNetworkIsolation": bool(model.get("EnableNetworkIsolation", False)),
                 "Tags": tag_dict(tags)}
        return Live(self.type, name, {"ModelName": name}, state, owner_of(tags), {"Arn": model["ModelArn"]})

    def create(self, ctx: DriverContext, props: dict[str, Any]) -> Live:
        sm = ctx.client("sagemaker")
        answer = retry_while_propagating(ctx, f"model {props['ModelName']}", lambda: sm.create_model(**props),
                                         role_arn=props.get("ExecutionRoleArn"))
        live = Live(self.type, props["ModelName"], {"ModelName": props["ModelName"]}, owner=ctx.stack_name,
                    outputs={"Arn": answer["ModelArn"]})
        ctx.created(live)
        return live

    def update(self, ctx: DriverContext, props: dict[str, Any], live: Live, details: list[str]) -> None:
        _retag(ctx.client("sagemaker"), live.outputs["Arn"], tag_dict(props.get("Tags")), live.state["Tags"])
        return None

    def delete(self, ctx: DriverContext, live: Live) -> None:
        sm = ctx.client("sagemaker")
        try:
            sm.delete_model(ModelName=live.key["ModelName"])
        except sm.exceptions.ClientError as exc:
            if not _not_found(exc):
                raise

    def predecessor(self, ctx: DriverContext, props: dict[str, Any]) -> Live | None:
        config_name = live_endpoint_config_name(ctx)
        config = EndpointConfigDriver().read_named(ctx, config_name) if config_name else None
        if config is None:
            return None
        for variant in config.state["ProductionVariants"]:
            if variant.get("ModelName") and variant["ModelName"] != props["ModelName"]:
                model = self.read_named(ctx, variant["ModelName"])
                if model and model.owner == ctx.stack_name:
                    return model
        return None

    def discover(self, ctx: DriverContext) -> list[Live]:
        sm = ctx.client("sagemaker")
        found = []
        prefix = f"{ctx.stack_name}-model-"
        for item in _list(sm, "list_models", "Models", NameContains=prefix):
            if not item["ModelName"].startswith(prefix):  # NameContains matches anywhere (moto: not at all)
                continue
            live = self.read_named(ctx, item["ModelName"])
            if live and live.owner == ctx.stack_name:
                found.append(live)
        return found


class EndpointConfigDriver(Driver):
    type = "AWS::SageMaker::EndpointConfig"
    replace_on = frozenset({"ProductionVariants", "KmsKeyId", "DataCaptureConfig"})

    def describe(self, props: dict[str, Any]) -> str:
        lines = []
        for v in props["ProductionVariants"]:
            if "ServerlessConfig" in v:
                sc = v["ServerlessConfig"]
                lines.append(f"{v['VariantName']}: serverless {sc['MemorySizeInMB']} MB, "
                             f"max concurrency {sc['MaxConcurrency']}")
            else:
                lines.append(f"{v['VariantName']}: {v['InstanceType']} x {v['InitialInstanceCount']}")
        lines.append(f"KMS {props.get('KmsKeyId', 'default')}")
        return "\n".join(lines)

    def desired_state(self, props: dict[str, Any]) -> dict[str, Any]:
        return {"ProductionVariants": props["ProductionVariants"], "KmsKeyId": props.get("KmsKeyId"),
                "DataCaptureConfig": props.get("DataCaptureConfig"), "Tags": tag_dict(props.get("Tags"))}

    def diff(self, props: dict[str, Any], live: Live) -> list[str]:
        # The service adds defaults to each variant: compare only what the stack sets.
        wanted = props["ProductionVariants"]
        have = live.state["ProductionVariants"]
        projected = [{k: v.get(k) for k in w} for w, v in zip(wanted, have, strict=False)] if len(have) == len(wanted) else have
        return super().diff(props, Live(live.type, live.name, live.key, {**live.state, "ProductionVariants": projected}))

    def read(self, ctx: DriverContext, props: dict[str, Any]) -> Live | None:
        return self.read_named(ctx, props["EndpointConfigName"])

    def read_named(self, ctx: DriverContext, name: str) -> Live | None:
        sm = ctx.client("sagemaker")
        try:
            config = sm.describe_endpoint_config(EndpointConfigName=name)
        except sm.exceptions.ClientError as exc:
            if _not_found(exc):
                return None
            raise
        tags = _tags(sm, config["EndpointConfigArn"])
        state = {"ProductionVariants": config.get("ProductionVariants", []), "KmsKeyId": config.get("KmsKeyId"),
                 "DataCaptureConfig": config.get("DataCaptureConfig") or None, "Tags": tag_dict(tags)}
        return Live(self.type, name, {"EndpointConfigName": name}, state, owner_of(tags),
                    {"Arn": config["EndpointConfigArn"]})

    def create(self, ctx: DriverContext, props: dict[str, Any]) -> Live:
        sm = ctx.client("sagemaker")
        answer = sm.create_endpoint_config(**props)
        name = props["EndpointConfigName"]
        live = Live(self.type, name, {"EndpointConfigName": name}, owner=ctx.stack_name,
                    outputs={"Arn": answer["EndpointConfigArn"]})
        ctx.created(live)
        return live

    def update(self, ctx: DriverContext, props: dict[str, Any], live: Live, details: list[str]) -> None:
        _retag(ctx.client("sagemaker"), live.outputs["Arn"], tag_dict(props.get("Tags")), live.state["Tags"])
        return None

    def delete(self, ctx: DriverContext, live: Live) -> None:
        sm = ctx.client("sagemaker")
        try:
            sm.delete_endpoint_config(EndpointConfigName=live.key["EndpointConfigName"])
        except sm.exceptions.ClientError as exc:
            if not _not_found(exc):
                raise

    def predecessor(self, ctx: DriverContext, props: dict[str, Any]) -> Live | None:
        config_name = live_endpoint_config_name(ctx)
        if config_name and config_name != props["EndpointConfigName"]:
            config = self.read_named(ctx, config_name)
            if config and config.owner == ctx.stack_name:
                return config
        return None

    def discover(self, ctx: DriverContext) -> list[Live]:
        sm = ctx.client("sagemaker")
        found = []
        prefix = f"{ctx.stack_name}-config-"
        for item in _list(sm, "list_endpoint_configs", "EndpointConfigs", NameContains=prefix):
            if not item["EndpointConfigName"].startswith(prefix):
                continue
            live = self.read_named(ctx, item["EndpointConfigName"])
            if live and live.owner == ctx.stack_name:
                found.append(live)
        return found


class EndpointDriver(Driver):
    type = "AWS::SageMaker::Endpoint"

    def describe(self, props: dict[str, Any]) -> str:
        return f"config {props['EndpointConfigName']}"

    def reconfigures_endpoint(self, details: list[str]) -> bool:
        return "EndpointConfigName" in details

    def desired_state(self, props: dict[str, Any]) -> dict[str, Any]:
        return {"EndpointConfigName": props["EndpointConfigName"], "Tags": tag_dict(props.get("Tags"))}

    def diff(self, props: dict[str, Any], live: Live) -> list[str]:
        details = super().diff(props, live)
        if live.state.get("EndpointStatus") == "Failed":
            details.append("EndpointStatus")
        return details

    replace_on = frozenset({"EndpointStatus"})

    def read(self, ctx: DriverContext, props: dict[str, Any]) -> Live | None:
        return self.read_named(ctx, props["EndpointName"])

    def read_named(self, ctx: DriverContext, name: str) -> Live | None:
        sm = ctx.client("sagemaker")
        try:
            endpoint = sm.describe_endpoint(EndpointName=name)
        except sm.exceptions.ClientError as exc:
            if _not_found(exc):
                return None
            raise
        tags = _tags(sm, endpoint["EndpointArn"])
        state = {"EndpointConfigName": endpoint["EndpointConfigName"], "Tags": tag_dict(tags),
                 "EndpointStatus": endpoint["EndpointStatus"],
                 "Variants": [v["VariantName"] for v in endpoint.get("ProductionVariants", [])]}
        return Live(self.type, name, {"EndpointName": name}, state, owner_of(tags), {"Arn": endpoint["EndpointArn"]})

    def _wait_in_service(self, ctx: DriverContext, name: str) -> None:
        sm = ctx.client("sagemaker")

        def in_service() -> bool:
            status = sm.describe_endpoint(EndpointName=name)
            if status["EndpointStatus"] == "Failed":
                from runner.core.errors import UserError

                raise UserError(f"endpoint {name} failed: {status.get('FailureReason', 'no reason given')}")
            return status["EndpointStatus"] == "InService"

        ctx.wait(f"endpoint {name} to be InService", in_service, ENDPOINT_DELAY_S)

    def create(self, ctx: DriverContext, props: dict[str, Any]) -> Live:
        sm = ctx.client("sagemaker")
        answer = sm.create_endpoint(**props)
        name = props["EndpointName"]
        live = Live(self.type, name, {"EndpointName": name}, owner=ctx.stack_name, outputs={"Arn": answer["EndpointArn"]})
        ctx.created(live)
        self._wait_in_service(ctx, name)
        return live

    def update(self, ctx: DriverContext, props: dict[str, Any], live: Live, details: list[str]) -> None:
        sm = ctx.client("sagemaker")
        name = props["EndpointName"]
        if "EndpointConfigName" in details:
            # AWS refuses to change a variant that has autoscaling registered: deregister first
            # (a rollback registers it again as it was); the plan registers it after the update.
            deregister_autoscaling(ctx, name, live.state.get("Variants", []))
            previous = live.state["EndpointConfigName"]
            ctx.moved(f"endpoint {name} on config {previous}", lambda: self._restore_config(ctx, name, previous))
            sm.update_endpoint(EndpointName=name, EndpointConfigName=props["EndpointConfigName"])
            self._wait_in_service(ctx, name)

        if "Tags" in details:
            _retag(sm, live.outputs["Arn"], tag_dict(props.get("Tags")), live.state["Tags"])

    def _restore_config(self, ctx: DriverContext, name: str, previous: str) -> None:
        """Put the endpoint back on ``previous``, once an update in flight has ended (SageMaker
        refuses an UpdateEndpoint while the endpoint is Updating)."""
        sm = ctx.client("sagemaker")
        ctx.wait(f"endpoint {name} to finish updating",
                 lambda: sm.describe_endpoint(EndpointName=name)["EndpointStatus"] in _SETTLED, ENDPOINT_DELAY_S)
        if sm.describe_endpoint(EndpointName=name)["EndpointConfigName"] != previous:
            sm.update_endpoint(EndpointName=name, EndpointConfigName=previous)
            self._wait_in_service(ctx, name)

    def delete(self, ctx: DriverContext, live: Live) -> None:
        sm = ctx.client("sagemaker")
        name = live.key["EndpointName"]
        try:
            sm.delete_endpoint(EndpointName=name)
        except sm.exceptions.ClientError as exc:
            if _not_found(exc):
                return
            raise

        ctx.wait(f"endpoint {name} to be deleted", lambda: self.read_named(ctx, name) is None, ENDPOINT_DELAY_S)

    def discover(self, ctx: DriverContext) -> list[Live]:
        live = self.read_named(ctx, ctx.names.endpoint_name)
        return [live] if live and live.owner == ctx.stack_name else []


def deregister_autoscaling(ctx: DriverContext, endpoint_name: str, variants: list[str]) -> None:
    """Remove each variant's scaling policies and scalable target, each recorded (``ctx.moved``)
    with the registration it had, so a rollback restores the endpoint's autoscaling as it was."""
    aas = ctx.client("application-autoscaling")
    for variant in variants:
        key = {"ServiceNamespace": "sagemaker", "ResourceId": f"endpoint/{endpoint_name}/variant/{variant}",
               "ScalableDimension": SCALABLE_DIMENSION}
        targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[key["ResourceId"]],
                                                ScalableDimension=SCALABLE_DIMENSION)["ScalableTargets"]
        if not targets:
            continue
        policies = aas.describe_scaling_policies(**key)["ScalingPolicies"]
        for policy in policies:
            wanted = {k: policy[k] for k in ("PolicyName", "PolicyType", "TargetTrackingScalingPolicyConfiguration",
                                             "StepScalingPolicyConfiguration") if k in policy}
            ctx.moved(f"scaling policy {policy['PolicyName']} of {key['ResourceId']}",
                      partial(_restore_policy, aas, key, wanted))
            aas.delete_scaling_policy(PolicyName=policy["PolicyName"], **key)
        registered = {"MinCapacity": targets[0]["MinCapacity"], "MaxCapacity": targets[0]["MaxCapacity"]}
        ctx.moved(f"scalable target {key['ResourceId']} ({registered['MinCapacity']}..{registered['MaxCapacity']})",
                  partial(_restore_target, aas, key, registered))
        aas.deregister_scalable_target(**key)


def _restore_target(aas: Any, key: dict[str, str], registered: dict[str, int]) -> None:
    if not aas.describe_scalable_targets(ServiceNamespace=key["ServiceNamespace"], ResourceIds=[key["ResourceId"]],
                                         ScalableDimension=key["ScalableDimension"])["ScalableTargets"]:
        aas.register_scalable_target(**key, **registered)


def _restore_policy(aas: Any, key: dict[str, str], policy: dict[str, Any]) -> None:
    if not aas.describe_scaling_policies(PolicyNames=[policy["PolicyName"]], **key)["ScalingPolicies"]:
        aas.put_scaling_policy(**key, **policy)


class NotebookInstanceDriver(Driver):
    type = "AWS::SageMaker::NotebookInstance"
    replace_on = frozenset({"InstanceType", "RoleArn", "VolumeSizeInGB", "DirectInternetAccess", "RootAccess",
                            "KmsKeyId"})

    def describe(self, props: dict[str, Any]) -> str:
        return (f"{props['InstanceType']}, root {props['RootAccess']}, internet {props['DirectInternetAccess']}, "
                f"KMS {props.get('KmsKeyId', 'none')}")

    def desired_state(self, props: dict[str, Any]) -> dict[str, Any]:
        keys = ("InstanceType", "RoleArn", "VolumeSizeInGB", "DirectInternetAccess", "RootAccess", "KmsKeyId")
        return {k: props.get(k) for k in keys} | {"Tags": tag_dict(props.get("Tags"))}

    def read(self, ctx: DriverContext, props: dict[str, Any]) -> Live | None:
        return self.read_named(ctx, props["NotebookInstanceName"])

    def read_named(self, ctx: DriverContext, name: str) -> Live | None:
        sm = ctx.client("sagemaker")
        try:
            notebook = sm.describe_notebook_instance(NotebookInstanceName=name)
        except sm.exceptions.ClientError as exc:
            if _not_found(exc) or "recordnotfound" in str(exc).lower():
                return None
            raise
        tags = _tags(sm, notebook["NotebookInstanceArn"])
        keys = ("InstanceType", "RoleArn", "VolumeSizeInGB", "DirectInternetAccess", "RootAccess", "KmsKeyId")
        state = {k: notebook.get(k) for k in keys} | {"Tags": tag_dict(tags),
                                                      "Status": notebook["NotebookInstanceStatus"]}
        return Live(self.type, name, {"NotebookInstanceName": name}, state, owner_of(tags),
                    {"Arn": notebook["NotebookInstanceArn"]})

    def create(self, ctx: DriverContext, props: dict[str, Any]) -> Live:
        sm = ctx.client("sagemaker")
        name = props["NotebookInstanceName"]
        answer = retry_while_propagating(ctx, f"notebook {name}", lambda: sm.create_notebook_instance(**props),
                                         role_arn=props.get("RoleArn"))
        live = Live(self.type, name, {"NotebookInstanceName": name}, owner=ctx.stack_name,
                    outputs={"Arn": answer["NotebookInstanceArn"]})
        ctx.created(live)
        ctx.wait(f"notebook {name} to be InService",
                 lambda: sm.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"] == "InService",
                 ENDPOINT_DELAY_S)
        return live

    def update(self, ctx: DriverContext, props: dict[str, Any], live: Live, details: list[str]) -> None:
        _retag(ctx.client("sagemaker"), live.outputs["Arn"], tag_dict(props.get("Tags")), live.state["Tags"])
        return None

    def delete(self, ctx: DriverContext, live: Live) -> None:
        sm = ctx.client("sagemaker")
        name = live.key["NotebookInstanceName"]
        current = self.read_named(ctx, name)
        if current is None:
            return
        if current.state["Status"] in ("InService", "Pending", "Updating"):
            sm.stop_notebook_instance(NotebookInstanceName=name)
        ctx.wait(f"notebook {name} to stop",
                 lambda: (self.read_named(ctx, name) or live).state.get("Status") in ("Stopped", "Failed", None),
                 ENDPOINT_DELAY_S)
        sm.delete_notebook_instance(NotebookInstanceName=name)
        ctx.wait(f"notebook {name} to be deleted", lambda: self.read_named(ctx, name) is None, ENDPOINT_DELAY_S)

    def discover(self, ctx: DriverContext) -> list[Live]:
        live = self.read_named(ctx, ctx.names.notebook_name)
        return [live] if live and live.owner == ctx.stack_name else []
