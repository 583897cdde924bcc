"""The Lambda function in front of the SageMaker endpoint: ``lambda_handler(event, context)``.

boto3 and the standard library only (cold start). The ``sagemaker-runtime`` client is created
once per container, in the init phase when running in Lambda, with explicit timeouts and
botocore's standard retry mode; the endpoint URL comes from botocore's own configuration
(``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` on the local target).

Events accepted
---------------
* API Gateway REST (v1) proxy, API Gateway HTTP API (v2) and Lambda Function URL events: ``POST``
  with the image as the body (``Content-Type: image/jpeg|image/png|application/x-image``,
  ``application/octet-stream`` or none: sniffed), or JSON as the endpoint takes it
  (``{"image": "<base64>"}``, ``{"instances": [...]}``); ``isBase64Encoded`` bodies are decoded;
  ``?top_k=N`` sets k.
* Application Load Balancer (Lambda target group) events, with or without multi-value headers:
  with them enabled the headers and the query come in ``multiValueHeaders`` and
  ``multiValueQueryStringParameters`` (the last value of a repeated name counts, as API Gateway's
  single-value fields do), and the response carries ``multiValueHeaders``; ALB does not decode
  URL-encoded query parameters, so they are decoded here.
* A direct invocation: ``{"image": "<base64>", "content_type": "image/png", "top_k": 3}``, or the
  JSON the endpoint takes (``{"instances": [...]}``, ``{"url": "..."}``) passed through unchanged.

Response (always the proxy shape)
---------------------------------
``{"statusCode": int, "headers": {"Content-Type": "application/json", "X-Request-Id": id},
"body": "<json>", "isBase64Encoded": false}``. 200: the endpoint's
``{"predictions": [[{label, index, score}, ...], ...]}``. Errors: ``{"error": {"code",
"message"}, "requestId"}`` with 400 (bad event, body or image; the model's own 4xx keeps its code:
406, 413, 415), 405 (not POST), 413 (over 6 MB, Lambda's payload limit), 502 (the model failed,
the endpoint refused the call or cannot be reached), 503 (throttled or not ready), 504 (timed
out), 500 (the function itself is misconfigured). Never a stack trace, an ARN or the context.

Environment
-----------
``ENDPOINT_NAME`` (required), ``CONTENT_TYPE`` (``application/x-image``: for an image body whose
type is not stated and cannot be sniffed), ``TOP_K`` (5), ``CONNECT_TIMEOUT_S`` (2),
``READ_TIMEOUT_S`` (10), ``MAX_ATTEMPTS`` (3; keep ``READ_TIMEOUT_S × MAX_ATTEMPTS`` under the
function's timeout).

Logs: one JSON line per invocation on stdout with ``request_id``, ``source``, ``status``,
``latency_ms`` (and ``endpoint_ms``, ``error_code``, ``error_message``, ``retries`` when known).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "application/x-image"})
JSON_TYPE = "application/json"
THROTTLE_CODES = frozenset(
    {
        "ServiceUnavailable",
        "ModelNotReadyException",
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
    }
)
FORWARDED_MODEL_STATUSES = frozenset({400, 406, 413, 415})

_client = None  # once per container: reused by every warm invocation (connection pool included)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Settings:
    """The function's configuration, from the environment the stack sets."""

    endpoint_name: str
    content_type: str = "application/x-image"
    top_k: int = 5
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 10.0
    max_attempts: int = 3

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ

        def number(name: str, default: float, kind: type) -> Any:
            raw = env.get(name, "").strip()
            try:
                value = kind(raw) if raw else default
            except ValueError:
                value = -1
            if value <= 0:
                raise ConfigurationError(f"{name}={raw!r} is not a positive {kind.__name__}")
            return value

        name = env.get("ENDPOINT_NAME", "").strip()
        if not name:
            raise ConfigurationError("ENDPOINT_NAME is not set")
        content_type = env.get("CONTENT_TYPE", "").strip().lower() or cls.content_type
        if content_type not in IMAGE_TYPES:
            raise ConfigurationError(f"CONTENT_TYPE={content_type!r} is not one of {sorted(IMAGE_TYPES)}")
        return cls(
            endpoint_name=name,
            content_type=content_type,
            top_k=number("TOP_K", cls.top_k, int),
            connect_timeout_s=number("CONNECT_TIMEOUT_S", cls.connect_timeout_s, float),
            read_timeout_s=number("READ_TIMEOUT_S", cls.read_timeout_s, float),
            max_attempts=number("MAX_ATTEMPTS", cls.max_attempts, int),
        )


