"""SG-IAM-007: a role trusting another service than the one that uses it fails."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes

RULE = "SG-IAM-007"
FAILING = [
    Case(("iam.roles.lambda_invoke.trust=ec2.amazonaws.com",), severity="high", resource="RoleLambdaInvoke",
         config_key="iam.roles.lambda_invoke.trust"),
]
PASSING = [Case()]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
