"""SG-COST-007: managed spot training without checkpoints; on-demand and checkpointed spot pass."""

from __future__ import annotations

import pytest
from policy_helpers import SM, Case, assert_fails, assert_passes

RULE = "SG-COST-007"
FAILING = [Case((*SM, "training.checkpointing=false"), severity="medium")]
PASSING = [Case(SM), Case((*SM, "training.use_spot=false"), note="on-demand")]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
