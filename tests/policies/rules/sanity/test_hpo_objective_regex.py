"""SG-SAN-003: the tuner's objective regex against the metric lines training prints."""

from __future__ import annotations

import pytest
from policy_helpers import SM, Case, assert_fails, assert_passes, job_request

RULE = "SG-SAN-003"
TUNER = (*SM, "hpo=sagemaker_tuner")


def drop_metric_definitions(stack) -> None:
    job_request(stack, "TuningJob")["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"] = []


FAILING = [
    Case((*TUNER, "hpo.objective_regex='validation_loss: ([0-9.]+)'"), config_key="hpo.objective_regex"),
    Case((*TUNER, "hpo.objective_regex='Testing (Loss): '"), note="captures-a-word"),
    Case(TUNER, mutate=drop_metric_definitions, config_key="hpo.objective_metric", note="no-definition"),
]
PASSING = [Case(TUNER)]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
