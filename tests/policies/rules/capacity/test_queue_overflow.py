"""SG-CAP-002: the model server overflows while autoscaling had room."""

from __future__ import annotations

import pytest
from capacity_cases import HALF_HOUR, LIGHT_DAY, ROOMY_FUNCTION, SLO, assert_names_the_minute_and_the_cause
from policy_helpers import Case, assert_fails, assert_passes

RULE = "SG-CAP-002"
FAILING = [Case((*SLO, *HALF_HOUR, *ROOMY_FUNCTION, "traffic.rps=900.0", "autoscaling.target_value=100000.0"), config_key="autoscaling.target_value", note="900 rps, a target never reached")]
PASSING = [Case(LIGHT_DAY)]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    [finding] = assert_fails(RULE, case)
    assert_names_the_minute_and_the_cause(finding.message, "queue overflow")


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
