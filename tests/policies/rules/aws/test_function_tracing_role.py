"""SG-AWS-007: a traced function's role may write X-Ray traces."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes

WITHOUT_XRAY = ("iam.roles.lambda_invoke.scopes=[{service:sagemaker,actions:[InvokeEndpoint],resources:[endpoint]},"
                "{service:logs,actions:[CreateLogStream,PutLogEvents],resources:[function_log_group]}]")

RULE = "SG-AWS-007"
FAILING = [Case((WITHOUT_XRAY,), severity="critical", resource="InvokeFunction",
                config_key="iam.roles.lambda_invoke.scopes")]
PASSING = [Case()]

@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
