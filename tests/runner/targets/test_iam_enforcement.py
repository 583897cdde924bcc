"""The local target authorises the calls a role makes at run time (runner/targets/iam_enforcement.py):
S3 and InvokeEndpoint signed with AssumeRole credentials are checked against the role's policies."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from runner.targets.iam_enforcement import runtime_request, s3_request

TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/b/data/x.png", "", ("s3:GetObject", "arn:aws:s3:::b/data/x.png")),
    ("HEAD", "/b/a%20b.png", "", ("s3:GetObject", "arn:aws:s3:::b/a b.png")),
    ("PUT", "/b/artifacts/model.tar.gz", "", ("s3:PutObject", "arn:aws:s3:::b/artifacts/model.tar.gz")),
    ("POST", "/b/big.bin", "uploads", ("s3:PutObject", "arn:aws:s3:::b/big.bin")),
    ("DELETE", "/b/k", "", ("s3:DeleteObject", "arn:aws:s3:::b/k")),
    ("GET", "/b", "list-type=2&prefix=data%2F", ("s3:ListBucket", "arn:aws:s3:::b")),
    ("GET", "/b", "policy", None),
    ("GET", "/", "", None),
])
def test_s3_requests_map_to_their_action_and_resource(method, path, query, expected):
    assert s3_request(method, path, query) == expected


def test_invoke_endpoint_maps_to_the_endpoint_arn():
    assert runtime_request("/endpoints/My-Endpoint/invocations", "eu-west-1", "111122223333") == (
        "sagemaker:InvokeEndpoint", "arn:aws:sagemaker:eu-west-1:111122223333:endpoint/my-endpoint")
    assert runtime_request("/endpoints/x", "eu-west-1", "1") is None


def test_a_role_gets_exactly_what_its_policies_allow(local_target, stack_name):
    iam, s3 = local_target.client("iam"), local_target.client("s3")
    bucket = f"{stack_name}-enforce"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="allowed/a.txt", Body=b"a")
    s3.put_object(Bucket=bucket, Key="secret/b.txt", Body=b"b")
    role = iam.create_role(RoleName=f"{stack_name}-enforce", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/allowed/*"},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/allowed/denied*"}]}))
    as_role = local_target.role_client("s3", role["Arn"], "test")

    assert as_role.get_object(Bucket=bucket, Key="allowed/a.txt")["Body"].read() == b"a"
    for call, key, action in ((as_role.get_object, "secret/b.txt", "s3:GetObject"),
                              (as_role.get_object, "allowed/denied.txt", "s3:GetObject")):
        with pytest.raises(ClientError) as denied:
            call(Bucket=bucket, Key=key)
        error = denied.value.response["Error"]
        assert error["Code"] == "AccessDenied"
        assert (f"assumed-role/{role['RoleName']}/test is not authorized to perform: {action} on resource: "
                f"arn:aws:s3:::{bucket}/{key}") in error["Message"]
    with pytest.raises(ClientError, match="AccessDenied"):
        as_role.put_object(Bucket=bucket, Key="allowed/new.txt", Body=b"n")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="allowed/new")  # nothing was written
    # The emulator's own identity (the one running sagegate) is not a role: not checked here.
    assert s3.get_object(Bucket=bucket, Key="secret/b.txt")["Body"].read() == b"b"


def test_invoke_endpoint_as_a_role_without_the_permission_is_denied(local_target, stack_name):
    iam = local_target.client("iam")
    role = iam.create_role(RoleName=f"{stack_name}-caller", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
    runtime = local_target.role_client("sagemaker-runtime", role["Arn"], "fn")
    with pytest.raises(ClientError) as denied:
        runtime.invoke_endpoint(EndpointName=f"{stack_name}-endpoint", Body=b"{}", ContentType="application/json")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "sagemaker:InvokeEndpoint on resource: arn:aws:sagemaker:us-east-1:123456789012:endpoint/" in str(
        denied.value)
