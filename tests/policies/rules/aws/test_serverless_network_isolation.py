"""SG-AWS-005: Serverless Inference does not run a network-isolated model."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes

from runner.stack.model import Stack


def _isolated(stack: Stack) -> None:
    stack.resource("Model").properties["EnableNetworkIsolation"] = True


RULE = "SG-AWS-005"
FAILING = [Case(("endpoint=serverless", "autoscaling=none"), mutate=_isolated, severity="critical",
                resource="EndpointConfig", note="isolated")]
# The serverless option builds its model without isolation; a real-time endpoint keeps it.
PASSING = [Case(("endpoint=serverless", "autoscaling=none")), Case()]

@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
