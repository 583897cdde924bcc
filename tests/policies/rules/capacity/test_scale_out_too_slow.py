"""SG-CAP-003: over the SLO while the alarm counts or instances start."""

from __future__ import annotations

import pytest
from capacity_cases import LIGHT_DAY, ROOMY_FUNCTION, SLO, assert_names_the_minute_and_the_cause
from policy_helpers import Case, assert_fails, assert_passes

RULE = "SG-CAP-003"
FAILING = [Case((*SLO, *ROOMY_FUNCTION, "traffic=step", "traffic.minutes=60", "traffic.steps=[[0,0.1],[20,900.0]]", "autoscaling.max_capacity=10"), config_key="autoscaling.min_capacity", note="a step to 900 rps: alarm then startup")]
PASSING = [Case(LIGHT_DAY)]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    [finding] = assert_fails(RULE, case)
    assert_names_the_minute_and_the_cause(finding.message, "scale-out too slow")


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
