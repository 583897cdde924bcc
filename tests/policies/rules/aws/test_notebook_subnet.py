"""SG-AWS-001: a notebook without direct internet access must be in a subnet (the schema
refuses the config; the rule guards the stack that is sent)."""

from __future__ import annotations

import pytest
from policy_helpers import NOTEBOOK, Case, assert_fails, assert_passes

from runner.stack.model import Stack


def _no_subnet(stack: Stack) -> None:
    for key in ("SubnetId", "SecurityGroupIds"):
        stack.resource("NotebookInstance").properties.pop(key)


RULE = "SG-AWS-001"
FAILING = [Case(NOTEBOOK, mutate=_no_subnet, severity="critical", resource="NotebookInstance",
                config_key="notebook.subnet_id", note="no-subnet")]
PASSING = [Case(NOTEBOOK), Case((*NOTEBOOK, "notebook.direct_internet_access=Enabled", "notebook.subnet_id=null",
                                 "notebook.security_group_ids=[]"))]

@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
