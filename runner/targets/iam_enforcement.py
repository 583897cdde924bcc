"""The local target enforces IAM on the calls a stack's roles make at run time.

moto checks no identity policy unless told to, and then actions only. The data-plane and job
processes of the local target run as their roles (credentials from ``AssumeRole`` of the
generated role, ``Target.role_environment``); this WSGI middleware, in front of the emulator,
authorises each call signed with such credentials against the role's policies (inline and
attached, evaluated as IAM does: runner/core/iam_eval.py) before the emulator serves it. A call
the role may not make gets AWS's AccessDenied answer naming the action and the resource. Calls
signed with the emulator's own keys (the identity running sagegate) are not checked here.

Covered: every request runner/targets/iam_requests.py can read (any operation of the installed
botocore models: its IAM actions, resources and context, with what AWS checks beside the call, such
as ``iam:PassRole``): what endpoints, functions and jobs call at run time, and every call of the
deployer when it runs as a role (tests/runner/deploy/test_deployer_policy_e2e.py). ``s3_request``
and ``runtime_request`` are the hand mappings this replaced, kept as a cross-check in the tests.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

from runner.core import iam_eval
from runner.targets import iam_requests

_ACCESS_KEY = re.compile(r"Credential=([A-Z0-9]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
_INVOKE_ENDPOINT = re.compile(r"^/endpoints/([^/]+)/invocations/?$")
_RUNTIME_ERROR_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.sagemaker.runtime/"
Request = tuple[str, str]  # (action, resource ARN)


def s3_request(method: str, path: str, query: str) -> Request | None:
    """The IAM action and resource of a path-style S3 request (Service Authorization Reference, S3)."""
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    if not bucket:
        return None
    params = parse_qs(query, keep_blank_values=True)
    if not key:
        if method in ("GET", "HEAD") and not params.keys() - {"list-type", "prefix", "delimiter", "max-keys",
                                                               "continuation-token", "start-after", "encoding-type"}:
            return "s3:ListBucket", f"arn:aws:s3:::{bucket}"
        return None  # bucket configuration calls: the deployer's, not a role's at run time
    obj = f"arn:aws:s3:::{bucket}/{key}"
    if method in ("GET", "HEAD"):
        return "s3:GetObject", obj
    if method in ("PUT", "POST"):
        return "s3:PutObject", obj  # single and multipart uploads
    if method == "DELETE":
        return "s3:DeleteObject", obj
    return None


def runtime_request(path: str, region: str, account: str) -> Request | None:
    match = _INVOKE_ENDPOINT.match(path)
    if not match:
        return None
    # SageMaker writes names in lower case in its ARNs.
    return "sagemaker:InvokeEndpoint", f"arn:aws:sagemaker:{region}:{account}:endpoint/{unquote(match.group(1)).lower()}"


def role_documents(account: str, role_arn: str) -> list[Any] | None:
    """The role's inline and attached (default version) policy documents; None: no such role."""
    from runner.targets.moto_gaps import role_as_iam_holds_it

    view = role_as_iam_holds_it(account, role_arn)
    return None if view is None else list(view.documents)


class RoleCallAuthorizer:
    """WSGI middleware: run-time calls signed as one of the account's roles are authorised first."""

    def __init__(self, app: Callable[..., Iterable[bytes]],
                 documents_of: Callable[[str, str], list[Any] | None] = role_documents) -> None:
        self.app = app
        self.documents_of = documents_of
        # Refusals, newest last: (role ARN, action, resource), for reports and tests.
        self.denied: list[tuple[str, str, str]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        refusal = self._refusal(environ)
        if refusal is None:
            return self.app(environ, start_response)
        status, headers, body = refusal
        start_response(f"{status} Forbidden", [*headers.items(), ("Content-Length", str(len(body)))])
        return [body]

    def _refusal(self, environ: dict[str, Any]) -> tuple[int, dict[str, str], bytes] | None:
        signed = _ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION", ""))
        if signed is None or not signed.group(1).startswith("ASIA"):  # only temporary (role) credentials
            return None
        access_key, region, service = signed.groups()
        assumed = _assumed_role(access_key)
        if assumed is None:
            return None
        account, role_arn, session = assumed
        request = _wire_request(environ, service, region, account)
        checks = iam_requests.checks(request)
        if not checks:
            return None
        documents = self.documents_of(account, role_arn)
        for check in checks:
            if documents is not None and iam_eval.allows(documents, check.action, check.resource, check.context):
                continue
            return self._deny(account, role_arn, session, service, request, check.action, check.resource)
        return None

    def _deny(self, account: str, role_arn: str, session: str, service: str, request: iam_requests.WireRequest,
              action: str, resource: str) -> tuple[int, dict[str, str], bytes]:
        self.denied.append((role_arn, action, resource))
        caller = f"arn:aws:sts::{account}:assumed-role/{role_arn.rsplit('/', 1)[-1]}/{session}"
        # AWS's words (IAM User Guide, "Troubleshoot access denied error messages").
        message = (f"User: {caller} is not authorized to perform: {action} on resource: {resource} because no "
                   "identity-based policy allows the " + action + " action")
        if service == "s3":
            body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
                    f"<Message>{escape(message)}</Message><Resource>{escape(resource)}</Resource></Error>").encode()
            return 403, {"Content-Type": "application/xml"}, body
        if service in ("iam", "sts", "ec2"):  # query protocol
            body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                    f"<Message>{escape(message)}</Message></Error><RequestId>sagegate</RequestId>"
                    "</ErrorResponse>").encode()
            return 403, {"Content-Type": "text/xml"}, body
        if service == "sagemaker" and not request.headers.get("x-amz-target"):  # SageMaker Runtime
            return 403, {"Content-Type": "application/json", "x-amzn-ErrorType": "AccessDeniedException" +
                         _RUNTIME_ERROR_SUFFIX}, json.dumps({"message": message}).encode()
        return 403, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": "AccessDeniedException"}, \
            json.dumps({"__type": "AccessDeniedException", "message": message, "Message": message}).encode()


def _wire_request(environ: dict[str, Any], service: str, region: str, account: str) -> iam_requests.WireRequest:
    """The request as iam_requests reads it; the body is read (and put back) only when it says
    what is called: RPC bodies, forms, and S3's multi-object delete, never an upload's payload."""
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    query = environ.get("QUERY_STRING", "")
    content_type = headers.get("content-type", "")
    wanted = (("delete" in parse_qs(query, keep_blank_values=True)) if service == "s3" else
              bool(headers.get("x-amz-target")) or any(k in content_type for k in ("json", "form", "cbor")))
    body = b""
    if wanted:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
    return iam_requests.WireRequest(service, region, account, environ.get("REQUEST_METHOD", "GET"),
                                    environ.get("PATH_INFO", ""), query, headers, body)


def _assumed_role(access_key: str) -> tuple[str, str, str] | None:
    """(account, role ARN, session name) of temporary credentials the emulator's STS issued."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sts.models import sts_backends

    role = sts_backends[DEFAULT_ACCOUNT_ID]["aws"].get_assumed_role_from_access_key(access_key)
    if role is None:
        return None
    return role.account_id, role.role_arn, role.session_name
