"""SG-IAM-006: CreateTrainingJob with PassRole on any role is an escalation path; with PassRole
limited to the named execution role (the reference notebook role) it is not."""

from __future__ import annotations

import pytest
from policy_helpers import NOTEBOOK, Case, assert_fails, assert_passes, widen_notebook_passrole

RULE = "SG-IAM-006"


FAILING = [Case(NOTEBOOK, mutate=widen_notebook_passrole, severity="high", note="escalation")]
PASSING = [Case(NOTEBOOK)]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
