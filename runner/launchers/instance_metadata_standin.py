"""A stand-in for the EC2 instance metadata service (IMDSv2 only), on loopback.

The local target's stand-in instance runs its user data with
``AWS_EC2_METADATA_SERVICE_ENDPOINT`` pointing here and no other AWS credentials, so the AWS SDK
inside the script gets its credentials the way it does on the instance: a session token first
(``PUT /latest/api/token`` with a TTL header), then the instance profile's role name and that
role's temporary credentials. As on an instance launched with ``HttpTokens: required``, a GET
without a valid token is refused (401), and a token request carrying ``X-Forwarded-For`` is
refused (403). The credentials are the emulator's STS credentials for the instance profile's role.

Source: EC2 User Guide, "Use the Instance Metadata Service to access instance metadata" (IMDSv2:
token TTL 1 to 21600 seconds, X-aws-ec2-metadata-token, 401 for a missing or invalid token) and
"Retrieve security credentials from instance metadata" (the credentials document's fields).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
CREDENTIALS_PATH = "/latest/meta-data/iam/security-credentials/"
MAX_TTL_S = 21600
LOOPBACK = "127.0.0.1"


@dataclass
class InstanceIdentity:
    """What the metadata service tells about one instance."""

    instance_id: str
    role_name: str
    credentials: dict[str, str]  # AccessKeyId, SecretAccessKey, Token, Expiration (ISO 8601)
    region: str = "us-east-1"
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)


class InstanceMetadataStandIn:
    """``with InstanceMetadataStandIn(identity) as imds:`` serves ``imds.url`` until the block ends."""

    def __init__(self, identity: InstanceIdentity) -> None:
        self.identity = identity
        self._tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((LOOPBACK, 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}/"

    def __enter__(self) -> InstanceMetadataStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what the handler asks -------------------------------------------------------------------
    def issue_token(self, ttl_s: int) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + ttl_s
        return token

    def token_is_valid(self, token: str | None) -> bool:
        with self._lock:
            expiry = self._tokens.get(token or "")
        return expiry is not None and time.monotonic() < expiry

    def document(self, path: str) -> str | None:
        """The body of a metadata path, or None (404)."""
        ident = self.identity
        if path == CREDENTIALS_PATH:
            return ident.role_name
        if path == CREDENTIALS_PATH + ident.role_name:
            return json.dumps({"Code": "Success", "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "Type": "AWS-HMAC", **ident.credentials})
        return {
            "/latest/meta-data/instance-id": ident.instance_id,
            "/latest/meta-data/placement/region": ident.region,
            "/latest/meta-data/iam/info": json.dumps({"Code": "Success", "InstanceProfileArn": "",
                                                       "InstanceProfileId": ""}),
        }.get(path)


def _handler_for(service: InstanceMetadataStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

        def _answer(self, status: int, body: str = "") -> None:
            data = body.encode()
            service.identity.requests.append((self.command, self.path, status))
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if self.path != TOKEN_PATH:
                self._answer(404)
                return
            if self.headers.get("X-Forwarded-For"):
                self._answer(403, "Forbidden")
                return
            ttl = self.headers.get(TTL_HEADER, "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= MAX_TTL_S:
                self._answer(400, "Bad Request")
                return
            self._answer(200, service.issue_token(int(ttl)))

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if not service.token_is_valid(self.headers.get(TOKEN_HEADER)):
                self._answer(401, "Unauthorized")  # HttpTokens: required
                return
            body = service.document(self.path)
            self._answer(200, body) if body is not None else self._answer(404, "Not Found")

    return Handler
