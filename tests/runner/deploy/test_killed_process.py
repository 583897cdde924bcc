"""kill -9 of a real deploy process at every mutating call, of a fresh deploy (its bucket included)
and of an instance-type update: the call reached AWS, the process died before reading the answer,
nothing cleaned up. The next deploy (a new process's work: here, this one's) converges to what a
clean deploy makes, and one more sends no mutating call. Sampled by default; every call with
``pytest --exhaustive``. (test_faults.py and test_fault_matrix.py stop the calls in-process.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from runner_helpers import (
    UPDATE,
    UPDATE_CALLS,
    converges,
    deploy,
    deployed_state,
    mutating_calls,
    sample,
    stack_for,
    watch,
)

SCRIPT = Path(__file__).with_name("deploy_then_die.py")


def _deploy_in_a_process_killed_at(url: str, name: str, k: int, *overrides: str) -> str:
    done = subprocess.run([sys.executable, str(SCRIPT), url, name, str(k), *overrides],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, (done.returncode, done.stdout, done.stderr[-2000:])  # SIGKILL
    return done.stdout.strip().removeprefix("killed at ")


@pytest.mark.sampled
def test_a_deploy_killed_at_every_call_converges_on_the_next(emulator_url, local_target, stack_name):
    reference = "r" + stack_name[1:]
    log, remove = watch(local_target)
    deploy(local_target, stack_for(reference))
    remove()
    calls = log.mutating
    assert calls[0] == "CreateBucket"
    expected = deployed_state(local_target, reference)
    for k in sample(list(range(1, len(calls) + 1)), 4):
        name = f"{stack_name}-{k}"
        assert _deploy_in_a_process_killed_at(emulator_url, name, k) == calls[k - 1]
        converges(local_target, stack_for(name), expected, (k, calls[k - 1]))


@pytest.mark.sampled
def test_an_update_killed_at_every_call_converges_on_the_next(emulator_url, local_target, stack_name):
    reference = "r" + stack_name[1:]
    deploy(local_target, stack_for(reference))
    assert mutating_calls(local_target, stack_for(reference, UPDATE)) == UPDATE_CALLS
    expected = deployed_state(local_target, reference)
    for k in sample(list(range(1, len(UPDATE_CALLS) + 1)), 3):
        name = f"{stack_name}-{k}"
        deploy(local_target, stack_for(name))
        assert _deploy_in_a_process_killed_at(emulator_url, name, k, UPDATE) == UPDATE_CALLS[k - 1]
        converges(local_target, stack_for(name, UPDATE), expected, (k, UPDATE_CALLS[k - 1]))
