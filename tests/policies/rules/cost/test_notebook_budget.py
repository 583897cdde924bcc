"""SG-COST-006: the notebook's monthly cost against its budget."""

from __future__ import annotations

import pytest
from policy_helpers import NOTEBOOK, Case, assert_fails, assert_passes

RULE = "SG-COST-006"
FAILING = [Case((*NOTEBOOK, "notebook.instance_type=ml.g4dn.xlarge"), resource="NotebookInstance")]
PASSING = [Case(NOTEBOOK)]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
