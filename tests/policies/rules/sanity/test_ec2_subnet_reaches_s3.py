"""SG-SAN-009: EC2 training on AWS needs a subnet (one that reaches S3; the launcher checks the route)."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes

RULE = "SG-SAN-009"
FAILING = [
    Case(("training=ec2", "target=aws"), severity="high", resource="Ec2TrainingRun",
         config_key="training.ec2_subnet_id"),
]
PASSING = [
    Case(("training=ec2", "target=aws", "training.ec2_subnet_id=subnet-0123456789abcdef0")),
    # The local target's stand-in instance reaches the emulator on loopback.
    Case(("training=ec2",)),
]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
