"""SG-HARD-009: SageMaker training without network isolation."""

from __future__ import annotations

import pytest
from policy_helpers import SM, Case, assert_fails, assert_passes

RULE = "SG-HARD-009"
FAILING = [Case((*SM, "training.network_isolation=false"), severity="medium", resource="TrainingJob")]
PASSING = [Case(SM)]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
