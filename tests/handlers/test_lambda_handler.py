"""handlers/lambda_function.py against the local endpoint (handlers.serve), with real event shapes."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass

import pytest
from botocore.exceptions import ClientError
from handlers_testkit import CLASSES, ENDPOINT_NAME, load_event, set_function_env

from handlers import inference, lambda_function
from handlers.serve import start_server

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:sagegate-invoke"


@dataclass
class FakeContext:
    """The attributes of Lambda's context object that a handler may touch."""

    aws_request_id: str = "8f5a7a1e-0000-4000-8000-000000000001"
    function_name: str = "sagegate-invoke"
    invoked_function_arn: str = FUNCTION_ARN
    memory_limit_in_mb: int = 512
    log_group_name: str = "/aws/lambda/sagegate-invoke"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def function_env(monkeypatch, server):
    set_function_env(monkeypatch, server.url)
    return monkeypatch


def invoke(event, context=None):
    response = lambda_function.lambda_handler(event, context or FakeContext())
    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def expected_predictions(model, body: bytes, content_type: str, k: int = 5) -> list:
    data = inference.input_fn(body, content_type)
    payload, _ = inference.output_fn(inference.predict_fn(data, model), f"application/json; top_k={k}")
    return json.loads(payload)["predictions"]


def proxy_event(
    name: str, body: str | None, *, base64_encoded: bool, content_type: str | None = None, **extra
):
    event = load_event(name)
    event["body"] = body
    event["isBase64Encoded"] = base64_encoded
    if content_type is not None:
        for key in list(event["headers"]):
            if key.lower() == "content-type":
                event["headers"][key] = content_type
        event.get("multiValueHeaders", {}).pop("Content-Type", None)
    event.update(extra)
    return event


# --------------------------------------------------------------------------- event shapes


def test_api_gateway_rest_base64_image(function_env, loaded_model, png):
    status, doc = invoke(proxy_event("apigw_v1_proxy.json", b64(png), base64_encoded=True))
    assert status == 200
    assert doc["predictions"] == expected_predictions(loaded_model, png, "image/png")


def test_api_gateway_rest_json_body(function_env, loaded_model, png):
    event = proxy_event(
        "apigw_v1_proxy.json",
        json.dumps({"image": b64(png)}),
        base64_encoded=False,
        content_type="application/json",
    )
    event["queryStringParameters"] = {"top_k": "2"}
    status, doc = invoke(event)
    assert status == 200
    assert doc["predictions"] == expected_predictions(loaded_model, png, "image/png", k=2)


def test_http_api_base64_image(function_env, loaded_model, png):
    status, doc = invoke(proxy_event("apigw_v2_http.json", b64(png), base64_encoded=True))
    assert status == 200
    assert doc["predictions"] == expected_predictions(loaded_model, png, "image/png")


def test_http_api_json_batch_not_base64(function_env, loaded_model, png, jpeg):
    body = json.dumps({"instances": [b64(png), {"image": b64(jpeg)}]})
    status, doc = invoke(
        proxy_event("apigw_v2_http.json", body, base64_encoded=False, content_type="application/json")
    )
    assert status == 200
    assert doc["predictions"] == [
        expected_predictions(loaded_model, png, "image/png")[0],
        expected_predictions(loaded_model, jpeg, "image/jpeg")[0],
    ]


def test_function_url_base64_jpeg(function_env, loaded_model, jpeg):
    status, doc = invoke(proxy_event("function_url.json", b64(jpeg), base64_encoded=True))
    assert status == 200
    assert doc["predictions"] == expected_predictions(loaded_model, jpeg, "image/jpeg")


def test_function_url_octet_stream_is_sniffed(function_env, loaded_model, png):
    event = proxy_event(
        "function_url.json", b64(png), base64_encoded=True, content_type="application/octet-stream"
    )
    status, doc = invoke(event)
    assert status == 200
    assert doc["predictions"] == expected_predictions(loaded_model, png, "image/png")


def test_function_url_json_not_base64(function_env, loaded_model, png):
    event = proxy_event(
        "function_url.json",
        json.dumps({"image": b64(png), "top_k": 1}),
        base64_encoded=False,
        content_type="application/json",
    )
    status, doc = invoke(event)
    assert status == 200
    assert doc["predictions"] == expected_predictions(loaded_model, png, "image/png", k=1)


@pytest.mark.parametrize("content_type", ["image/png", None])
def test_direct_invoke_image(function_env, loaded_model, png, content_type):
    event = {"image": b64(png), "top_k": 2} | ({"content_type": content_type} if content_type else {})
    status, doc = invoke(event)
    assert status == 200
    assert doc["predictions"] == expected_predictions(loaded_model, png, "image/png", k=2)


