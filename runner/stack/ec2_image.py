"""Which machine image the EC2 training instance boots, and why (the plan shows it).

On ``target=aws`` the image is the AWS Deep Learning AMI with PyTorch, named by its public SSM
parameter and resolved by EC2 itself at launch (``ImageId: resolve:ssm:<public-parameter>``; EC2
User Guide, "Use a Systems Manager parameter instead of an AMI ID"). Resolving it in the launcher
instead would change the request after the gate checked it; this way the request the gate checked
is the request that is sent, byte for byte, and the instance's ``ImageId`` (printed by the
launcher) says which AMI it became. ``training.ec2_image_id`` overrides it with an ``ami-`` id or
another ``resolve:ssm:`` parameter.

Sources (read for issue 11): the DLAMI release notes of "Deep Learning OSS Nvidia Driver AMI GPU
PyTorch 2.10 (Amazon Linux 2023)" (docs.aws.amazon.com/dlami/latest/devguide/, page
aws-deep-learning-ami-gpupt210oss-al2023-2026-04-20; read at
https://docs.amazonaws.cn/dlami/latest/devguide/aws-deep-learning-ami-gpupt210oss-al2023-2026-04-20.md):
python_location /opt/pytorch/bin/python (boto3 and the AWS CLI are in the image), supported EC2
instances G4dn, G5, G6, Gr6, G6e, P4, P4de, P5, P5e, P5en, P6-B200; the 2.6, 2.11 and 2.13 notes
list GPU families only too, so no current PyTorch DLAMI lists a CPU family. The DLAMI guide's
"DLAMI features" page (https://docs.amazonaws.cn/dlami/latest/devguide/features.md, preinstalled
GPU software) says the installed software is the same on CPU-only instances, where the GPU tools
are unused; the image's CUDA build of PyTorch trains on the CPU (as it does on this machine). So a
CPU type (m5, c5) boots the same image and the plan says it runs PyTorch on the CPU. The
parameter path is a pin (PyTorch 2.10 line): AWS retires lines, and a retired one fails RunInstances.

On ``target=local`` the emulator has no public SSM parameters and boots nothing: the request
names a Deep Learning AMI the emulator ships (``LOCAL_DLAMI``), which ``DescribeImages`` knows.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.core.settings import Settings

SSM_PREFIX = "resolve:ssm:"
DLAMI_PYTORCH_PARAMETER = (
    "/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.10-amazon-linux-2023/latest/ami-id")
DLAMI_PYTORCH = SSM_PREFIX + DLAMI_PYTORCH_PARAMETER
# The PyTorch environment's interpreter on the DLAMI (release notes: python_location).
DLAMI_PYTHON = "/opt/pytorch/bin/python"
# moto's bundled "Deep Learning AMI Amazon Linux - 3.3_Oct2017" (x86_64, public, owner amazon).
LOCAL_DLAMI = "ami-999844e0"
# Instance families with an NVIDIA GPU that the DLAMI lists as supported.
GPU_FAMILIES = ("g4dn", "g5", "g6", "gr6", "g6e", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200")


@dataclass(frozen=True)
class ImageChoice:
    image_id: str  # what RunInstances carries
    processor: str  # "gpu" | "cpu"
    why: str  # one line for the plan

    @property
    def resolved_at_launch(self) -> bool:
        return self.image_id.startswith(SSM_PREFIX)


def processor_of(instance_type: str) -> str:
    """``gpu`` for the families the DLAMI supports, ``cpu`` otherwise (m5, c5, t3, ...)."""
    return "gpu" if instance_type.split(".", 1)[0] in GPU_FAMILIES else "cpu"


def image_for(settings: Settings) -> ImageChoice:
    """The image the EC2 training instance boots on this target, for this instance type."""
    t = settings.training
    processor = processor_of(t.instance_type)
    on = "on its GPU" if processor == "gpu" else "on the CPU (the image's CUDA build)"
    if settings.target.kind == "local":
        return ImageChoice(LOCAL_DLAMI, processor, f"{LOCAL_DLAMI}: the emulator's Deep Learning AMI, standing in "
                                                   f"for {t.ec2_image_id or DLAMI_PYTORCH}")
    image = t.ec2_image_id or DLAMI_PYTORCH
    if image == DLAMI_PYTORCH:
        return ImageChoice(image, processor, f"AWS Deep Learning AMI, PyTorch 2.10, Amazon Linux 2023 (SSM parameter "
                                             f"{DLAMI_PYTORCH_PARAMETER}, resolved by EC2 at launch); PyTorch {on}")
    how = "resolved by EC2 at launch" if image.startswith(SSM_PREFIX) else "as configured"
    return ImageChoice(image, processor, f"{image} ({how}, training.ec2_image_id); its python must be "
                                         f"{DLAMI_PYTHON} with PyTorch and boto3")


def describe_image(image_id: str, instance_type: str) -> str:
    """The plan's words for a request's ImageId."""
    processor = processor_of(instance_type)
    if image_id == DLAMI_PYTORCH:
        return f"AMI: Deep Learning AMI PyTorch 2.10 (AL2023) via SSM, PyTorch on the {processor.upper()}"
    if image_id == LOCAL_DLAMI:
        return f"AMI: {LOCAL_DLAMI} (the emulator's Deep Learning AMI), PyTorch on the {processor.upper()}"
    return f"AMI: {image_id}"
