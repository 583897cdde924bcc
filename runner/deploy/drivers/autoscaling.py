"""AWS::ApplicationAutoScaling::ScalableTarget and ::ScalingPolicy for the endpoint's variant.

Neither carries tags here: both belong to the stack through the endpoint they scale, whose
ownership is checked first (it comes earlier in dependency order).
"""

from __future__ import annotations

from typing import Any

from runner.deploy.drivers.base import Driver, DriverContext, Live
from runner.deploy.drivers.sagemaker import EndpointDriver
from runner.stack.autoscaling import SCALABLE_DIMENSION


def _key(props: dict[str, Any]) -> dict[str, str]:
    return {"ServiceNamespace": props["ServiceNamespace"], "ResourceId": props["ResourceId"],
            "ScalableDimension": props["ScalableDimension"]}


class ScalableTargetDriver(Driver):
    type = "AWS::ApplicationAutoScaling::ScalableTarget"
    tagged = False
    reregistered_on_endpoint_update = True

    def describe(self, props: dict[str, Any]) -> str:
        return f"{props['ResourceId']}\ncapacity {props['MinCapacity']}..{props['MaxCapacity']}"

    def name(self, props: dict[str, Any]) -> str:
        return str(props["ResourceId"])

    def desired_state(self, props: dict[str, Any]) -> dict[str, Any]:
        return {"MinCapacity": props["MinCapacity"], "MaxCapacity": props["MaxCapacity"]}

    def read(self, ctx: DriverContext, props: dict[str, Any]) -> Live | None:
        aas = ctx.client("application-autoscaling")
        key = _key(props)
        targets = aas.describe_scalable_targets(ServiceNamespace=key["ServiceNamespace"], ResourceIds=[key["ResourceId"]],
                                                ScalableDimension=key["ScalableDimension"])["ScalableTargets"]
        if not targets:
            return None
        target = targets[0]
        return Live(self.type, key["ResourceId"], key,
                    {"MinCapacity": target["MinCapacity"], "MaxCapacity": target["MaxCapacity"]})

    def create(self, ctx: DriverContext, props: dict[str, Any]) -> Live:
        ctx.client("application-autoscaling").register_scalable_target(**props)
        live = Live(self.type, props["ResourceId"], _key(props))
        ctx.created(live)
        return live

    def update(self, ctx: DriverContext, props: dict[str, Any], live: Live, details: list[str]) -> None:
        # RegisterScalableTarget on a registered target updates it in place.
        ctx.client("application-autoscaling").register_scalable_target(**props)
        return None

    def delete(self, ctx: DriverContext, live: Live) -> None:
        aas = ctx.client("application-autoscaling")
        key = live.key
        # AWS deletes a target's policies with it; moto does not: delete them first on both.
        for policy in aas.describe_scaling_policies(ServiceNamespace=key["ServiceNamespace"],
                                                    ResourceId=key["ResourceId"],
                                                    ScalableDimension=key["ScalableDimension"])["ScalingPolicies"]:
            aas.delete_scaling_policy(PolicyName=policy["PolicyName"], **key)
        if aas.describe_scalable_targets(ServiceNamespace=key["ServiceNamespace"], ResourceIds=[key["ResourceId"]],
                                         ScalableDimension=key["ScalableDimension"])["ScalableTargets"]:
            aas.deregister_scalable_target(**key)

    def discover(self, ctx: DriverContext) -> list[Live]:
        endpoint = EndpointDriver().read_named(ctx, ctx.names.endpoint_name)
        if endpoint is not None and endpoint.owner != ctx.stack_name:
            return []  # scaling of someone else's endpoint of the same name: not ours
        aas = ctx.client("application-autoscaling")
        prefix = f"endpoint/{ctx.names.endpoint_name}/variant/"
        found = []
        for page in aas.get_paginator("describe_scalable_targets").paginate(ServiceNamespace="sagemaker"):
            for target in page["ScalableTargets"]:
                if target["ResourceId"].startswith(prefix) and target["ScalableDimension"] == SCALABLE_DIMENSION:
                    key = {"ServiceNamespace": "sagemaker", "ResourceId": target["ResourceId"],
                           "ScalableDimension": SCALABLE_DIMENSION}
                    found.append(Live(self.type, target["ResourceId"], key))
        return found


class ScalingPolicyDriver(Driver):
    type = "AWS::ApplicationAutoScaling::ScalingPolicy"
    tagged = False
    reregistered_on_endpoint_update = True
    replace_on = frozenset({"PolicyType"})

    def describe(self, props: dict[str, Any]) -> str:
        c = props["TargetTrackingScalingPolicyConfiguration"]
        return (f"target {c['TargetValue']:g} {c['PredefinedMetricSpecification']['PredefinedMetricType']}\n"
                f"cooldowns in {c['ScaleInCooldown']} s / out {c['ScaleOutCooldown']} s")

    def desired_state(self, props: dict[str, Any]) -> dict[str, Any]:
        return {"PolicyType": props["PolicyType"],
                "TargetTrackingScalingPolicyConfiguration": props.get("TargetTrackingScalingPolicyConfiguration")}

    def read(self, ctx: DriverContext, props: dict[str, Any]) -> Live | None:
        aas = ctx.client("application-autoscaling")
        key = _key(props)
        policies = aas.describe_scaling_policies(PolicyNames=[props["PolicyName"]], **key)["ScalingPolicies"]
        if not policies:
            return None
        policy = policies[0]
        state = {"PolicyType": policy["PolicyType"],
                 "TargetTrackingScalingPolicyConfiguration": policy.get("TargetTrackingScalingPolicyConfiguration")}
        return Live(self.type, props["PolicyName"], {"PolicyName": props["PolicyName"], **key}, state,
                    outputs={"Arn": policy["PolicyARN"]})

    def create(self, ctx: DriverContext, props: dict[str, Any]) -> Live:
        answer = ctx.client("application-autoscaling").put_scaling_policy(**props)
        live = Live(self.type, props["PolicyName"], {"PolicyName": props["PolicyName"], **_key(props)},
                    outputs={"Arn": answer["PolicyARN"]})
        ctx.created(live)
        return live

    def update(self, ctx: DriverContext, props: dict[str, Any], live: Live, details: list[str]) -> None:
        ctx.client("application-autoscaling").put_scaling_policy(**props)
        return None

    def delete(self, ctx: DriverContext, live: Live) -> None:
        aas = ctx.client("application-autoscaling")
        key = {k: live.key[k] for k in ("ServiceNamespace", "ResourceId", "ScalableDimension")}
        if aas.describe_scaling_policies(PolicyNames=[live.key["PolicyName"]], **key)["ScalingPolicies"]:
            aas.delete_scaling_policy(PolicyName=live.key["PolicyName"], **key)
