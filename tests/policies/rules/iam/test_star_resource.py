"""SG-IAM-003: a write action on every resource fails, the shipped scopes pass."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes

RULE = "SG-IAM-003"
FAILING = [
    Case(('iam.roles.lambda_invoke.scopes=[{service:s3,actions:[PutObject],resources:["*"]}]',), severity="high",
         config_key="iam.roles.lambda_invoke.scopes[0]"),
]
PASSING = [Case()]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