@dataclass(frozen=True)
class EndpointRequest:
    """What to send to InvokeEndpoint."""

    body: bytes
    content_type: str
    accept: str
    source: str


class ConfigurationError(Exception):
    """The function's environment is wrong: a 500, the operator must fix it."""


class RequestError(Exception):
    """The caller's event or body is unusable: a 4xx with a short message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# --------------------------------------------------------------------------- client


def make_client(settings: Settings):  # -> botocore.client.SageMakerRuntime (generated class)
    """The sagemaker-runtime client: explicit timeouts, standard retries (throttling backs off)."""
    config = Config(
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        retries={"mode": "standard", "total_max_attempts": settings.max_attempts},  # incl. the first call
        tcp_keepalive=True,
        user_agent_extra="sagegate-lambda",
    )
    return boto3.client("sagemaker-runtime", config=config)


def get_client(settings: Settings):  # noqa: ANN201 (see make_client)
    global _client
    if _client is None:
        _client = make_client(settings)
    return _client


# --------------------------------------------------------------------------- events


def _media_type(value: object) -> str:
    return str(value or "").split(";", 1)[0].strip().lower()


def _b64decode(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise RequestError(400, "BadRequest", f"{what} must be a base64 string")
    if len(text) > MAX_PAYLOAD_BYTES * 4 // 3 + 8:
        raise RequestError(413, "PayloadTooLarge", f"{what} is larger than {MAX_PAYLOAD_BYTES} bytes")
    text = text.strip()
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, "BadRequest", f"{what} is not valid base64") from None


def _sniff(data: bytes, fallback: str) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.lstrip()[:1] in (b"{", b"["):
        return JSON_TYPE
    return fallback


def _top_k(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RequestError(400, "BadRequest", f"{where} must be a positive integer")
    try:
        k = int(value)
    except ValueError:
        raise RequestError(400, "BadRequest", f"{where} must be a positive integer") from None
    if not 1 <= k <= 1000:
        raise RequestError(400, "BadRequest", f"{where} must be between 1 and 1000")
    return k


def _accept(top_k: int) -> str:
    return f"{JSON_TYPE}; top_k={top_k}"


def _check_size(data: bytes) -> bytes:
    if len(data) > MAX_PAYLOAD_BYTES:
        raise RequestError(
            413, "PayloadTooLarge", f"body is {len(data)} bytes; the limit is {MAX_PAYLOAD_BYTES}"
        )
    if not data:
        raise RequestError(400, "BadRequest", "body is empty")
    return data


def _event_source(event: dict) -> str:
    context = event.get("requestContext")
    if isinstance(context, dict) and isinstance(context.get("elb"), dict):
        return "alb"
    if event.get("version") == "2.0" and isinstance(context, dict) and isinstance(context.get("http"), dict):
        return "function-url" if ".lambda-url." in str(context.get("domainName", "")) else "apigw-v2"
    if "httpMethod" in event and isinstance(context, dict):
        return "apigw-v1"
    if "body" in event:
        return "proxy"  # a proxy-shaped test event without requestContext (consoles, tools)
    return "direct"


def parse_event(event: object, settings: Settings) -> EndpointRequest:
    """Any supported event → the InvokeEndpoint request; raises :class:`RequestError`."""
    if not isinstance(event, dict):
        raise RequestError(400, "BadRequest", "the event must be a JSON object")
    source = _event_source(event)
    if source == "direct":
        return _parse_direct(event, settings)
    return _parse_proxy(event, source, settings)


def _parse_direct(event: dict, settings: Settings) -> EndpointRequest:
    top_k = _top_k(event["top_k"], "top_k") if "top_k" in event else settings.top_k
    if "image" in event:
        data = _check_size(_b64decode(event["image"], "image"))
        declared = _media_type(event.get("content_type"))
        if declared and declared not in IMAGE_TYPES:
            raise RequestError(
                415, "UnsupportedMediaType", f"content_type must be one of {sorted(IMAGE_TYPES)}"
            )
        content_type = declared or _sniff(data, settings.content_type)
        if content_type == JSON_TYPE:
            content_type = settings.content_type
        return EndpointRequest(data, content_type, _accept(top_k), "direct")
    if "instances" in event or "url" in event:
        body = _check_size(json.dumps(event, separators=(",", ":")).encode("utf-8"))
        return EndpointRequest(body, JSON_TYPE, _accept(top_k), "direct")
    raise RequestError(
        400,
        "BadRequest",
        'unrecognised event: send {"image": "<base64>"}, {"instances": [...]}, '
        "or an API Gateway / Function URL request",
    )


def _single_values(event: dict, single: str, multi: str) -> dict:
    """A name → value map from the single-value field, or else from the multi-value one (ALB with
    multi-value headers enabled sends only that; API Gateway REST sends both): the last value of a
    repeated name, as API Gateway's single-value fields keep it."""
    values = event.get(single)
    if isinstance(values, dict) and values:
        return values
    multi_values = event.get(multi)
    if not isinstance(multi_values, dict):
        return values if isinstance(values, dict) else {}
    return {k: v[-1] for k, v in multi_values.items() if isinstance(v, list) and v}


