"""handlers/endpoint_app.py: routes, production variants and the runtime's error shapes, without HTTP."""

from __future__ import annotations

import base64
import json
import random
from collections import Counter

import pytest

from handlers.endpoint_app import (
    INVOKED_VARIANT_HEADER,
    TARGET_VARIANT_HEADER,
    EndpointApp,
    model_error,
)
from handlers.http_server import Reply, Route
from handlers.server_config import ServerConfig

ENDPOINT = "variants-endpoint"


@pytest.fixture
def make_app(loaded_model, artifact):
    apps: list[EndpointApp] = []

    def make(seed: int = 0, **fields) -> EndpointApp:
        settings = ServerConfig(model_dir=str(artifact.directory), endpoint_name=ENDPOINT, **fields).validate()
        app = EndpointApp(loaded_model, settings, rng=random.Random(seed))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def invoke(app: EndpointApp, body: bytes, **headers: str) -> Reply:
    route = app.resolve("POST", f"/endpoints/{ENDPOINT}/invocations")
    assert isinstance(route, Route)
    return route.handle({"Content-Type": "image/png", **headers}, body)


def error_type(reply: Reply) -> str:
    return reply.headers["x-amzn-ErrorType"].split(":", 1)[0]


def test_variants_are_drawn_by_weight_and_a_zero_weight_is_never_drawn(make_app):
    app = make_app(variants=[("Blue", 1), ("Green", 3), ("Dark", 0)])
    drawn = Counter(app.choose_variant() for _ in range(4000))
    assert drawn["Dark"] == 0
    assert 0.70 < drawn["Green"] / 4000 < 0.80
    assert drawn["Blue"] + drawn["Green"] == 4000


def test_the_invoked_variant_header_names_the_drawn_variant(make_app, png):
    app = make_app(variants=[("Blue", 1), ("Green", 1), ("Dark", 0)])
    seen = set()
    for _ in range(12):
        reply = invoke(app, png)
        assert reply.status == 200
        seen.add(reply.headers[INVOKED_VARIANT_HEADER])
    assert seen == {"Blue", "Green"}  # both drawn (seeded), never the weight-0 one


def test_the_target_variant_header_overrides_the_weights(make_app, png):
    app = make_app(variants=[("Blue", 1), ("Dark", 0)])
    for _ in range(3):
        reply = invoke(app, png, **{TARGET_VARIANT_HEADER: "Dark"})
        assert reply.status == 200 and reply.headers[INVOKED_VARIANT_HEADER] == "Dark"


@pytest.mark.parametrize("target", ["Green", "", "blue"])
def test_an_unknown_target_variant_is_a_validation_error(make_app, png, target):
    reply = invoke(make_app(variants=[("Blue", 1)]), png, **{TARGET_VARIANT_HEADER: target})
    assert reply.status == 400 and error_type(reply) == "ValidationError"
    assert INVOKED_VARIANT_HEADER not in reply.headers
    assert f"'{target}'" in json.loads(reply.body)["message"]
    assert reply.headers["x-amzn-RequestId"]


def test_the_model_error_arn_names_the_configured_region(make_app):
    reply = invoke(make_app(region="eu-west-3"), b"not an image")
    assert reply.status == 424 and error_type(reply) == "ModelError"
    doc = json.loads(reply.body)
    assert doc["LogStreamArn"] == (
        f"arn:aws:logs:eu-west-3:123456789012:log-group:/aws/sagemaker/Endpoints/{ENDPOINT}"
    )
    assert doc["OriginalStatusCode"] == 400 and doc["ErrorCode"] == "CLIENT_ERROR_FROM_MODEL"


@pytest.mark.parametrize(
    ("region", "prefix"),
    [("cn-north-1", "arn:aws-cn:logs:cn-north-1:"), ("us-gov-west-1", "arn:aws-us-gov:logs:us-gov-west-1:")],
)
def test_the_model_error_arn_uses_the_region_partition(region, prefix):
    container = Reply(500, b"boom\nTraceback (most recent call last):\n")
    doc = json.loads(model_error("ep", container, region).body)
    assert doc["LogStreamArn"].startswith(prefix)
    assert doc["OriginalMessage"] == container.body.decode() and doc["ErrorCode"] == "SERVER_ERROR_FROM_MODEL"


def test_another_endpoint_name_is_a_validation_error(make_app, png):
    app = make_app()
    route = app.resolve("POST", "/endpoints/someone-else/invocations")
    reply = route.handle({"Content-Type": "image/png"}, png)
    assert reply.status == 400 and error_type(reply) == "ValidationError"
    assert "someone-else" in json.loads(reply.body)["message"]


def test_too_many_queued_images_is_busy_on_both_paths(make_app, png):
    app = make_app(max_queued_images=1)
    two_images = json.dumps({"instances": [base64.b64encode(png).decode()] * 2}).encode()
    headers = {"Content-Type": "application/json"}
    container = app.resolve("POST", "/invocations").handle(headers, two_images)
    assert container.status == 503 and json.loads(container.body)["error"]["type"] == "ServerBusyError"
    runtime = invoke(app, two_images, **headers)
    assert runtime.status == 503 and error_type(runtime) == "ServiceUnavailable"


def test_routes(make_app):
    app = make_app()
    ping = app.resolve("GET", "/ping")
    assert isinstance(ping, Route) and not ping.reads_body and ping.handle({}, b"").status == 200
    for method, path in [("GET", "/invocations"), ("POST", "/elsewhere"), ("POST", "/endpoints/bad_name/invocations")]:
        reply = app.resolve(method, path)
        assert isinstance(reply, Reply) and reply.status == 404


def test_refused_bodies_take_each_paths_error_shape(make_app):
    app = make_app()
    container = app.resolve("POST", "/invocations").refuse(413, "too big")
    assert json.loads(container.body) == {"error": {"type": "PayloadTooLargeError", "message": "too big"}}
    runtime = app.resolve("POST", f"/endpoints/{ENDPOINT}/invocations").refuse(411, "no length")
    assert runtime.status == 411 and error_type(runtime) == "ValidationError"
    assert json.loads(runtime.body) == {"message": "no length"}
