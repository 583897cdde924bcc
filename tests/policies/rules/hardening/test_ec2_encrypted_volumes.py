"""SG-HARD-007: EC2 training volumes declared and encrypted."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes, job_request

RULE = "SG-HARD-007"


def plain_ebs(stack) -> None:
    job_request(stack, "Ec2TrainingRun")["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] = False


def no_mappings(stack) -> None:
    del job_request(stack, "Ec2TrainingRun")["BlockDeviceMappings"]


FAILING = [
    Case(("training=ec2",), mutate=plain_ebs, severity="high", note="ebs"),
    Case(("training=ec2",), mutate=no_mappings, note="ami-volumes"),
]
PASSING = [Case(("training=ec2",))]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