def test_direct_invoke_endpoint_json(function_env, loaded_model, png):
    status, doc = invoke({"instances": [b64(png), b64(png)]})
    assert status == 200
    assert doc["predictions"] == expected_predictions(loaded_model, png, "image/png") * 2


def test_top_k_from_the_environment(function_env, png):
    function_env.setenv("TOP_K", "1")
    status, doc = invoke({"image": b64(png)})
    assert status == 200 and len(doc["predictions"][0]) == 1


def test_a_context_is_optional(function_env, png):
    response = lambda_function.lambda_handler({"image": b64(png)}, None)
    assert response["statusCode"] == 200 and response["headers"]["X-Request-Id"]


# --------------------------------------------------------------------------- client errors (4xx)


@pytest.mark.parametrize(
    ("event", "status"),
    [
        (None, 400),
        ([1, 2], 400),
        ("an image", 400),
        ({}, 400),
        ({"hello": "world"}, 400),
        ({"image": "!!!"}, 400),
        ({"image": 5}, 400),
        ({"image": b64(b"\x89PNG\r\n\x1a\n broken")}, 400),  # the model says 400: passed through
        ({"image": b64(b"GIF89a..."), "content_type": "text/plain"}, 415),
        ({"image": "aGVsbG8=", "top_k": 0}, 400),
        ({"image": "aGVsbG8=", "top_k": "lots"}, 400),
        ({"instances": "no"}, 400),
        ({"instances": [b64(b"xx")]}, 400),
    ],
)
def test_direct_invoke_bad_input(function_env, event, status):
    got, doc = invoke(event)
    assert got == status
    assert set(doc) == {"error", "requestId"} and doc["error"]["message"]


def test_proxy_bad_input(function_env, png):
    cases = [
        (proxy_event("apigw_v1_proxy.json", b64(png), base64_encoded=True, httpMethod="GET"), 405),
        (proxy_event("apigw_v2_http.json", None, base64_encoded=False), 400),
        (proxy_event("apigw_v2_http.json", "", base64_encoded=True), 400),
        (proxy_event("apigw_v2_http.json", "%%%", base64_encoded=True), 400),
        (proxy_event("function_url.json", b64(png), base64_encoded=True, content_type="text/plain"), 415),
        (
            proxy_event("function_url.json", "{oops", base64_encoded=False, content_type="application/json"),
            400,
        ),
        (proxy_event("function_url.json", "3", base64_encoded=False, content_type="application/json"), 400),
        (proxy_event("apigw_v2_http.json", b64(b"not an image"), base64_encoded=True), 400),
        (
            proxy_event(
                "apigw_v2_http.json", b64(png), base64_encoded=True, queryStringParameters={"top_k": "x"}
            ),
            400,
        ),
    ]
    for event, status in cases:
        got, doc = invoke(event)
        assert got == status, (event.get("body"), doc)
    get_event = load_event("function_url.json") | {"body": b64(png)}
    get_event["requestContext"]["http"]["method"] = "GET"
    assert invoke(get_event)[0] == 405


def test_body_over_lambdas_payload_limit_is_413(function_env):
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * lambda_function.MAX_PAYLOAD_BYTES
    assert invoke(proxy_event("apigw_v2_http.json", b64(big), base64_encoded=True))[0] == 413
    assert invoke({"image": b64(big)})[0] == 413
    text = proxy_event(
        "apigw_v1_proxy.json", "{" + " " * lambda_function.MAX_PAYLOAD_BYTES + "}", base64_encoded=False
    )
    assert invoke(text)[0] == 413


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_json_body_that_is_not_utf8_is_refused_before_the_endpoint(function_env, png, encoding):
    """json.loads would take UTF-16/32, the serving toolkit decodes UTF-8 only (a 500 there)."""
    body = json.dumps({"image": b64(png)}).encode(encoding)
    event = proxy_event("apigw_v1_proxy.json", b64(body), base64_encoded=True, content_type="application/json")
    status, doc = invoke(event)
    assert status == 400 and doc["error"]["message"] == "the JSON body must be UTF-8"


def test_the_models_own_message_reaches_the_caller(function_env):
    status, doc = invoke({"image": b64(b"\x00\x01 unknown format")})
    assert status == 400 and "decodable" in doc["error"]["message"]


