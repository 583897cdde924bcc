"""SG-IAM-004: an AWS-managed *FullAccess policy fails, none passes."""

from __future__ import annotations

import pytest
from policy_helpers import FULL_ACCESS, Case, assert_fails, assert_passes

RULE = "SG-IAM-004"
FAILING = [
    Case((FULL_ACCESS,), severity="high", resource="RoleSagemakerExecution",
         config_key="iam.roles.sagemaker_execution.managed_policy_arns"),
]
PASSING = [Case()]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
