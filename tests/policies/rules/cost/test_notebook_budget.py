"""SG-COST-006: the notebook's monthly cost against its budget."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes

RULE = "SG-COST-006"
FAILING = [Case(("notebook=t3_medium", "notebook.instance_type=ml.g4dn.xlarge"), resource="NotebookInstance")]
PASSING = [Case(("notebook=t3_medium",))]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
