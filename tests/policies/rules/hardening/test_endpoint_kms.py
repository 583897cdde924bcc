"""SG-HARD-001: the endpoint's volumes under a customer-managed key."""

from __future__ import annotations

import pytest
from policy_helpers import KEY_ARN, Case, assert_fails, assert_passes

RULE = "SG-HARD-001"
FAILING = [
    Case(("endpoint.kms_key_id=null",), severity="low", resource="EndpointConfig"),
    Case((), severity="low", note="aws-managed-alias"),
]
PASSING = [
    Case((f"endpoint.kms_key_id={KEY_ARN}",)),
    Case(("endpoint.variants.AllTraffic.instance_type=ml.g4dn.xlarge", "endpoint.kms_key_id=null"), note="local-storage"),
]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
