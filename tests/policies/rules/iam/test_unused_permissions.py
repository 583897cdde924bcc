"""SG-IAM-010: a role grants a permission no feature of its parts needs (IAM Access Analyzer's
unused permissions)."""

from __future__ import annotations

import pytest
from policy_helpers import NOTEBOOK, Case, assert_fails, assert_passes

RULE = "SG-IAM-010"
# The function's role given read access to the data set, which no feature of the function needs.
EXTRA_READ = ("iam.roles.lambda_invoke.scopes=[{service:sagemaker,actions:[InvokeEndpoint],resources:[endpoint]},"
              "{service:logs,actions:[CreateLogGroup,CreateLogStream,PutLogEvents],resources:[function_log_group]},"
              "{service:xray,actions:[PutTraceSegments,PutTelemetryRecords],resources:['*']},"
              "{service:s3,actions:[GetObject],resources:[data]}]")

FAILING = [Case((EXTRA_READ,), severity="low", resource="RoleLambdaInvoke",
                config_key="iam.roles.lambda_invoke.scopes")]
# The default roles hold exactly what their parts need.
PASSING = [Case(), Case(NOTEBOOK), Case(("training=ec2",)), Case(("training=sagemaker", "hpo=sagemaker_tuner"))]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
