"""SG-COST-004: a tuning job's cost bound (max jobs x one job's bound) against its budget."""

from __future__ import annotations

import pytest
from policy_helpers import SM, Case, assert_fails, assert_passes

RULE = "SG-COST-004"
FAILING = [Case((*SM, "hpo=sagemaker_tuner", "hpo.max_jobs=300"), resource="TuningJob")]
PASSING = [Case((*SM, "hpo=sagemaker_tuner"))]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
