"""SG-SAN-002: provisioned concurrency lives on an alias of a published version, never on $LATEST."""

from __future__ import annotations

from policies.rules.base import Context, ResourceRule
from runner.stack.model import Resource


class ProvisionedConcurrencyAlias(ResourceRule):
    id = "SG-SAN-002"
    severity = "high"
    title = "Provisioned concurrency without an alias"
    config_key = "function.provisioned_concurrency"
    remediation = ("Configure provisioned concurrency on the function's alias (function.alias) that points at a "
                   "published version.")
    resource_type = "AWS::Lambda::Function"

    def problem(self, ctx: Context, resource: Resource) -> str | None:
        wanted = ctx.settings.function.provisioned_concurrency
        name = resource.properties.get("FunctionName")
        aliases = [a for a in ctx.stack.find("AWS::Lambda::Alias") if a.properties.get("FunctionName") == name]
        configured = [a for a in aliases if a.properties.get("ProvisionedConcurrencyConfig")]
        problems = []
        if wanted > 0 and not configured:
            problems.append(f"function.provisioned_concurrency={wanted} but no alias of {name} carries a "
                            "ProvisionedConcurrencyConfig (provisioned concurrency lives on an alias or version)")
        for alias in configured:
            if alias.properties.get("FunctionVersion") in ("$LATEST", None):
                problems.append(f"alias {alias.properties.get('Name')} points at $LATEST, which cannot "
                                "have provisioned concurrency")
        return "; ".join(problems) or None
