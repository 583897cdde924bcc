"""SG-COST-006: the notebook's monthly cost within budget."""

from __future__ import annotations

from policies.rules.base import Context, ResourceRule
from policies.rules.cost._budget import over_budget
from runner.stack.model import Resource


class NotebookBudget(ResourceRule):
    id = "SG-COST-006"
    severity = "high"
    title = "Notebook monthly cost over budget"
    config_key = "notebook.instance_type"
    remediation = "Pick a smaller notebook.instance_type, or disable the notebook (notebook=none)."
    resource_type = "AWS::SageMaker::NotebookInstance"

    def problem(self, ctx: Context, resource: Resource) -> str | None:
        return over_budget("notebook monthly cost", ctx.costs.notebook_monthly,
                           ctx.settings.policy.budgets_usd.notebook_monthly, "notebook_monthly")
