"""SG-HARD-005: a notebook with root access."""

from __future__ import annotations

import pytest
from policy_helpers import NOTEBOOK, Case, assert_fails, assert_passes

RULE = "SG-HARD-005"
FAILING = [Case((*NOTEBOOK, "notebook.root_access=Enabled"), severity="medium")]
PASSING = [Case(NOTEBOOK)]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
