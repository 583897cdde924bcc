"""SG-AWS-003: a serverless endpoint has one production variant."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes

from runner.stack.model import Stack


def _second_variant(stack: Stack) -> None:
    variants = stack.resource("EndpointConfig").properties["ProductionVariants"]
    variants.append({**variants[0], "VariantName": "Candidate"})


RULE = "SG-AWS-003"
FAILING = [Case(("endpoint=serverless", "autoscaling=none"), mutate=_second_variant, severity="critical",
                resource="EndpointConfig", note="two-variants")]
PASSING = [Case(("endpoint=serverless", "autoscaling=none")), Case(("endpoint=ab_test",))]

@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
