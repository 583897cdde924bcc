"""The EC2 run boots the Deep Learning AMI with PyTorch on AWS (CPU and GPU types), a known AMI locally."""

from __future__ import annotations

import pytest
from runner_helpers import settings_for

from runner.stack.build import build_stack
from runner.stack.ec2_image import DLAMI_PYTORCH, LOCAL_DLAMI, image_for, processor_of

AWS = ("training=ec2", "target=aws", "training.ec2_subnet_id=subnet-0123456789abcdef0")


def _request(settings) -> dict:
    return next(j for j in build_stack(settings).jobs if j.kind == "ec2_run").request


@pytest.mark.parametrize(("instance_type", "processor"), [("m5.xlarge", "cpu"), ("c5.2xlarge", "cpu"),
                                                          ("g4dn.xlarge", "gpu"), ("g5.xlarge", "gpu")])
def test_cpu_and_gpu_types_boot_the_pytorch_dlami_on_aws(instance_type, processor):
    settings = settings_for("img", *AWS, f"training.instance_type={instance_type}")
    choice = image_for(settings)
    assert choice.image_id == DLAMI_PYTORCH and choice.resolved_at_launch and choice.processor == processor
    assert DLAMI_PYTORCH.startswith("resolve:ssm:/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-")
    assert _request(settings)["ImageId"] == DLAMI_PYTORCH
    assert processor_of(instance_type) == processor


def test_the_shipped_ec2_config_names_the_pytorch_dlami():
    assert settings_for("img", "training=ec2").training.ec2_image_id == DLAMI_PYTORCH


def test_an_ami_id_in_the_config_is_sent_as_given_on_aws():
    settings = settings_for("img", *AWS, "training.ec2_image_id=ami-0123456789abcdef0")
    assert _request(settings)["ImageId"] == "ami-0123456789abcdef0"


@pytest.mark.parametrize("instance_type", ["m5.xlarge", "g4dn.xlarge"])
def test_the_local_target_sends_an_ami_the_emulator_knows(instance_type):
    settings = settings_for("img", "training=ec2", f"training.instance_type={instance_type}")
    assert _request(settings)["ImageId"] == LOCAL_DLAMI
    assert DLAMI_PYTORCH in image_for(settings).why
