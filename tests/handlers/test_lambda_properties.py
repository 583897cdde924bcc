"""Property: whatever the event, the handler answers a well-formed proxy response, never raises."""

from __future__ import annotations

import base64
import json

import pytest
from handlers_testkit import image_bytes, load_event, set_function_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers import lambda_function

PNG = image_bytes()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
b64_of_bytes = st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode())
image_payloads = st.sampled_from([PNG, PNG[:50], b"", b"\xff\xd8\xff garbage"]) | st.binary(max_size=100)
content_types = st.sampled_from(
    [
        "image/png",
        "image/jpeg",
        "application/x-image",
        "application/json",
        "application/octet-stream",
        "text/plain",
        "",
    ]
) | st.text(max_size=20)

direct_events = st.fixed_dictionaries(
    {},
    optional={
        "image": st.one_of(
            b64_of_bytes, image_payloads.map(lambda b: base64.b64encode(b).decode()), json_values
        ),
        "content_type": content_types | json_values,
        "top_k": st.integers(-2, 2000) | json_values,
        "instances": st.lists(st.one_of(b64_of_bytes, json_values), max_size=3) | json_values,
        "url": st.text(max_size=40),
    },
)


@st.composite
def proxy_events(draw: st.DrawFn) -> dict:
    event = load_event(
        draw(st.sampled_from(["apigw_v1_proxy.json", "apigw_v2_http.json", "function_url.json"]))
    )
    encoded = draw(st.booleans())
    payload = draw(image_payloads)
    if encoded:
        body = draw(st.one_of(st.just(base64.b64encode(payload).decode()), st.text(max_size=50), st.none()))
    else:
        body = draw(st.one_of(st.text(max_size=80), json_values.map(json.dumps), st.none(), json_values))
    event["body"] = body
    event["isBase64Encoded"] = draw(st.one_of(st.just(encoded), json_values))
    event["headers"] = draw(
        st.one_of(
            st.fixed_dictionaries({"content-type": content_types}),
            st.dictionaries(st.text(max_size=15), st.text(max_size=15), max_size=3),
            json_values,
        )
    )
    event["queryStringParameters"] = draw(
        st.one_of(st.none(), st.fixed_dictionaries({"top_k": json_values}), json_values)
    )
    if draw(st.booleans()):
        event["httpMethod" if "httpMethod" in event else "routeKey"] = draw(
            st.sampled_from(["POST", "GET", "PUT"])
        )
    return event


any_event = st.one_of(json_values, direct_events, proxy_events())


@pytest.fixture(scope="module")
def function_env(server):
    with pytest.MonkeyPatch.context() as mp:
        set_function_env(mp, server.url)
        yield


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(event=any_event)
def test_any_event_gets_a_well_formed_response(function_env, event):
    response = lambda_function.lambda_handler(event, None)
    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}
    status = response["statusCode"]
    assert isinstance(status, int) and (status == 200 or 400 <= status <= 599)
    assert response["headers"]["Content-Type"] == "application/json"
    assert response["isBase64Encoded"] is False
    doc = json.loads(response["body"])
    if status == 200:
        assert isinstance(doc["predictions"], list)
    else:
        assert set(doc["error"]) == {"code", "message"}
        assert status != 500  # 500 is kept for a misconfigured function; events never cause it
