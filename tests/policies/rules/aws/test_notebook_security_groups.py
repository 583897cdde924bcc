"""SG-AWS-002: a notebook in a subnet names security groups of its VPC."""

from __future__ import annotations

import pytest
from policy_helpers import NOTEBOOK, Case, assert_fails, assert_passes

from runner.stack.model import Stack


def _no_groups(stack: Stack) -> None:
    stack.resource("NotebookInstance").properties.pop("SecurityGroupIds")


RULE = "SG-AWS-002"
FAILING = [Case(NOTEBOOK, mutate=_no_groups, severity="critical", resource="NotebookInstance", note="no-groups")]
PASSING = [Case(NOTEBOOK)]

@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
