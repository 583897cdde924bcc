"""SG-AWS-008: a function in a VPC has a role that manages network interfaces."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes

VPC = ("function.subnet_ids=[subnet-0123456789abcdef0]", "function.security_group_ids=[sg-0123456789abcdef0]")
# The default scopes plus what Lambda needs to attach the function to the VPC.
WITH_ENI = ("iam.roles.lambda_invoke.scopes=[{service:sagemaker,actions:[InvokeEndpoint],resources:[endpoint]},"
            "{service:logs,actions:[CreateLogGroup,CreateLogStream,PutLogEvents],resources:[function_log_group]},"
            "{service:xray,actions:[PutTraceSegments,PutTelemetryRecords],resources:['*']},"
            "{service:ec2,actions:[CreateNetworkInterface,DescribeNetworkInterfaces,DeleteNetworkInterface],"
            "resources:['*']}]")

RULE = "SG-AWS-008"
FAILING = [Case(VPC, severity="critical", resource="InvokeFunction", config_key="iam.roles.lambda_invoke.scopes")]
PASSING = [Case(), Case((*VPC, WITH_ENI))]

@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
