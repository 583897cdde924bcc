"""SG-COST-008: every remote job stops by itself: a SageMaker StoppingCondition (and MaxWaitTime
for spot), an EC2 instance's shutdown timer that terminates it."""

from __future__ import annotations

import re

from policies.rules.base import Context, JobRule, job_definition
from runner.stack.model import JobSpec

SHUTDOWN_TIMER = re.compile(r"^\s*shutdown\s+-h\s+\+\d+", re.MULTILINE)


class MaxRuntime(JobRule):
    id = "SG-COST-008"
    severity = "high"
    title = "Job without a maximum runtime"
    config_key = "training.max_runtime"
    remediation = "Set training.max_runtime (and training.max_wait for spot) so a stuck job stops."
    job_kinds = ("training_job", "tuning_job", "ec2_run")

    def problem(self, ctx: Context, job: JobSpec) -> str | None:
        problems = []
        if job.kind == "ec2_run":
            if not SHUTDOWN_TIMER.search(job.request.get("UserData", "")):
                problems.append("user data sets no 'shutdown -h +N' timer")
            if job.request.get("InstanceInitiatedShutdownBehavior") != "terminate":
                problems.append("InstanceInitiatedShutdownBehavior is not 'terminate' (a stopped instance keeps "
                                "its volume)")
        else:
            definition = job_definition(job)
            stopping = definition.get("StoppingCondition", {})
            if not stopping.get("MaxRuntimeInSeconds"):
                problems.append("no StoppingCondition.MaxRuntimeInSeconds")
            if definition.get("EnableManagedSpotTraining") and not stopping.get("MaxWaitTimeInSeconds"):
                problems.append("managed spot without StoppingCondition.MaxWaitTimeInSeconds")
        return "; ".join(problems) or None
