"""SG-AWS-006: Serverless Inference does not run a model in a VPC."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes

from runner.stack.model import Stack


def _in_vpc(stack: Stack) -> None:
    stack.resource("Model").properties["VpcConfig"] = {"Subnets": ["subnet-0123456789abcdef0"],
                                                       "SecurityGroupIds": ["sg-0123456789abcdef0"]}


RULE = "SG-AWS-006"
FAILING = [Case(("endpoint=serverless", "autoscaling=none"), mutate=_in_vpc, severity="critical", note="vpc")]
PASSING = [Case(("endpoint=serverless", "autoscaling=none"))]

@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
