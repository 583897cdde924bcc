"""SG-SAN-001: autoscaling configured for a serverless endpoint, where it has no effect."""

from __future__ import annotations

from policies.rules.base import Context, ResourceRule
from runner.stack.model import Resource


class AutoscalingOnServerless(ResourceRule):
    id = "SG-SAN-001"
    severity = "medium"
    title = "Autoscaling configured on a serverless endpoint"
    config_key = "autoscaling.enabled"
    remediation = ("Use autoscaling=none with endpoint=serverless; bound capacity with "
                   "endpoint.serverless_max_concurrency.")
    resource_type = "AWS::SageMaker::EndpointConfig"

    def problem(self, ctx: Context, resource: Resource) -> str | None:
        serverless = any("ServerlessConfig" in v for v in resource.properties.get("ProductionVariants", []))
        if serverless and ctx.settings.autoscaling.enabled:
            return ("autoscaling is enabled but the endpoint is serverless: Application Auto Scaling does not "
                    "apply, the setting has no effect (capacity is endpoint.serverless_max_concurrency)")
        return None
