"""SG-SAN-009: an EC2 training run on AWS names its subnet, one that can reach S3.

The instance gets no public IP (SG-HARD-008), so in the default VPC (whose default subnets route
to an internet gateway only) it cannot fetch its bundle and data or upload the artifact: it would
boot, fail and terminate, billed. A private subnet with an S3 gateway endpoint or a NAT gateway
is required; the launcher checks that subnet's route table before RunInstances
(runner/launchers/ec2_reachability.py). On target=local the stand-in instance reaches the
emulator on loopback, and a subnet, when given, is checked against the emulator the same way.
"""

from __future__ import annotations

from policies.rules.base import Context, JobRule
from runner.stack.model import JobSpec


class Ec2SubnetReachesS3(JobRule):
    id = "SG-SAN-009"
    severity = "high"
    title = "EC2 training on AWS without a subnet that reaches S3"
    config_key = "training.ec2_subnet_id"
    remediation = ("Set training.ec2_subnet_id to a private subnet whose route table has an S3 gateway endpoint "
                   "or a 0.0.0.0/0 route to a NAT gateway.")
    job_kinds = ("ec2_run",)

    def problem(self, ctx: Context, job: JobSpec) -> str | None:
        if ctx.settings.target.kind != "aws":
            return None
        interfaces = job.request.get("NetworkInterfaces") or [{}]
        if any(i.get("SubnetId") for i in interfaces) or job.request.get("SubnetId"):
            return None
        return ("no subnet: the instance launches into the default VPC without a public IP, where it has no "
                "route to S3 for its bundle, data and artifact")
