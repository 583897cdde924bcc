"""Application Auto Scaling for each instance-backed production variant: a target and a policy.

Target tracking on SageMakerVariantInvocationsPerInstance, as the 2023 project configured it;
every variant scales on its own (its own capacity bounds), with the shared target and cooldowns.
"""

from __future__ import annotations

from runner.core.variants import production_variants
from runner.stack.model import Resource
from runner.stack.parts import StackParts

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def build_autoscaling(parts: StackParts) -> list[Resource]:
    settings, names = parts.settings, parts.names
    a, e = settings.autoscaling, settings.endpoint
    if not a.enabled or e.kind == "serverless":
        return []
    variants = production_variants(settings)
    resources: list[Resource] = []
    single = len(variants) == 1
    for variant in variants:
        # Logical ids are alphanumeric: "AllTraffic" -> ScalableTargetAllTraffic, "blue-2" -> ...Blue2.
        suffix = "" if single else "".join(part[:1].upper() + part[1:] for part in variant.name.split("-"))
        resource_id = f"endpoint/{names.endpoint_name}/variant/{variant.name}"
        target_id, policy_id = f"ScalableTarget{suffix}", f"ScalingPolicy{suffix}"
        resources.append(Resource(target_id, "AWS::ApplicationAutoScaling::ScalableTarget", {
            "ServiceNamespace": "sagemaker",
            "ResourceId": resource_id,
            "ScalableDimension": SCALABLE_DIMENSION,
            "MinCapacity": variant.min_capacity,
            "MaxCapacity": variant.max_capacity,
        }, depends_on=["Endpoint"], config_key="autoscaling"))
        resources.append(Resource(policy_id, "AWS::ApplicationAutoScaling::ScalingPolicy", {
            "PolicyName": f"{settings.name}-invocations-target" + ("" if single else f"-{variant.name}"),
            "PolicyType": "TargetTrackingScaling",
            "ServiceNamespace": "sagemaker",
            "ResourceId": resource_id,
            "ScalableDimension": SCALABLE_DIMENSION,
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": a.target_value,
                "PredefinedMetricSpecification": {"PredefinedMetricType": a.metric},
                "ScaleInCooldown": a.scale_in_cooldown,
                "ScaleOutCooldown": a.scale_out_cooldown,
            },
        }, depends_on=[target_id], config_key="autoscaling"))
    return resources
