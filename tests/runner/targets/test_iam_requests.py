"""Wire requests, as boto3 sends them, map to the IAM actions, resources and context AWS authorises
(runner/targets/iam_requests.py): the run-time calls of a stack's roles and the deployer's."""

from __future__ import annotations

from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from runner.targets.iam_requests import Check, WireRequest, checks

REGION, ACCOUNT = "eu-west-1", "111122223333"


class _Sent(Exception):
    pass


def _wire(service: str, operation: str, **params) -> WireRequest:
    """The request boto3 sends for one call (stopped before it leaves)."""
    client = boto3.client(service, region_name=REGION, endpoint_url="http://127.0.0.1:1",
                          aws_access_key_id="ASIAEXAMPLE", aws_secret_access_key="x", aws_session_token="t")
    captured: list[WireRequest] = []

    def capture(request, **_) -> AWSResponse:
        url = urlsplit(request.url)
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode() \
            if isinstance(request.body, str | type(None)) else request.body.read()
        signing = client.meta.service_model.signing_name
        captured.append(WireRequest(signing, REGION, ACCOUNT, request.method, url.path, url.query,
                                    {k.lower(): v.decode() if isinstance(v, bytes) else v
                                     for k, v in request.headers.items()}, body))
        raise _Sent

    client.meta.events.register("before-send", capture)
    with pytest.raises(_Sent):
        getattr(client, operation)(**params)
    return captured[0]


def _checks(service: str, operation: str, **params) -> list[tuple[str, str, dict]]:
    found = checks(_wire(service, operation, **params))
    assert found is not None
    return [(c.action, c.resource, dict(c.context)) for c in found]


LOGS = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group"


@pytest.mark.parametrize(("service", "operation", "params", "expected"), [
    ("logs", "create_log_group", {"logGroupName": "/aws/lambda/f"},
     [("logs:CreateLogGroup", f"{LOGS}:/aws/lambda/f:*", {})]),  # LogGroup.arn: log-group actions take ":*"
    ("logs", "create_log_stream", {"logGroupName": "/aws/lambda/f", "logStreamName": "s1"},
     [("logs:CreateLogStream", f"{LOGS}:/aws/lambda/f:log-stream:s1", {})]),
    ("logs", "put_log_events", {"logGroupName": "g", "logStreamName": "s",
                                "logEvents": [{"timestamp": 1, "message": "m"}]},
     [("logs:PutLogEvents", f"{LOGS}:g:log-stream:s", {})]),
    ("logs", "describe_log_streams", {"logGroupName": "g"}, [("logs:DescribeLogStreams", f"{LOGS}:g:*", {})]),
    ("logs", "list_tags_for_resource", {"resourceArn": f"{LOGS}:g"}, [("logs:ListTagsForResource", f"{LOGS}:g", {})]),
    ("cloudwatch", "put_metric_data", {"Namespace": "/aws/sagemaker/Endpoints", "MetricData": [
        {"MetricName": "m", "Value": 1.0}]},
     [("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"})]),
    ("xray", "put_trace_segments", {"TraceSegmentDocuments": ["{}"]}, [("xray:PutTraceSegments", "*", {})]),
    ("xray", "put_telemetry_records", {"TelemetryRecords": []}, [("xray:PutTelemetryRecords", "*", {})]),
    ("ecr", "get_authorization_token", {}, [("ecr:GetAuthorizationToken", "*", {})]),
    ("ecr", "batch_get_image", {"repositoryName": "pytorch-inference", "registryId": "763104351884",
                                "imageIds": [{"imageTag": "2"}]},
     # The repository is in the registry the request names (AWS's, for SageMaker's images).
     [("ecr:BatchGetImage", f"arn:aws:ecr:{REGION}:763104351884:repository/pytorch-inference", {})]),
    ("ecr", "get_download_url_for_layer", {"repositoryName": "repo", "layerDigest": "sha256:" + "0" * 64},
     [("ecr:GetDownloadUrlForLayer", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/repo", {})]),
    ("s3", "head_bucket", {"Bucket": "b"}, [("s3:ListBucket", "arn:aws:s3:::b", {})]),
    ("s3", "put_public_access_block", {"Bucket": "b", "PublicAccessBlockConfiguration": {"BlockPublicAcls": True}},
     [("s3:PutBucketPublicAccessBlock", "arn:aws:s3:::b", {})]),
    ("s3", "get_object", {"Bucket": "b", "Key": "a/b.tar.gz"}, [("s3:GetObject", "arn:aws:s3:::b/a/b.tar.gz", {})]),
    ("iam", "get_role", {"RoleName": "r"}, [("iam:GetRole", f"arn:aws:iam::{ACCOUNT}:role/r", {})]),
    ("iam", "list_roles", {}, [("iam:ListRoles", "*", {})]),
    ("sagemaker", "describe_endpoint", {"EndpointName": "My-Endpoint"},
     [("sagemaker:DescribeEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/my-endpoint", {})]),
    ("sagemaker-runtime", "invoke_endpoint", {"EndpointName": "E", "Body": b"x"},
     [("sagemaker:InvokeEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/e", {})]),
    ("lambda", "get_provisioned_concurrency_config", {"FunctionName": "f", "Qualifier": "live"},
     [("lambda:GetProvisionedConcurrencyConfig", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f:live", {})]),
    ("lambda", "get_function", {"FunctionName": "f"},
     [("lambda:GetFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f", {})]),
])
def test_a_request_maps_to_its_action_resource_and_context(service, operation, params, expected):
    assert _checks(service, operation, **params) == expected


def test_handing_a_role_to_a_service_is_checked_as_pass_role_with_the_service():
    role = f"arn:aws:iam::{ACCOUNT}:role/r"
    found = _checks("sagemaker", "create_model", ModelName="m", ExecutionRoleArn=role,
                    PrimaryContainer={"Image": "i"}, Tags=[{"Key": "k", "Value": "v"}])
    model = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/m"
    assert found == [("sagemaker:CreateModel", model, {}),
                     ("iam:PassRole", role, {"iam:PassedToService": "sagemaker.amazonaws.com"}),
                     ("sagemaker:AddTags", model, {})]
    lam = _checks("lambda", "create_function", FunctionName="f", Role=role, Code={"S3Bucket": "bucket", "S3Key": "k"},
                  Runtime="python3.11", Handler="h.h")
    assert ("iam:PassRole", role, {"iam:PassedToService": "lambda.amazonaws.com"}) in lam


def test_an_endpoint_is_created_on_its_endpoint_and_its_config():
    found = _checks("sagemaker", "create_endpoint", EndpointName="e", EndpointConfigName="c")
    sm = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
    assert {(a, r) for a, r, _ in found} == {("sagemaker:CreateEndpoint", f"{sm}:endpoint/e"),
                                             ("sagemaker:CreateEndpoint", f"{sm}:endpoint-config/c")}


def test_a_multi_object_delete_is_checked_per_key():
    found = checks(_wire("s3", "delete_objects", Bucket="b", Delete={"Objects": [
        {"Key": "k1"}, {"Key": "k2", "VersionId": "v2"}]}))
    assert found == [Check("s3:DeleteObject", "arn:aws:s3:::b/k1"), Check("s3:DeleteObjectVersion", "arn:aws:s3:::b/k2")]