def _for_source(event: Any, response: dict) -> dict:
    """ALB's response shape: a status description, and ``multiValueHeaders`` when the target
    group has multi-value headers enabled (its events then carry ``multiValueHeaders``)."""
    if not (isinstance(event, dict) and _event_source(event) == "alb"):
        return response
    reason = _REASONS.get(response["statusCode"], "")
    response = {**response, "statusDescription": f"{response['statusCode']} {reason}".strip()}
    if isinstance(event.get("multiValueHeaders"), dict):
        response["multiValueHeaders"] = {k: [v] for k, v in response.pop("headers").items()}
    return response


_REASONS = {
    200: "OK", 400: "Bad Request", 405: "Method Not Allowed", 406: "Not Acceptable", 413: "Payload Too Large",
    415: "Unsupported Media Type", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}


def _parse_proxy(event: dict, source: str, settings: Settings) -> EndpointRequest:
    context = event.get("requestContext") if isinstance(event.get("requestContext"), dict) else {}
    method = (
        event.get("httpMethod")
        if source in ("apigw-v1", "alb", "proxy")
        else context.get("http", {}).get("method")
    )
    if method is not None and str(method).upper() != "POST":
        raise RequestError(405, "MethodNotAllowed", "use POST with the image as the body")
    headers = {str(k).lower(): v for k, v in _single_values(event, "headers", "multiValueHeaders").items()}
    query = _single_values(event, "queryStringParameters", "multiValueQueryStringParameters")
    if source == "alb":  # ALB passes the query as the client sent it, still URL-encoded
        query = {unquote_plus(str(k)): unquote_plus(str(v)) for k, v in query.items()}
    top_k = _top_k(query["top_k"], "query parameter top_k") if "top_k" in query else settings.top_k

    body = event.get("body")
    if body is None or body == "":
        raise RequestError(400, "BadRequest", "the request has no body")
    if not isinstance(body, str):
        raise RequestError(400, "BadRequest", "the request body must be a string")
    if event.get("isBase64Encoded") is True:
        data = _check_size(_b64decode(body, "body"))
    else:
        if len(body) > MAX_PAYLOAD_BYTES:
            raise RequestError(413, "PayloadTooLarge", f"body is larger than {MAX_PAYLOAD_BYTES} bytes")
        data = _check_size(body.encode("utf-8", "surrogatepass"))

    declared = _media_type(headers.get("content-type"))
    if declared in ("", "application/octet-stream"):
        declared = _sniff(data, settings.content_type)
    if declared == JSON_TYPE:
        # SageMaker's serving toolkit decodes a JSON body as UTF-8 before input_fn: anything else
        # (UTF-16, stray bytes) is a 500 from the endpoint, so it is the caller's 400 here.
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError(400, "BadRequest", "the JSON body must be UTF-8") from None
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            raise RequestError(400, "BadRequest", "the body is not valid JSON") from None
        if not isinstance(doc, dict | list):
            raise RequestError(
                400, "BadRequest", 'the JSON body must be an object such as {"image": "<base64>"}'
            )
        return EndpointRequest(data, JSON_TYPE, _accept(top_k), source)
    if declared in IMAGE_TYPES:
        return EndpointRequest(data, declared, _accept(top_k), source)
    raise RequestError(
        415, "UnsupportedMediaType", f"Content-Type must be one of {sorted(IMAGE_TYPES | {JSON_TYPE})}"
    )


