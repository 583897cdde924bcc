"""SG-COST-008: every remote job stops by itself (the schema always sets a max runtime; the rule
guards the requests as built)."""

from __future__ import annotations

import pytest
from policy_helpers import SM, Case, assert_fails, assert_passes, job_request

RULE = "SG-COST-008"


def drop_max_runtime(stack) -> None:
    del job_request(stack, "TrainingJob")["StoppingCondition"]["MaxRuntimeInSeconds"]


def drop_max_wait(stack) -> None:
    job_request(stack, "TrainingJob")["StoppingCondition"].pop("MaxWaitTimeInSeconds", None)


def drop_shutdown_timer(stack) -> None:
    request = job_request(stack, "Ec2TrainingRun")
    request["UserData"] = "\n".join(line for line in request["UserData"].splitlines() if "shutdown -h +" not in line)


def stop_instead_of_terminate(stack) -> None:
    job_request(stack, "Ec2TrainingRun")["InstanceInitiatedShutdownBehavior"] = "stop"


FAILING = [
    Case(SM, mutate=drop_max_runtime, resource="TrainingJob", note="no-max-runtime"),
    Case(SM, mutate=drop_max_wait, note="spot-no-max-wait"),
    Case(("training=ec2",), mutate=drop_shutdown_timer, resource="Ec2TrainingRun", note="ec2-no-timer"),
    Case(("training=ec2",), mutate=stop_instead_of_terminate, note="ec2-stops"),
]
PASSING = [Case(SM), Case(("training=ec2",))]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
