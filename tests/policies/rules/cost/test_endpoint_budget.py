"""SG-COST-002: the endpoint's monthly cost at max capacity against policy.budgets_usd.endpoint_monthly."""

from __future__ import annotations

import pytest
from policy_helpers import HUGE_ENDPOINT, Case, assert_fails, assert_passes

RULE = "SG-COST-002"
FAILING = [
    Case((HUGE_ENDPOINT,), severity="high", resource="Endpoint", config_key="autoscaling.max_capacity"),
    Case(("autoscaling=none", "endpoint.variants.AllTraffic.initial_instance_count=40"), config_key="endpoint.variants",
         note="no-autoscaling"),
    Case(("endpoint=serverless", "autoscaling=none", "policy.budgets_usd.endpoint_monthly=1"),
         config_key="endpoint.serverless_max_concurrency", note="serverless"),
]
PASSING = [Case(), Case(("endpoint=serverless", "autoscaling=none"))]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
