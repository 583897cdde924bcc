"""SG-HARD-006: an EC2 training instance without IMDSv2."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes, job_request

RULE = "SG-HARD-006"


def imds_optional(stack) -> None:
    job_request(stack, "Ec2TrainingRun")["MetadataOptions"]["HttpTokens"] = "optional"


FAILING = [Case(("training=ec2",), mutate=imds_optional, severity="high", resource="Ec2TrainingRun", note="imdsv1")]
PASSING = [Case(("training=ec2",))]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
