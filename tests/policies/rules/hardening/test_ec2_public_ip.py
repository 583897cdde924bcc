"""SG-HARD-008: an EC2 training instance with a public IP (medium when it only may get one)."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes, job_request

RULE = "SG-HARD-008"


def public_ip(stack) -> None:
    job_request(stack, "Ec2TrainingRun")["NetworkInterfaces"][0]["AssociatePublicIpAddress"] = True


def default_network(stack) -> None:
    del job_request(stack, "Ec2TrainingRun")["NetworkInterfaces"]


FAILING = [
    Case(("training=ec2",), mutate=public_ip, severity="high", note="public-ip"),
    Case(("training=ec2",), mutate=default_network, severity="medium", note="default-network"),
]
PASSING = [Case(("training=ec2",))]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
