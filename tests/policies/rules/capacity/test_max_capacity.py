"""SG-CAP-004: over the SLO at the maximum capacity."""

from __future__ import annotations

import pytest
from capacity_cases import HALF_HOUR, LIGHT_DAY, ROOMY_FUNCTION, SLO, assert_names_the_minute_and_the_cause
from policy_helpers import Case, assert_fails, assert_passes

RULE = "SG-CAP-004"
FAILING = [Case((*SLO, *HALF_HOUR, *ROOMY_FUNCTION, "traffic.rps=2500.0"), config_key="autoscaling.max_capacity", note="2500 rps need ~8 ml.m5.large, max 3")]
PASSING = [Case(LIGHT_DAY)]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    [finding] = assert_fails(RULE, case)
    assert_names_the_minute_and_the_cause(finding.message, "at max capacity")


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
