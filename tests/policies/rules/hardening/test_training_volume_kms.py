"""SG-HARD-003: training volumes under a customer-managed key (none on local NVMe storage)."""

from __future__ import annotations

import pytest
from policy_helpers import KEY_ARN, SM, Case, assert_fails, assert_passes

RULE = "SG-HARD-003"
FAILING = [Case((*SM, "training.instance_type=ml.m5.xlarge"), severity="low", resource="TrainingJob")]
PASSING = [
    Case(SM, note="local-storage"),
    Case((*SM, "training.instance_type=ml.m5.xlarge", f"training.volume_kms_key_id={KEY_ARN}")),
]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
