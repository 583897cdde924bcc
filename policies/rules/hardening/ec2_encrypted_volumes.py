"""SG-HARD-007: an EC2 training instance declares its volumes, every EBS one encrypted."""

from __future__ import annotations

from policies.rules.base import Context, JobRule
from runner.stack.model import JobSpec


class Ec2EncryptedVolumes(JobRule):
    id = "SG-HARD-007"
    severity = "high"
    title = "EC2 volumes not encrypted"
    config_key = "training.volume_kms_key_id"
    remediation = "Declare every EBS volume with Encrypted=true (optionally training.volume_kms_key_id)."
    job_kinds = ("ec2_run",)

    def problem(self, ctx: Context, job: JobSpec) -> str | None:
        mappings = job.request.get("BlockDeviceMappings", [])
        plain = [m.get("DeviceName", "?") for m in mappings if "Ebs" in m and not m["Ebs"].get("Encrypted")]
        problems = []
        if not mappings:
            problems.append("no BlockDeviceMappings: the AMI's root volume is used as it is (encryption "
                            "depends on the AMI and the account default)")
        if plain:
            problems.append(f"EBS volume(s) {', '.join(plain)} not encrypted")
        return "; ".join(problems) or None