# --------------------------------------------------------------------------- endpoint errors


def _model_message(response: dict) -> str:
    """The model's own message for a 4xx, reduced to one safe line (no traces, no ARNs)."""
    original = response.get("OriginalMessage")
    if not isinstance(original, str):
        return "the model rejected the input"
    try:
        doc = json.loads(original)
        original = doc["error"]["message"] if isinstance(doc, dict) else original
    except (ValueError, KeyError, TypeError):
        pass
    line = str(original).strip().splitlines()[0][:300] if str(original).strip() else ""
    if not line or "arn:" in line or "Traceback" in line:
        return "the model rejected the input"
    return line


def classify_client_error(error: ClientError) -> RequestError:
    """InvokeEndpoint's error shapes → the function's answer."""
    response = error.response
    code = response.get("Error", {}).get("Code", "")
    http = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == "ModelError":
        original = response.get("OriginalStatusCode")
        if isinstance(original, int) and 400 <= original < 500:
            status = original if original in FORWARDED_MODEL_STATUSES else 400
            return RequestError(status, "InvalidInput", _model_message(response))
        return RequestError(502, "ModelError", "the model failed on this request")
    if code in THROTTLE_CODES or http in (429, 503):
        return RequestError(503, "EndpointBusy", "the endpoint is busy; retry shortly")
    if http == 413:
        return RequestError(413, "PayloadTooLarge", "the endpoint refused the body as too large")
    return RequestError(502, "EndpointError", "the endpoint refused the request")


def classify_botocore_error(error: BotoCoreError) -> RequestError | ConfigurationError:
    if isinstance(error, ReadTimeoutError | ConnectTimeoutError):
        return RequestError(504, "EndpointTimeout", "the endpoint did not answer in time")
    if isinstance(error, NoCredentialsError | PartialCredentialsError | NoRegionError):
        return ConfigurationError(type(error).__name__)
    return RequestError(502, "EndpointUnreachable", "the endpoint could not be reached")


# --------------------------------------------------------------------------- handler


def _response(status: int, body: str, request_id: str, extra_headers: dict[str, str] | None = None) -> dict:
    headers = {"Content-Type": JSON_TYPE, "X-Request-Id": request_id, **(extra_headers or {})}
    return {"statusCode": status, "headers": headers, "body": body, "isBase64Encoded": False}


_ARN = re.compile(r"arn:[\w-]+:[\w-]+:[\w-]*:(\d{12})?:")
_ACCOUNT = re.compile(r"\b\d{12}\b")


def _without_account(message: str | None) -> str | None:
    """AWS's error messages name ARNs and the account id (ModelError's log-stream ARN,
    AccessDenied's role): the log keeps the resource part, which says what failed, and drops
    the account, which logs shipped elsewhere should not carry."""
    if message is None:
        return None
    return _ACCOUNT.sub("<account>", _ARN.sub("", message))


