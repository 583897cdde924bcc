"""SG-SAN-010: which image an EC2 training run boots, said by the gate when it matters: a CPU
instance type boots the Deep Learning AMI with PyTorch, whose release notes list GPU families only,
and trains on the CPU with the image's CUDA build of PyTorch (runner/stack/ec2_image.py has the
sources). Information, not a failure: it works, and it is what the default (m5.xlarge) does."""

from __future__ import annotations

from policies.rules.base import Context, JobRule
from runner.stack.ec2_image import describe_image, processor_of
from runner.stack.model import JobSpec


class Ec2ImageProcessor(JobRule):
    id = "SG-SAN-010"
    severity = "info"
    title = "EC2 training on a CPU type with the GPU Deep Learning AMI"
    config_key = "training.instance_type"
    remediation = ("Pick a GPU type the Deep Learning AMI supports (g4dn, g5, g6, ...) to train on a GPU, or keep "
                   "the CPU type: the same image trains with PyTorch on the CPU.")
    job_kinds = ("ec2_run",)

    def problem(self, ctx: Context, job: JobSpec) -> str | None:
        instance_type, image = job.request.get("InstanceType", ""), job.request.get("ImageId", "")
        if processor_of(instance_type) == "gpu":
            return None
        return (f"{instance_type} has no GPU. {describe_image(image, instance_type)}; the DLAMI release notes "
                "list GPU families only")
