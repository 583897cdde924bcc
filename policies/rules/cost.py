"""Cost: instance allow-lists per use, budgets from the cost model, runaway-job guards.

The hosting and notebook allow-lists also have a template-level twin, the custom checkov check
CKV_SG_002 (policies/checkov/checks/), for teams that run checkov on an exported template; the
gate folds the twin into this rule's finding when both fire.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from policies.rules import Context, Outcome, Rule, job_definition
from runner.stack.model import JobSpec


def _remote_jobs(ctx: Context) -> list[JobSpec]:
    return [j for j in ctx.stack.jobs if j.kind in ("training_job", "tuning_job", "ec2_run")]


def _allowed(resource: str, key: str, use: str, instance_type: object, allow: list[str]) -> Outcome:
    if instance_type in allow:
        return Outcome(resource, key)
    return Outcome(resource, key, f"{use} instance type {instance_type} is not in "
                   f"policy.allowed_instance_types.{use} ({', '.join(allow) or 'empty'})")


def instance_allow_list(ctx: Context) -> Iterable[Outcome]:
    allowed = ctx.settings.policy.allowed_instance_types
    for config in ctx.stack.find("AWS::SageMaker::EndpointConfig"):
        # Every variant, not just one of them.
        sized = [v for v in config.properties.get("ProductionVariants", []) if "ServerlessConfig" not in v]
        outside = [str(v.get("InstanceType")) for v in sized if v.get("InstanceType") not in allowed.hosting]
        if outside:
            yield _allowed(config.logical_id, "endpoint.instance_type", "hosting", ", ".join(outside),
                           allowed.hosting)
        else:
            yield Outcome(config.logical_id, "endpoint.instance_type")
    for notebook in ctx.stack.find("AWS::SageMaker::NotebookInstance"):
        yield _allowed(notebook.logical_id, "notebook.instance_type", "notebook",
                       notebook.properties.get("InstanceType"), allowed.notebook)
    for job in _remote_jobs(ctx):
        if job.kind == "ec2_run":
            yield _allowed(job.logical_id, "training.instance_type", "ec2", job.request.get("InstanceType"),
                           allowed.ec2)
        else:
            instance_type = job_definition(job).get("ResourceConfig", {}).get("InstanceType")
            yield _allowed(job.logical_id, "training.instance_type", "training", instance_type, allowed.training)


def _budget(resource: str, key: str, what: str, amount: float, budget: float, budget_key: str) -> Outcome:
    if amount <= budget:
        return Outcome(resource, key)
    return Outcome(resource, key, f"{what} ${amount:,.2f} exceeds policy.budgets_usd.{budget_key} (${budget:,.2f})")


def endpoint_budget(ctx: Context) -> Iterable[Outcome]:
    c, b, s = ctx.costs, ctx.settings.policy.budgets_usd, ctx.settings
    key = "endpoint.serverless_max_concurrency" if s.endpoint.kind == "serverless" else (
        "autoscaling.max_capacity" if s.autoscaling.enabled else "endpoint.initial_instance_count")
    what = "endpoint monthly cost at max capacity"
    if s.endpoint.kind != "serverless":
        count = s.autoscaling.max_capacity if s.autoscaling.enabled else s.endpoint.initial_instance_count
        what += f" ({count} x {s.endpoint.instance_type})"
    yield _budget("Endpoint", key, what, c.endpoint_monthly_max, b.endpoint_monthly, "endpoint_monthly")


def training_budget(ctx: Context) -> Iterable[Outcome]:
    c, b, t = ctx.costs, ctx.settings.policy.budgets_usd, ctx.settings.training
    for job in _remote_jobs(ctx):
        if job.kind == "tuning_job":
            continue
        what = (f"training job bound ({t.instance_count} x {t.instance_type} x {t.max_runtime} s max runtime"
                + (f"; spot about ${c.training_job_spot:,.2f}" if c.training_job_spot is not None else "") + ")")
        yield _budget(job.logical_id, "training.max_runtime", what, c.training_job, b.training_job, "training_job")


def tuning_budget(ctx: Context) -> Iterable[Outcome]:
    c, b, h = ctx.costs, ctx.settings.policy.budgets_usd, ctx.settings.hpo
    for job in ctx.stack.jobs:
        if job.kind == "tuning_job":
            what = f"tuning job bound ({h.max_jobs} jobs x ${c.training_job:,.2f} each)"
            yield _budget(job.logical_id, "hpo.max_jobs", what, c.tuning_job, b.tuning_job, "tuning_job")


def provisioned_concurrency_budget(ctx: Context) -> Iterable[Outcome]:
    c, b, f = ctx.costs, ctx.settings.policy.budgets_usd, ctx.settings.function
    for alias in ctx.stack.find("AWS::Lambda::Alias"):
        what = f"provisioned concurrency ({f.provisioned_concurrency} x {f.memory_size} MB) monthly cost"
        yield _budget(alias.logical_id, "function.provisioned_concurrency", what,
                      c.provisioned_concurrency_monthly, b.provisioned_concurrency_monthly,
                      "provisioned_concurrency_monthly")


def notebook_budget(ctx: Context) -> Iterable[Outcome]:
    c, b = ctx.costs, ctx.settings.policy.budgets_usd
    for notebook in ctx.stack.find("AWS::SageMaker::NotebookInstance"):
        yield _budget(notebook.logical_id, "notebook.instance_type", "notebook monthly cost",
                      c.notebook_monthly, b.notebook_monthly, "notebook_monthly")


def spot_without_checkpoints(ctx: Context) -> Iterable[Outcome]:
    for job in ctx.stack.jobs:
        if job.kind not in ("training_job", "tuning_job"):
            continue
        definition = job_definition(job)
        if not definition.get("EnableManagedSpotTraining"):
            yield Outcome(job.logical_id, "training.use_spot")
        elif not definition.get("CheckpointConfig", {}).get("S3Uri"):
            yield Outcome(job.logical_id, "training.checkpointing",
                          "managed spot training without a CheckpointConfig: every interruption restarts from epoch 1")
        else:
            yield Outcome(job.logical_id, "training.checkpointing")


_SHUTDOWN_TIMER = re.compile(r"^\s*shutdown\s+-h\s+\+\d+", re.MULTILINE)


def max_runtime(ctx: Context) -> Iterable[Outcome]:
    for job in ctx.stack.jobs:
        if job.kind in ("training_job", "tuning_job"):
            definition = job_definition(job)
            stopping = definition.get("StoppingCondition", {})
            problems = []
            if not stopping.get("MaxRuntimeInSeconds"):
                problems.append("no StoppingCondition.MaxRuntimeInSeconds")
            if definition.get("EnableManagedSpotTraining") and not stopping.get("MaxWaitTimeInSeconds"):
                problems.append("managed spot without StoppingCondition.MaxWaitTimeInSeconds")
            yield Outcome(job.logical_id, "training.max_runtime", "; ".join(problems) or None)
        elif job.kind == "ec2_run":
            problems = []
            if not _SHUTDOWN_TIMER.search(job.request.get("UserData", "")):
                problems.append("user data sets no 'shutdown -h +N' timer")
            if job.request.get("InstanceInitiatedShutdownBehavior") != "terminate":
                problems.append("InstanceInitiatedShutdownBehavior is not 'terminate' (a stopped instance keeps its volume)")
            yield Outcome(job.logical_id, "training.max_runtime", "; ".join(problems) or None)


RULES = (
    Rule("SG-COST-001", "high", "Instance type outside the allow-list for its use", "endpoint.instance_type",
         "Pick an instance type from policy.allowed_instance_types (hosting, training, notebook or ec2), or "
         "extend the list in the policy config through review.", instance_allow_list),
    Rule("SG-COST-002", "high", "Endpoint monthly cost at max capacity over budget", "autoscaling.max_capacity",
         "Lower autoscaling.max_capacity or pick a cheaper endpoint.instance_type, or raise "
         "policy.budgets_usd.endpoint_monthly through review.", endpoint_budget),
    Rule("SG-COST-003", "high", "Training job cost bound over budget", "training.max_runtime",
         "Lower training.max_runtime or training.instance_count, or pick a cheaper instance type.",
         training_budget),
    Rule("SG-COST-004", "high", "Tuning job cost bound over budget", "hpo.max_jobs",
         "Lower hpo.max_jobs or the training job's cost bound (instance type, count, max runtime).",
         tuning_budget),
    Rule("SG-COST-005", "high", "Provisioned concurrency monthly cost over budget",
         "function.provisioned_concurrency",
         "Lower function.provisioned_concurrency or function.memory_size.", provisioned_concurrency_budget),
    Rule("SG-COST-006", "high", "Notebook monthly cost over budget", "notebook.instance_type",
         "Pick a smaller notebook.instance_type, or disable the notebook (notebook=none).", notebook_budget),
    Rule("SG-COST-007", "medium", "Managed spot training without checkpointing", "training.checkpointing",
         "Set training.checkpointing=true so an interrupted spot job resumes from its last checkpoint.",
         spot_without_checkpoints),
    Rule("SG-COST-008", "high", "Job without a maximum runtime", "training.max_runtime",
         "Set training.max_runtime (and training.max_wait for spot) so a stuck job stops.", max_runtime),
)
