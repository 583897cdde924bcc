"""SG-IAM-008: an action the catalogue does not know (a typo) is a low finding."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes, role_policy

from runner.stack.model import Stack

RULE = "SG-IAM-008"


def _misspell_invoke(stack: Stack) -> None:
    """The schema refuses an unknown action in iam.roles (settings: the IAM catalogue), so the rule is
    defence in depth on the stack that will be sent: misspell one in the built policy."""
    for statement in role_policy(stack, "RoleLambdaInvoke")["Statement"]:
        if statement.get("Action") in ("sagemaker:InvokeEndpoint", ["sagemaker:InvokeEndpoint"]):
            statement["Action"] = ["sagemaker:InvokeEndpoints"]


FAILING = [Case(mutate=_misspell_invoke, severity="low", note="misspelt-action-in-the-built-policy")]
PASSING = [Case()]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
