"""SG-IAM-008: an action the catalogue does not know (a typo) is a low finding."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes

RULE = "SG-IAM-008"
FAILING = [
    Case(("iam.roles.lambda_invoke.scopes=[{service:sagemaker,actions:[InvokeEndpoints],resources:[endpoint]}]",),
         severity="low"),
]
PASSING = [Case()]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
