"""SG-COST-003: a training job's cost bound (instances x count x max runtime) within budget."""

from __future__ import annotations

from policies.rules.base import Context, JobRule
from policies.rules.cost._budget import over_budget
from runner.stack.model import JobSpec


class TrainingBudget(JobRule):
    id = "SG-COST-003"
    severity = "high"
    title = "Training job cost bound over budget"
    config_key = "training.max_runtime"
    remediation = "Lower training.max_runtime or training.instance_count, or pick a cheaper instance type."
    job_kinds = ("training_job", "ec2_run")  # a tuning job's bound is SG-COST-004's

    def problem(self, ctx: Context, job: JobSpec) -> str | None:
        c, t = ctx.costs, ctx.settings.training
        spot = f"; spot about ${c.training_job_spot:,.2f}" if c.training_job_spot is not None else ""
        what = f"training job bound ({t.instance_count} x {t.instance_type} x {t.max_runtime} s max runtime{spot})"
        return over_budget(what, c.training_job, ctx.settings.policy.budgets_usd.training_job, "training_job")
