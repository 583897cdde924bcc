"""SG-AWS-004: Serverless Inference does not capture data."""

from __future__ import annotations

import pytest
from policy_helpers import Case, assert_fails, assert_passes

from runner.stack.model import Stack


def _capture(stack: Stack) -> None:
    stack.resource("EndpointConfig").properties["DataCaptureConfig"] = {
        "EnableCapture": True, "InitialSamplingPercentage": 20, "DestinationS3Uri": "s3://b/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}]}


RULE = "SG-AWS-004"
FAILING = [Case(("endpoint=serverless", "autoscaling=none"), mutate=_capture, severity="critical",
                config_key="endpoint.data_capture", note="capture")]
PASSING = [Case(("endpoint=serverless", "autoscaling=none")), Case(("endpoint.data_capture=true",))]

@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
