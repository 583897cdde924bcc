"""SG-HARD-006: an EC2 training instance requires IMDSv2 tokens (or has no metadata endpoint)."""

from __future__ import annotations

from policies.rules.base import Context, JobRule
from runner.stack.model import JobSpec


class Ec2Imdsv2(JobRule):
    id = "SG-HARD-006"
    severity = "high"
    title = "EC2 instance without IMDSv2"
    config_key = "training.launcher"
    remediation = "Launch with MetadataOptions.HttpTokens=required."
    job_kinds = ("ec2_run",)

    def problem(self, ctx: Context, job: JobSpec) -> str | None:
        options = job.request.get("MetadataOptions", {})
        if options.get("HttpTokens") == "required" or options.get("HttpEndpoint") == "disabled":
            return None
        return "MetadataOptions.HttpTokens is not 'required': IMDSv1 lets any SSRF read the instance role's credentials"
