"""Error, lost answer and kill -9 at every mutating call of a fresh deploy and of an instance-type
update (issue 13): no orphan after a rollback (the update's rollback puts the endpoint back on its
config *and* its autoscaling), the next deploy converges, and one more deploy sends no mutating
call. A lost answer is a request that reached AWS whose answer the client never saw (a timeout).

Sampled by default (the first call, the last and a fixed sample between); ``pytest --exhaustive``
runs every call. The kill -9 of a real process is test_killed_process.py.
"""

from __future__ import annotations

import pytest
from runner_helpers import (
    UPDATE,
    UPDATE_CALLS,
    CallLog,
    Killed,
    converges,
    deploy,
    deployed_state,
    inventory,
    mutating_calls,
    sample,
    stack_for,
    watch,
)

from runner.deploy import ApplyError, ensure_bucket

MODES = ("error", "lost answer", "kill")


def _log(mode: str, k: int) -> CallLog:
    return {"error": CallLog(fail_mutating_call=k), "lost answer": CallLog(lose_answer_at_mutating_call=k),
            "kill": CallLog(kill_at_mutating_call=k)}[mode]


def _cases(calls: list[str], size: int) -> list[tuple[str, int]]:
    return [(mode, k) for mode in MODES for k in sample(list(range(1, len(calls) + 1)), size, seed=mode)]


@pytest.mark.sampled
def test_faults_at_every_call_of_an_instance_type_update(local_target, stack_name):
    reference = "r" + stack_name[1:]
    deploy(local_target, stack_for(reference))
    assert mutating_calls(local_target, stack_for(reference, UPDATE)) == UPDATE_CALLS
    updated = deployed_state(local_target, reference)
    assert updated["endpoint"][2] == [("AllTraffic", "ml.c5.large")] and updated["targets"] and updated["policies"]

    for mode, k in _cases(UPDATE_CALLS, 4):
        why = (mode, k, UPDATE_CALLS[k - 1])
        name = f"{stack_name}-{k}{mode[0]}"
        deploy(local_target, stack_for(name))
        before = deployed_state(local_target, name)
        change = stack_for(name, UPDATE)
        log = _log(mode, k)
        _, remove = watch(local_target, log)
        with pytest.raises(Killed if mode == "kill" else ApplyError) as caught:
            deploy(local_target, change)
        remove()
        assert log.failed and log.failed.endswith(UPDATE_CALLS[k - 1]), (why, log.failed)
        if mode != "kill":
            report = caught.value.report
            if UPDATE_CALLS[k - 1] == "DeleteEndpointConfig":
                # Clean-up after every change is in: nothing is rolled back, what is left is named.
                assert report.rolled_back == [] and report.restored == [], why
                assert "the next apply deletes them" in str(caught.value), why
                left = deployed_state(local_target, name)
                assert left["endpoint"] == updated["endpoint"] and left["targets"] == updated["targets"], why
            else:
                assert report.remaining == [], (why, report.remaining)
                assert sorted(report.rolled_back) == sorted(report.created), why
                assert deployed_state(local_target, name) == before, why
                if k >= 2:  # the autoscaling taken off for the update is back, and the error says so
                    assert "restored: " in str(caught.value) and "scaling policy" in str(caught.value), why
        converges(local_target, change, updated, why)


@pytest.mark.sampled
def test_lost_answers_at_every_call_of_a_fresh_deploy_are_rolled_back(local_target, stack_name):
    """The create happened, the client saw an error: the applier finds the resource by name and
    owner tag and rolls it back with the rest (7 of 20 such points left an orphan before)."""
    reference = "r" + stack_name[1:]
    ensure_bucket(local_target, stack_for(reference).names)  # its own fault tests: test_faults.py
    calls = mutating_calls(local_target, stack_for(reference))
    expected = deployed_state(local_target, reference)
    for k in sample(list(range(1, len(calls) + 1)), 8):
        why = (k, calls[k - 1])
        name = f"{stack_name}-{k}"
        stack = stack_for(name)
        ensure_bucket(local_target, stack.names)
        log = CallLog(lose_answer_at_mutating_call=k)
        _, remove = watch(local_target, log)
        with pytest.raises(ApplyError) as caught:
            deploy(local_target, stack)
        remove()
        assert log.failed and log.failed.endswith(calls[k - 1]), (why, log.failed)
        report = caught.value.report
        assert report.remaining == [], (why, report.remaining)
        assert sorted(report.rolled_back) == sorted(report.created), why
        assert inventory(local_target, name) == set(), (why, inventory(local_target, name))
        converges(local_target, stack, expected, why)
