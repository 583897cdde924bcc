"""SG-SAN-010: a CPU type boots the GPU Deep Learning AMI and trains on the CPU (information)."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes

RULE = "SG-SAN-010"
FAILING = [
    Case(("training=ec2",), severity="info", resource="Ec2TrainingRun", config_key="training.instance_type"),
    Case(("training=ec2", "target=aws", "training.ec2_subnet_id=subnet-0123456789abcdef0", "training.instance_type=c5.xlarge"),
         severity="info"),
]
PASSING = [
    Case(("training=ec2", "training.instance_type=g4dn.xlarge")),
    Case(("training=ec2", "target=aws", "training.ec2_subnet_id=subnet-0123456789abcdef0", "training.instance_type=g4dn.xlarge")),
]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    findings = assert_fails(RULE, case)
    assert all("PyTorch on the CPU" in f.message for f in findings)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
