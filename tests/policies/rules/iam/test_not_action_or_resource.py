"""SG-IAM-002: an Allow with NotAction fails, the shipped scopes pass."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes, role_policy

RULE = "SG-IAM-002"


def add_not_action(stack) -> None:
    role_policy(stack, "RoleLambdaInvoke")["Statement"].append({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})


FAILING = [Case(mutate=add_not_action, severity="high", resource="RoleLambdaInvoke", note="NotAction")]
PASSING = [Case()]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
