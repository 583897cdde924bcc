"""SG-IAM-001: a wildcard action fails, the shipped scopes pass."""

from __future__ import annotations

import pytest
from policy_helpers import WILDCARD_SCOPES, Case, assert_fails, assert_passes

RULE = "SG-IAM-001"
FAILING = [Case((WILDCARD_SCOPES,), severity="high", resource="RoleLambdaInvoke")]
PASSING = [Case()]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