def _client_error(code: str, http: int, **members) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": http},
        **members,
    }
    return ClientError(response, "InvokeEndpoint")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (_client_error("ModelError", 424, OriginalStatusCode=400, OriginalMessage="bad image"), 400),
        (_client_error("ModelError", 424, OriginalStatusCode=413, OriginalMessage="too big"), 413),
        (_client_error("ModelError", 424, OriginalStatusCode=415, OriginalMessage="type"), 415),
        (_client_error("ModelError", 424, OriginalStatusCode=406, OriginalMessage="accept"), 406),
        (_client_error("ModelError", 424, OriginalStatusCode=404, OriginalMessage="?"), 400),
        (_client_error("ModelError", 424, OriginalStatusCode=500, OriginalMessage="boom"), 502),
        (_client_error("ModelError", 424), 502),
        (_client_error("ServiceUnavailable", 503), 503),
        (_client_error("ThrottlingException", 400), 503),
        (_client_error("ModelNotReadyException", 429), 503),
        (_client_error("InternalFailure", 500), 502),
        (_client_error("InternalDependencyException", 530), 502),
        (_client_error("ValidationError", 400), 502),
        (_client_error("ValidationError", 413), 413),
    ],
)
def test_runtime_error_shapes_map_to_statuses(error, status):
    assert lambda_function.classify_client_error(error).status == status


def test_model_messages_with_traces_or_arns_are_replaced():
    trace = "bad image\nTraceback (most recent call last):\n  File ..."
    arn = "see arn:aws:logs:us-east-1:123456789012:log-group:x"
    assert (
        lambda_function.classify_client_error(
            _client_error("ModelError", 424, OriginalStatusCode=400, OriginalMessage=trace)
        ).message
        == "bad image"
    )
    assert (
        "arn:"
        not in lambda_function.classify_client_error(
            _client_error("ModelError", 424, OriginalStatusCode=400, OriginalMessage=arn)
        ).message
    )


# --------------------------------------------------------------------------- endpoint failures (5xx)


def test_unknown_endpoint_is_502(function_env, png):
    function_env.setenv("ENDPOINT_NAME", "no-such-endpoint")
    status, doc = invoke({"image": b64(png)})
    assert status == 502 and doc["error"]["code"] == "EndpointError"


def test_model_failure_is_502(monkeypatch, poisoned_artifact, png):
    with start_server(str(poisoned_artifact), endpoint_name=ENDPOINT_NAME) as broken:
        set_function_env(monkeypatch, broken.url)
        status, doc = invoke({"image": b64(png)})
    assert status == 502 and doc["error"]["code"] == "ModelError"


def test_overloaded_endpoint_is_503(monkeypatch, artifact, png):
    with start_server(str(artifact.directory), endpoint_name=ENDPOINT_NAME, max_connections=1) as busy:
        holder = socket.create_connection((busy.host, busy.port))  # takes the only slot
        try:
            set_function_env(monkeypatch, busy.url)
            response = lambda_function.lambda_handler({"image": b64(png)}, FakeContext())
        finally:
            holder.close()
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"]


def test_endpoint_timeout_is_504(monkeypatch, png):
    """A server that accepts and never answers: the read timeout fires."""
    silent = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        set_function_env(monkeypatch, f"http://127.0.0.1:{silent.getsockname()[1]}", READ_TIMEOUT_S="0.2")
        status, doc = invoke({"image": b64(png)})
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        silent.close()
    assert status == 504 and doc["error"]["code"] == "EndpointTimeout"


def test_unreachable_endpoint_is_502(monkeypatch, png):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    set_function_env(monkeypatch, f"http://127.0.0.1:{port}")  # nothing listens there any more
    assert invoke({"image": b64(png)})[0] == 502


@pytest.mark.parametrize(
    ("name", "value"),
    [("ENDPOINT_NAME", ""), ("TOP_K", "x"), ("READ_TIMEOUT_S", "-1"), ("CONTENT_TYPE", "text/plain")],
)
def test_misconfiguration_is_500_without_details(function_env, png, capsys, name, value):
    function_env.setenv(name, value)
    status, doc = invoke({"image": b64(png)})
    assert status == 500 and doc["error"] == {
        "code": "FunctionMisconfigured",
        "message": "the function is misconfigured",
    }
    log = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert name in log["config_error"]


# --------------------------------------------------------------------------- logs, secrecy, client


