"""SG-HARD-002: the notebook under a customer-managed key."""

from __future__ import annotations

import pytest
from policy_helpers import KEY_ARN, NOTEBOOK, Case, assert_fails, assert_passes

RULE = "SG-HARD-002"
FAILING = [Case(NOTEBOOK, severity="low", resource="NotebookInstance")]
PASSING = [Case((*NOTEBOOK, f"notebook.kms_key_id={KEY_ARN}"))]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
