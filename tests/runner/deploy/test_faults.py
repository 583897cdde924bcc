"""Fault injection: the k-th mutating call fails, for every k of a deploy from empty."""

from __future__ import annotations

import re

import pytest
from runner_helpers import CallLog, inventory, stack_for, watch, with_network

from runner.deploy import ApplyError, apply, ensure_bucket, upload_function_code


def _prepared(target, name, *overrides):
    """The stack, with its bucket and function code in place (not part of what apply rolls back)."""
    stack = stack_for(name, *overrides)
    ensure_bucket(target, stack.names)
    upload_function_code(target, stack)
    return stack


def _shape(items: set[str], name: str) -> set[str]:
    """An inventory with the stack name and content hashes taken out."""
    return {re.sub(r"-(model|config)-[0-9a-f]{8}$", r"-\1-HASH", item.replace(name, "NAME")) for item in items}


def _mutating_calls_of_a_clean_deploy(target, name, *overrides) -> list[str]:
    stack = _prepared(target, name, *overrides)
    log, remove = watch(target)
    apply(stack, target)
    remove()
    return log.mutating


@pytest.mark.parametrize("overrides", [(), ("notebook=t3_medium", "training=ec2")], ids=["default", "notebook-ec2"])
def test_every_failing_call_is_rolled_back(local_target, stack_name, overrides):
    overrides = with_network(local_target, *overrides)
    calls = _mutating_calls_of_a_clean_deploy(local_target, "r" + stack_name[1:], *overrides)
    assert len(calls) >= 12

    stack = _prepared(local_target, stack_name, *overrides)
    before = inventory(local_target, stack_name)
    assert before == set()
    for k in range(1, len(calls) + 1):
        log = CallLog(fail_mutating_call=k)
        _, remove = watch(local_target, log)
        with pytest.raises(ApplyError) as caught:
            apply(stack, local_target)
        remove()
        report = caught.value.report
        assert log.failed == f"{log.failed.split(':')[0]}:{calls[k - 1]}", (k, log.failed)
        assert report.remaining == [], (k, report.remaining)
        assert sorted(report.rolled_back) == sorted(report.created), k
        assert inventory(local_target, stack_name) == before, (k, log.failed)

    report = apply(stack, local_target)
    assert report.ok and len(report.created) == len(stack.resources)


def test_without_rollback_the_next_apply_converges(local_target, stack_name):
    calls = _mutating_calls_of_a_clean_deploy(local_target, "r" + stack_name[1:])
    reference = _shape(inventory(local_target, "r" + stack_name[1:]), "r" + stack_name[1:])
    for k in range(1, len(calls) + 1):
        name = f"{stack_name}-{k}"
        stack = _prepared(local_target, name)
        log = CallLog(fail_mutating_call=k)
        _, remove = watch(local_target, log)
        with pytest.raises(ApplyError) as caught:
            apply(stack, local_target, rollback=False)
        remove()
        report = caught.value.report
        assert report.rolled_back == [] and report.remaining == report.created, k
        if report.remaining:
            assert "the next apply converges" in str(caught.value)

        converged = apply(stack, local_target)
        assert converged.ok, k
        assert _shape(inventory(local_target, name), name) == reference, k
        log, remove = watch(local_target)
        apply(stack, local_target)
        remove()
        assert log.mutating == [], (k, log.mutating)
