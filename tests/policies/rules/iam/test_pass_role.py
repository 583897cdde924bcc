"""SG-IAM-005: iam:PassRole on any role fails; the notebook role's PassRole of the named
execution role, to SageMaker only, passes."""

from __future__ import annotations

import pytest
from policy_helpers import NOTEBOOK, Case, assert_fails, assert_passes, widen_notebook_passrole

RULE = "SG-IAM-005"


FAILING = [Case(NOTEBOOK, mutate=widen_notebook_passrole, severity="high", note="passrole-any")]
PASSING = [Case(NOTEBOOK)]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
