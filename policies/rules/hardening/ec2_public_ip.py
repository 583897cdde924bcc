"""SG-HARD-008: an EC2 training instance gets no public IP (explicitly: a default-VPC subnet would
give it one, which is reported at medium)."""

from __future__ import annotations

from collections.abc import Iterator

from policies.rules.base import Context, Outcome, Rule


class Ec2PublicIp(Rule):
    id = "SG-HARD-008"
    severity = "high"
    title = "EC2 instance with a public IP"
    config_key = "training.ec2_subnet_id"
    remediation = "Launch into a private subnet (training.ec2_subnet_id) with AssociatePublicIpAddress=false."

    def check(self, ctx: Context) -> Iterator[Outcome]:
        for job in ctx.jobs("ec2_run"):
            interfaces = job.request.get("NetworkInterfaces")
            if not interfaces:
                yield self.outcome(job.logical_id, "no NetworkInterfaces with AssociatePublicIpAddress=false: a "
                                   "default-VPC subnet gives the instance a public IP", severity="medium")
            elif any(i.get("AssociatePublicIpAddress", True) for i in interfaces):
                yield self.outcome(job.logical_id, "the instance gets a public IP address")
            else:
                yield self.outcome(job.logical_id)
