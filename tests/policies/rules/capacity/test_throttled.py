"""SG-CAP-001: Lambda throttles a simulated day over its SLO."""

from __future__ import annotations

import pytest
from capacity_cases import HALF_HOUR, LIGHT_DAY, SLO, assert_names_the_minute_and_the_cause
from policy_helpers import Case, assert_fails, assert_passes

RULE = "SG-CAP-001"
FAILING = [Case((*SLO, *HALF_HOUR, "traffic.rps=200.0"), config_key="function.reserved_concurrency", note="200 rps against reserved 5 (at most 50 a second)")]
PASSING = [Case(LIGHT_DAY)]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    [finding] = assert_fails(RULE, case)
    assert_names_the_minute_and_the_cause(finding.message, "throttled")


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)


def test_without_an_slo_nothing_is_simulated_or_reported() -> None:
    from policy_helpers import evaluate_case

    result = evaluate_case(RULE, Case((*HALF_HOUR, "traffic.rps=200.0")))
    assert not [e for e in result.evaluations if e.rule_id == RULE]


def test_an_slo_on_a_config_the_model_cannot_simulate_is_a_finding() -> None:
    [finding] = assert_fails(RULE, Case((*SLO, "endpoint=serverless"), config_key="slo"))
    assert "cannot be checked" in finding.message and "serverless" in finding.message
