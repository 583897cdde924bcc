"""SG-SAN-006: reserved concurrency within policy.max_reserved_concurrency (a bound the schema does
not know), and, on the stack as built, at least 1 and below the account's unreserved floor."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes

RULE = "SG-SAN-006"


def reserve(value):
    def mutate(stack) -> None:
        stack.resource("InvokeFunction").properties["ReservedConcurrentExecutions"] = value
    return mutate


FAILING = [
    Case(("function.reserved_concurrency=500",), resource="InvokeFunction", note="policy-bound"),
    Case(mutate=reserve(950), note="reserved-floor"),
    Case(mutate=reserve(0), note="zero"),
]
PASSING = [Case(), Case(("function.reserved_concurrency=100",), note="at-the-bound")]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
