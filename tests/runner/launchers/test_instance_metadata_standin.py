"""The metadata stand-in answers as IMDSv2 does, and botocore takes its credentials from it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from runner.launchers.instance_metadata_standin import (
    CREDENTIALS_PATH,
    TOKEN_HEADER,
    TOKEN_PATH,
    TTL_HEADER,
    InstanceIdentity,
    InstanceMetadataStandIn,
)

CREDS = {"AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": "secret", "Token": "session",
         "Expiration": "2099-01-01T00:00:00Z"}


@pytest.fixture
def imds():
    with InstanceMetadataStandIn(InstanceIdentity("i-0123456789abcdef0", "sagegate-ec2", dict(CREDS))) as service:
        yield service


def _call(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _token(imds) -> str:
    status, token = _call(imds.url.rstrip("/") + TOKEN_PATH, "PUT", {TTL_HEADER: "21600"})
    assert status == 200
    return token


def test_a_get_without_a_session_token_is_refused(imds):
    assert _call(imds.url.rstrip("/") + "/latest/meta-data/instance-id")[0] == 401
    assert _call(imds.url.rstrip("/") + "/latest/meta-data/instance-id", headers={TOKEN_HEADER: "forged"})[0] == 401


@pytest.mark.parametrize(("headers", "status"), [({}, 400), ({TTL_HEADER: "0"}, 400), ({TTL_HEADER: "21601"}, 400),
                                                  ({TTL_HEADER: "60", "X-Forwarded-For": "10.0.0.1"}, 403)])
def test_a_token_request_out_of_bounds_is_refused(imds, headers, status):
    assert _call(imds.url.rstrip("/") + TOKEN_PATH, "PUT", headers)[0] == status


def test_with_a_token_it_names_the_role_its_credentials_and_the_instance(imds):
    base, headers = imds.url.rstrip("/"), {TOKEN_HEADER: _token(imds)}
    assert _call(base + CREDENTIALS_PATH, headers=headers) == (200, "sagegate-ec2")
    status, body = _call(base + CREDENTIALS_PATH + "sagegate-ec2", headers=headers)
    document = json.loads(body)
    assert status == 200 and document["Code"] == "Success" and document["Type"] == "AWS-HMAC"
    assert {k: document[k] for k in CREDS} == CREDS
    assert _call(base + "/latest/meta-data/instance-id", headers=headers) == (200, "i-0123456789abcdef0")
    assert _call(base + CREDENTIALS_PATH + "another-role", headers=headers)[0] == 404


def test_botocore_reads_the_instance_profiles_credentials_from_it(imds, monkeypatch):
    import botocore.session

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_EC2_METADATA_DISABLED", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
    credentials = botocore.session.Session().get_credentials()
    assert credentials is not None and credentials.method == "iam-role"
    frozen = credentials.get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == ("ASIAEXAMPLE", "secret", "session")
    assert ("PUT", TOKEN_PATH, 200) in imds.identity.requests