def _error(status: int, code: str, message: str, request_id: str) -> dict:
    extra = {"Retry-After": "1"} if status == 503 else {"Allow": "POST"} if status == 405 else None
    body = json.dumps({"error": {"code": code, "message": message}, "requestId": request_id})
    return _response(status, body, request_id, extra)


def _log(level: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"level": level, **fields}, default=str) + "\n")
    sys.stdout.flush()


def lambda_handler(event: Any, context: Any) -> dict:
    """Invoke the endpoint with the event's image; always returns a proxy-shaped response."""
    started = time.perf_counter()
    request_id = str(getattr(context, "aws_request_id", "") or uuid.uuid4())
    record: dict[str, Any] = {"request_id": request_id, "source": "unknown"}
    try:
        response = _handle(event, request_id, record)
    except Exception as exc:  # a bug: answered and logged without its trace or message
        record["error_type"] = type(exc).__name__
        response = _error(500, "InternalError", "internal error", request_id)
    response = _for_source(event, response)
    record["status"] = response["statusCode"]
    record["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
    _log("ERROR" if response["statusCode"] >= 500 else "INFO", **record)
    return response


def _handle(event: Any, request_id: str, record: dict[str, Any]) -> dict:
    try:
        settings = Settings.from_env()
        client = get_client(settings)
    except (ConfigurationError, BotoCoreError) as exc:
        record["config_error"] = str(exc) if isinstance(exc, ConfigurationError) else type(exc).__name__
        return _error(500, "FunctionMisconfigured", "the function is misconfigured", request_id)
    try:
        request = parse_event(event, settings)
    except RequestError as exc:
        record["error_code"] = exc.code
        return _error(exc.status, exc.code, exc.message, request_id)
    record.update(source=request.source, bytes_in=len(request.body), content_type=request.content_type)

    called = time.perf_counter()
    try:
        result = client.invoke_endpoint(
            EndpointName=settings.endpoint_name,
            Body=request.body,
            ContentType=request.content_type,
            Accept=request.accept,
        )
        payload = result["Body"].read()
    except ClientError as exc:
        outcome = classify_client_error(exc)
        error = exc.response.get("Error", {})
        record.update(
            error_code=error.get("Code"),
            # The operator's log says why (e.g. AccessDenied naming the role, action and resource);
            # the caller only gets the classified answer. A ModelError's message is the container's
            # body (a traceback): it is in the endpoint's own log, not repeated here.
            error_message=None if error.get("Code") == "ModelError" else _without_account(error.get("Message")),
            retries=exc.response.get("ResponseMetadata", {}).get("RetryAttempts"),
        )
        return _error(outcome.status, outcome.code, outcome.message, request_id)
    except BotoCoreError as exc:
        outcome = classify_botocore_error(exc)
        record["error_code"] = type(exc).__name__
        if isinstance(outcome, ConfigurationError):
            return _error(500, "FunctionMisconfigured", "the function is misconfigured", request_id)
        return _error(outcome.status, outcome.code, outcome.message, request_id)
    finally:
        record["endpoint_ms"] = round((time.perf_counter() - called) * 1000, 3)
    record["retries"] = result.get("ResponseMetadata", {}).get("RetryAttempts")
    try:
        text = payload.decode("utf-8")
        if not isinstance(json.loads(text), dict):
            raise ValueError("not an object")
    except ValueError:
        record["error_code"] = "NonJsonAnswer"
        return _error(502, "EndpointError", "the endpoint returned an unreadable answer", request_id)
    return _response(200, text, request_id)


# Lambda sets AWS_LAMBDA_INITIALIZATION_TYPE during init: build the client there, where provisioned
# concurrency pays for it ahead of traffic, instead of on the first request. Outside Lambda
# (tests, benchmarks, local runtime) the first invocation builds it.
if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"):
    try:
        get_client(Settings.from_env())
    except (ConfigurationError, BotoCoreError):
        pass  # reported by the first invocation, with the request id
