"""SG-HARD-004: no direct internet access from the notebook (CloudFormation's default is Enabled)."""

from __future__ import annotations

from policies.rules.base import Context, ResourceRule
from runner.stack.model import Resource


class NotebookInternet(ResourceRule):
    id = "SG-HARD-004"
    severity = "high"
    title = "Notebook with direct internet access"
    config_key = "notebook.direct_internet_access"
    remediation = "Set notebook.direct_internet_access=Disabled and reach the internet through the VPC, if at all."
    resource_type = "AWS::SageMaker::NotebookInstance"

    def problem(self, ctx: Context, resource: Resource) -> str | None:
        # Only an explicit Disabled passes.
        value = resource.properties.get("DirectInternetAccess", "Enabled")
        if value == "Disabled":
            return None
        return (f"DirectInternetAccess is {value}: the notebook reaches (and is reachable from) the internet "
                "outside any VPC control")
