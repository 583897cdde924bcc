"""SG-COST-002: the endpoint's monthly cost at max capacity (the cost model's bound) within budget."""

from __future__ import annotations

from collections.abc import Iterator

from policies.rules.base import Context, Outcome, Rule
from policies.rules.cost._budget import over_budget
from runner.core.variants import production_variants


class EndpointBudget(Rule):
    id = "SG-COST-002"
    severity = "high"
    title = "Endpoint monthly cost at max capacity over budget"
    config_key = "autoscaling.max_capacity"
    remediation = ("Lower autoscaling.max_capacity or pick a cheaper instance type in endpoint.variants, or raise "
                   "policy.budgets_usd.endpoint_monthly through review.")

    def check(self, ctx: Context) -> Iterator[Outcome]:
        s = ctx.settings
        key = "endpoint.serverless_max_concurrency" if s.endpoint.kind == "serverless" else (
            "autoscaling.max_capacity" if s.autoscaling.enabled else "endpoint.variants")
        what = "endpoint monthly cost at max capacity"
        if s.endpoint.kind != "serverless":
            what += " (" + " + ".join(f"{v.max_capacity} x {v.instance_type}" for v in production_variants(s)) + ")"
        problem = over_budget(what, ctx.costs.endpoint_monthly_max, s.policy.budgets_usd.endpoint_monthly,
                              "endpoint_monthly")
        yield self.outcome("Endpoint", problem, config_key=key)
