"""SG-COST-001: every use (hosting, every variant; training; ec2; notebook) against its allow-list."""

from __future__ import annotations

import pytest
from policy_helpers import HUGE_ENDPOINT, NOTEBOOK, SM, Case, assert_fails, assert_passes

RULE = "SG-COST-001"


def add_variant(instance_type: str):
    def mutate(stack) -> None:
        variants = stack.resource("EndpointConfig").properties["ProductionVariants"]
        variants.append({**variants[0], "VariantName": "Canary", "InstanceType": instance_type})
    return mutate


FAILING = [
    Case((*SM, "training.instance_type=ml.p3.16xlarge"), resource="TrainingJob", config_key="training.instance_type"),
    Case(("training=ec2", "training.instance_type=p3.2xlarge"), resource="Ec2TrainingRun"),
    Case((HUGE_ENDPOINT,), resource="EndpointConfig", config_key="endpoint.variants"),
    Case(mutate=add_variant("ml.p3.2xlarge"), resource="EndpointConfig", note="second-variant"),
    Case((*NOTEBOOK, "notebook.instance_type=ml.t3.xlarge"), resource="NotebookInstance",
         config_key="notebook.instance_type"),
]
PASSING = [
    Case(SM), Case(("training=ec2",)), Case(NOTEBOOK),
    Case(mutate=add_variant("ml.c5.xlarge"), note="two-allowed-variants"),
]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
