"""handlers/serve.py: the SageMaker container + runtime API on loopback, and its robustness."""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from handlers_testkit import CLASSES, ENDPOINT_NAME, image_bytes

from handlers import serve


def runtime_client(url: str):
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=30),
    )


def request(server, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def ping(server) -> int:
    return request(server, "GET", "/ping")[0]


def wait_until(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached before the deadline")
        time.sleep(0.01)


# --------------------------------------------------------------------------- the two APIs


def test_ping(server):
    assert ping(server) == 200


def test_boto3_runtime_client_works_unchanged(server, png):
    result = runtime_client(server.url).invoke_endpoint(
        EndpointName=ENDPOINT_NAME, Body=png, ContentType="image/png", Accept="application/json; top_k=2"
    )
    assert result["ContentType"] == "application/json"
    assert result["InvokedProductionVariant"] == "AllTraffic"
    [row] = json.loads(result["Body"].read())["predictions"]
    assert len(row) == 2 and row[0]["label"] in CLASSES


@pytest.mark.parametrize(
    ("kwargs", "original_status"),
    [
        ({"Body": b"not an image", "ContentType": "image/png"}, 400),
        ({"Body": b"x", "ContentType": "text/plain"}, 415),
        ({"Body": image_bytes(), "ContentType": "image/png", "Accept": "text/csv"}, 406),
    ],
)
def test_runtime_model_errors_have_the_runtime_shape(server, kwargs, original_status):
    with pytest.raises(ClientError) as info:
        runtime_client(server.url).invoke_endpoint(EndpointName=ENDPOINT_NAME, **kwargs)
    response = info.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == original_status
    assert response["OriginalMessage"] and response["LogStreamArn"].startswith("arn:aws:logs:")


def test_runtime_unknown_endpoint_is_a_validation_error(server, png):
    with pytest.raises(ClientError) as info:
        runtime_client(server.url).invoke_endpoint(
            EndpointName="other-endpoint", Body=png, ContentType="image/png"
        )
    assert info.value.response["Error"]["Code"] == "ValidationError"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_container_contract_statuses(server, png):
    status, headers, body = request(server, "POST", "/invocations", png, {"Content-Type": "image/png"})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert len(json.loads(body)["predictions"]) == 1
    for content, ctype, accept, expected in [
        (b"junk", "image/png", "application/json", 400),
        (png, "text/plain", "application/json", 415),
        (png, "image/png", "text/csv", 406),
    ]:
        status, _, body = request(
            server, "POST", "/invocations", content, {"Content-Type": ctype, "Accept": accept}
        )
        assert status == expected
        message, _, trace = body.decode().partition("\n")  # the serving toolkit's text error body
        assert message and trace.startswith("Traceback (most recent call last):")


def test_unknown_routes(server):
    assert request(server, "GET", "/invocations")[0] == 404
    assert request(server, "POST", "/elsewhere", b"x")[0] == 404
    assert request(server, "DELETE", "/ping")[0] == 501


def test_a_model_fault_is_a_5xx_model_error(poisoned_artifact, png):
    with serve.start_server(str(poisoned_artifact)) as broken:
        assert request(broken, "POST", "/invocations", png, {"Content-Type": "image/png"})[0] == 500
        with pytest.raises(ClientError) as info:
            runtime_client(broken.url).invoke_endpoint(EndpointName="any", Body=png, ContentType="image/png")
        assert info.value.response["OriginalStatusCode"] == 500
        assert ping(broken) == 200


def test_a_tarball_artifact_is_served_and_cleaned_up(artifact, png):
    with serve.start_server(str(artifact.tarball)) as handle:
        extracted = handle._temp_dir
        assert extracted and os.path.isdir(extracted)
        assert request(handle, "POST", "/invocations", png, {"Content-Type": "image/png"})[0] == 200
    assert not os.path.exists(extracted)


# --------------------------------------------------------------------------- batching


def test_concurrent_requests_each_get_their_own_answer(server):
    """Requests merged into one forward pass are split back correctly (sizes differ)."""
    images = [image_bytes(color=(i * 25 % 256, 100, 255 - i * 20 % 256), size=(30 + i, 30)) for i in range(8)]
    client = runtime_client(server.url)

    def predict(body: bytes, n: int) -> list:
        import base64

        payload = json.dumps({"instances": [base64.b64encode(body).decode()] * n})
        result = client.invoke_endpoint(
            EndpointName=ENDPOINT_NAME, Body=payload, ContentType="application/json"
        )
        return json.loads(result["Body"].read())["predictions"]

    expected = [predict(img, 1)[0] for img in images]
    jobs = [(i % len(images), 1 + i % 3) for i in range(48)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda job: predict(images[job[0]], job[1]), jobs))
    for (index, n), rows in zip(jobs, results, strict=True):
        assert len(rows) == n
        for row in rows:
            assert [e["index"] for e in row] == [e["index"] for e in expected[index]]
            for got, want in zip(row, expected[index], strict=True):
                assert got["score"] == pytest.approx(want["score"], abs=1e-5)


# --------------------------------------------------------------------------- robustness


def raw_exchange(server, data: bytes, *, half_close: bool = True) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
        return b"".join(chunks)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\xff" * 500,
        b"GARBAGE / HTTP/9.9\r\n\r\n",
        b"POST /invocations HTTP/1.1\r\nContent-Length: banana\r\n\r\n",
        b"POST /invocations HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
        b"GET /ping HTTP/1.1\r\n" + b"X-Long: " + b"b" * 70_000 + b"\r\n\r\n",
        b"GET /ping HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n",
    ],
)
def test_garbage_gets_an_error_and_the_server_keeps_serving(server, garbage):
    answer = raw_exchange(server, garbage)
    assert answer == b"" or answer.startswith(b"HTTP/1.") and int(answer.split()[1]) >= 400
    assert ping(server) == 200


