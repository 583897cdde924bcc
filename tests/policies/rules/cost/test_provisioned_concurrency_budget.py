"""SG-COST-005: the monthly cost of provisioned concurrency against its budget."""

from __future__ import annotations

import pytest
from policy_helpers import PROVISIONED_OVER_BUDGET, Case, assert_fails, assert_passes

RULE = "SG-COST-005"
FAILING = [Case(PROVISIONED_OVER_BUDGET, resource="InvokeFunctionAlias")]
PASSING = [Case()]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
