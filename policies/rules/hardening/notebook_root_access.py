"""SG-HARD-005: no root access for notebook users (CloudFormation's default is Enabled)."""

from __future__ import annotations

from policies.rules.base import Context, ResourceRule
from runner.stack.model import Resource


class NotebookRootAccess(ResourceRule):
    id = "SG-HARD-005"
    severity = "medium"
    title = "Notebook with root access"
    config_key = "notebook.root_access"
    remediation = "Set notebook.root_access=Disabled; install packages through lifecycle configurations."
    resource_type = "AWS::SageMaker::NotebookInstance"

    def problem(self, ctx: Context, resource: Resource) -> str | None:
        value = resource.properties.get("RootAccess", "Enabled")
        if value == "Disabled":
            return None
        return (f"RootAccess is {value}: notebook users can change the instance, its credentials handling and "
                "installed software")
