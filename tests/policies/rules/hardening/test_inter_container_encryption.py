"""SG-HARD-010: multi-instance training without inter-container encryption."""

from __future__ import annotations

import pytest
from policy_helpers import SM, Case, assert_fails, assert_passes

RULE = "SG-HARD-010"
MULTI = ("training=sagemaker_multi", "training.volume_kms_key_id=null")
FAILING = [Case((*MULTI, "training.inter_container_encryption=false"), severity="medium")]
PASSING = [Case(MULTI), Case((*SM, "training.inter_container_encryption=false"), note="single-instance")]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
