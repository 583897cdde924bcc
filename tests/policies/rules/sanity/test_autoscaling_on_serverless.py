"""SG-SAN-001: autoscaling left on for a serverless endpoint."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes

RULE = "SG-SAN-001"
FAILING = [Case(("endpoint=serverless",), severity="medium", resource="EndpointConfig")]
PASSING = [Case(("endpoint=serverless", "autoscaling=none")), Case()]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
