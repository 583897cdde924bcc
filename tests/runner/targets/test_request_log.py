"""requests.jsonl: what a run sent, as sent, secrets and payloads redacted, refused requests absent."""

from __future__ import annotations

import hashlib
import json

import botocore.session
import pytest

from runner.targets.request_log import RequestLog, redact
from runner.targets.request_validation import RequestRejected


def test_sent_requests_are_logged_and_refused_ones_are_not(local_target, stack_name, tmp_path):
    log = RequestLog()
    log.attach(local_target)
    s3, iam = local_target.client("s3"), local_target.client("iam")
    bucket = f"{stack_name}-log"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a.bin", Body=b"secret model bytes")
    with pytest.raises(RequestRejected):
        iam.create_role(RoleName="has space", AssumeRolePolicyDocument="{}")  # RoleName pattern: refused
    lines = [json.loads(line) for line in log.write(tmp_path / "requests.jsonl").read_text().splitlines()]
    assert [(e["service"], e["operation"]) for e in lines] == [("s3", "CreateBucket"), ("s3", "PutObject")]
    assert s3.get_object(Bucket=bucket, Key="a.bin")["Body"].read() == b"secret model bytes"  # body intact
    digest = hashlib.sha256(b"secret model bytes").hexdigest()[:16]
    assert lines[1]["params"] == {"Bucket": bucket, "Key": "a.bin", "Body": f"<18 bytes sha256 {digest}>"}


def test_sensitive_members_are_redacted_by_the_service_model():
    shape = botocore.session.get_session().get_service_model("lambda").operation_model("CreateFunction").input_shape
    params = {"FunctionName": "f", "Role": "arn:aws:iam::123456789012:role/r", "Code": {"ZipFile": b"PK\x03\x04"},
              "Environment": {"Variables": {"TOKEN": "hunter2"}}}
    redacted = redact(params, shape)
    assert redacted["FunctionName"] == "f" and redacted["Role"] == params["Role"]
    assert redacted["Code"]["ZipFile"] == "<sensitive>"  # the model marks the zip itself sensitive
    assert "hunter2" not in json.dumps(redacted)


def test_a_binary_payload_is_shown_by_size_and_digest():
    assert redact({"Body": b"abc"}, None) == {"Body": f"<3 bytes sha256 {hashlib.sha256(b'abc').hexdigest()[:16]}>"}
