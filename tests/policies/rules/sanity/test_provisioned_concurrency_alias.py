"""SG-SAN-002: provisioned concurrency needs an alias that carries it, on a published version."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes

RULE = "SG-SAN-002"


def drop_provisioned_config(stack) -> None:
    del stack.resource("InvokeFunctionAlias").properties["ProvisionedConcurrencyConfig"]


def alias_on_latest(stack) -> None:
    stack.resource("InvokeFunctionAlias").properties["FunctionVersion"] = "$LATEST"


FAILING = [
    Case(mutate=drop_provisioned_config, resource="InvokeFunction", note="no-alias-config"),
    Case(mutate=alias_on_latest, note="latest"),
]
PASSING = [Case(), Case(("function.provisioned_concurrency=0",), note="none-wanted")]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
