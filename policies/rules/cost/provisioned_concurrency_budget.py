"""SG-COST-005: the monthly cost of the function's provisioned concurrency within budget."""

from __future__ import annotations

from policies.rules.base import Context, ResourceRule
from policies.rules.cost._budget import over_budget
from runner.stack.model import Resource


class ProvisionedConcurrencyBudget(ResourceRule):
    id = "SG-COST-005"
    severity = "high"
    title = "Provisioned concurrency monthly cost over budget"
    config_key = "function.provisioned_concurrency"
    remediation = "Lower function.provisioned_concurrency or function.memory_size."
    resource_type = "AWS::Lambda::Alias"

    def problem(self, ctx: Context, resource: Resource) -> str | None:
        f = ctx.settings.function
        what = f"provisioned concurrency ({f.provisioned_concurrency} x {f.memory_size} MB) monthly cost"
        return over_budget(what, ctx.costs.provisioned_concurrency_monthly,
                           ctx.settings.policy.budgets_usd.provisioned_concurrency_monthly,
                           "provisioned_concurrency_monthly")