def test_oversize_body_is_413_and_the_server_keeps_serving(server):
    status, _, body = request(
        server,
        "POST",
        "/invocations",
        b"\0" * (server.config.max_body_bytes + 1),
        {"Content-Type": "image/png"},
    )
    assert status == 413 and "limit" in json.loads(body)["error"]["message"]
    with pytest.raises(ClientError) as info:
        runtime_client(server.url).invoke_endpoint(
            EndpointName=ENDPOINT_NAME,
            Body=b"\0" * (server.config.max_body_bytes + 1),
            ContentType="image/png",
        )
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert ping(server) == 200


def test_a_huge_declared_length_is_refused_without_reading(server):
    answer = raw_exchange(server, b"POST /invocations HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\nabc")
    assert answer.startswith(b"HTTP/1.1 413")
    assert ping(server) == 200


def test_abrupt_disconnects_are_survived(server, png):
    head = b"POST /invocations HTTP/1.1\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n" % len(png)
    for data in (b"", b"POST /invoc", head, head + png[: len(png) // 2]):
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            sock.sendall(data)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
    # a client that leaves before reading its answer
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(head + png)
    assert ping(server) == 200
    assert request(server, "POST", "/invocations", png, {"Content-Type": "image/png"})[0] == 200


def test_keep_alive_connection_serves_many_requests(server, png):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        for _ in range(5):
            conn.request("POST", "/invocations", body=png, headers={"Content-Type": "image/png"})
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read())["predictions"]
    finally:
        conn.close()


def test_connections_over_the_limit_get_a_503_then_service_resumes(artifact, png):
    with serve.start_server(str(artifact.directory), max_connections=1) as busy:
        holder = socket.create_connection((busy.host, busy.port))
        status, headers, body = request(busy, "POST", "/invocations", png, {"Content-Type": "image/png"})
        assert status == 503 and headers["x-amzn-ErrorType"].startswith("ServiceUnavailable")
        holder.close()
        wait_until(lambda: ping(busy) == 200)


def test_invalid_configuration_is_refused(artifact):
    with pytest.raises(ValueError, match="max_batch"):
        serve.start_server(str(artifact.directory), max_batch=0)
    with pytest.raises(ValueError, match="endpoint_name"):
        serve.start_server(str(artifact.directory), endpoint_name="bad name!")
    assert serve.main(["--model-dir", "/nonexistent/model.tar.gz"]) == 2


def test_stop_closes_idle_keep_alive_connections(artifact, png):
    handle = serve.start_server(str(artifact.directory))
    conn = http.client.HTTPConnection(handle.host, handle.port, timeout=30)
    conn.request("POST", "/invocations", body=png, headers={"Content-Type": "image/png"})
    assert conn.getresponse().read()
    handle.stop()
    handle.stop()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection((handle.host, handle.port), timeout=2).close()
    conn.close()


# --------------------------------------------------------------------------- the command line


def test_cli_with_two_workers_a_tarball_variants_and_a_region_stops_cleanly_on_sigterm(artifact, png):
    variants = [("Dark", 0.0), ("Blue", 1.0)]
    with serve.spawn_server(
        str(artifact.tarball), workers=2, endpoint_name=ENDPOINT_NAME, variants=variants, region="eu-west-3"
    ) as child:
        assert ping(child) == 200
        client = runtime_client(child.url)
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(
                pool.map(
                    lambda _: client.invoke_endpoint(
                        EndpointName=ENDPOINT_NAME, Body=png, ContentType="image/png"
                    ),
                    range(8),
                )
            )
        assert all(r["ResponseMetadata"]["HTTPStatusCode"] == 200 for r in results)
        assert {r["InvokedProductionVariant"] for r in results} == {"Blue"}  # Dark weighs 0
        targeted = client.invoke_endpoint(
            EndpointName=ENDPOINT_NAME, Body=png, ContentType="image/png", TargetVariant="Dark"
        )
        assert targeted["InvokedProductionVariant"] == "Dark"
        with pytest.raises(ClientError) as info:
            client.invoke_endpoint(
                EndpointName=ENDPOINT_NAME, Body=png, ContentType="image/png", TargetVariant="Green"
            )
        assert info.value.response["Error"]["Code"] == "ValidationError"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        with pytest.raises(ClientError) as info:
            client.invoke_endpoint(EndpointName=ENDPOINT_NAME, Body=b"junk", ContentType="image/png")
        assert info.value.response["LogStreamArn"].startswith("arn:aws:logs:eu-west-3:")
        assert child.stop() == 0


def test_cli_refuses_malformed_variant_flags(artifact, capsys):
    with pytest.raises(SystemExit) as info:
        serve.main(["--model-dir", str(artifact.directory), "--variant", "Blue"])
    assert info.value.code == 2 and "NAME=WEIGHT" in capsys.readouterr().err
    assert serve.main(["--model-dir", str(artifact.directory), "--variant", "Blue=-1"]) == 2
    assert "finite number >= 0" in capsys.readouterr().err
    assert serve.main(["--model-dir", str(artifact.directory), "--region", "mars"]) == 2