def test_one_structured_log_line_per_invocation_without_secrets(function_env, png, capsys, monkeypatch):
    capsys.readouterr()
    invoke({"image": b64(png)})
    invoke({"image": b64(b"not an image")})
    monkeypatch.setenv("ENDPOINT_NAME", "no-such-endpoint")
    response = lambda_function.lambda_handler({"image": b64(png)}, FakeContext())
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert [line["status"] for line in lines] == [200, 400, 502]
    for line in lines:
        assert line["request_id"] == FakeContext.aws_request_id
        assert line["latency_ms"] >= 0 and line["source"] == "direct"
    # The endpoint's ModelError carries a log-stream ARN and the account id: neither may leak.
    for text in (out, response["body"]):
        assert "arn:" not in text and "123456789012" not in text and "Traceback" not in text
        assert "FakeContext" not in text and "sagegate-invoke" not in text


def test_an_unexpected_failure_is_a_clean_500(function_env, png, capsys, monkeypatch):
    def explode(event, settings):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(lambda_function, "parse_event", explode)
    status, doc = invoke({"image": b64(png)})
    out = capsys.readouterr().out
    assert status == 500 and doc["error"]["code"] == "InternalError"
    assert "secret internals" not in out and "Traceback" not in out
    assert json.loads(out.strip().splitlines()[-1])["error_type"] == "RuntimeError"


def test_client_is_created_once_with_explicit_timeouts_and_standard_retries(function_env, server, png):
    function_env.setenv("READ_TIMEOUT_S", "7")
    invoke({"image": b64(png)})
    first = lambda_function._client
    invoke({"image": b64(png)})
    assert lambda_function._client is first
    config = first.meta.config
    assert (config.connect_timeout, config.read_timeout) == (2.0, 7.0)
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert first.meta.endpoint_url == server.url  # from AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME alone


def test_importing_the_function_pulls_in_no_heavy_module():
    code = "import sys, handlers.lambda_function; print(sorted({'torch', 'PIL', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_labels_come_from_the_artifact(function_env, png):
    status, doc = invoke({"image": b64(png)})
    assert status == 200 and {e["label"] for e in doc["predictions"][0]} <= set(CLASSES)


# --------------------------------------------------------------------------- Application Load Balancer


def invoke_alb(event):
    """An ALB target's answer: ``multiValueHeaders`` instead of ``headers`` in multi-value mode."""
    response = lambda_function.lambda_handler(event, FakeContext())
    multi = "multiValueHeaders" in event
    assert set(response) == {
        "statusCode", "statusDescription", "body", "isBase64Encoded", "multiValueHeaders" if multi else "headers"
    }
    assert response["statusDescription"].startswith(str(response["statusCode"]))
    headers = {k: v[-1] for k, v in response["multiValueHeaders"].items()} if multi else response["headers"]
    assert headers["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def test_alb_base64_image(function_env, loaded_model, png):
    event = load_event("alb.json")
    event.update(body=b64(png), queryStringParameters={"top_k": "2"})
    status, doc = invoke_alb(event)
    assert status == 200
    assert doc["predictions"] == expected_predictions(loaded_model, png, "image/png", k=2)


def test_alb_multi_value_mode_reads_top_k_and_headers(function_env, loaded_model, png):
    event = load_event("alb_multi_value.json")
    event["body"] = json.dumps({"image": b64(png)})
    event["isBase64Encoded"] = False
    # The last value of a repeated name counts; the content type is only in multiValueHeaders.
    event["multiValueHeaders"]["content-type"] = ["image/png", "application/json"]
    event["multiValueQueryStringParameters"] = {"top_k": ["4", "3"], "other": ["a", "b"]}
    status, doc = invoke_alb(event)
    assert status == 200
    assert doc["predictions"] == expected_predictions(loaded_model, png, "image/png", k=3)

    event["multiValueHeaders"]["content-type"] = ["text/plain"]  # the header is read: refused
    status, doc = invoke_alb(event)
    assert status == 415 and doc["error"]["code"] == "UnsupportedMediaType"


def test_alb_query_parameters_are_url_decoded(function_env, loaded_model, png):
    """ALB does not decode the query string: %-encoded names and values are decoded here."""
    event = load_event("alb_multi_value.json")
    event["body"] = b64(png)
    event["multiValueQueryStringParameters"] = {"top%5Fk": ["%32"]}
    status, doc = invoke_alb(event)
    assert status == 200
    assert doc["predictions"] == expected_predictions(loaded_model, png, "image/png", k=2)

    event["multiValueQueryStringParameters"] = {"top_k": ["0%20"]}
    status, doc = invoke_alb(event)
    assert status == 400 and "top_k" in doc["error"]["message"]


def test_alb_health_check_get_is_405_in_the_alb_shape(function_env):
    event = load_event("alb_multi_value.json")
    event.update(httpMethod="GET", body="", isBase64Encoded=False)
    status, doc = invoke_alb(event)
    assert status == 405 and doc["error"]["code"] == "MethodNotAllowed"
