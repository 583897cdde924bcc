"""SG-COST-003: a training job's cost bound against policy.budgets_usd.training_job."""

from __future__ import annotations

import pytest
from policy_helpers import SM, Case, assert_fails, assert_passes

RULE = "SG-COST-003"
FAILING = [
    Case((*SM, "training.instance_type=ml.p4d.24xlarge", "training.max_runtime=7200", "training.max_wait=7200")),
]
PASSING = [Case(SM), Case(("training=ec2",))]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
