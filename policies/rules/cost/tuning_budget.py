"""SG-COST-004: a tuning job's cost bound (max jobs x one training job's bound) within budget."""

from __future__ import annotations

from policies.rules.base import Context, JobRule
from policies.rules.cost._budget import over_budget
from runner.stack.model import JobSpec


class TuningBudget(JobRule):
    id = "SG-COST-004"
    severity = "high"
    title = "Tuning job cost bound over budget"
    config_key = "hpo.max_jobs"
    remediation = "Lower hpo.max_jobs or the training job's cost bound (instance type, count, max runtime)."
    job_kinds = ("tuning_job",)

    def problem(self, ctx: Context, job: JobSpec) -> str | None:
        c = ctx.costs
        what = f"tuning job bound ({ctx.settings.hpo.max_jobs} jobs x ${c.training_job:,.2f} each)"
        return over_budget(what, c.tuning_job, ctx.settings.policy.budgets_usd.tuning_job, "tuning_job")
