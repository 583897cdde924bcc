"""The local Lambda runtime: reserved concurrency throttles, provisioned workers are warm and
replaced after a kill, a burst of 1,000 connections is answered, chunked bodies arrive."""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from runner.targets.lambda_runtime import FunctionSpec, LambdaRuntime

HANDLER = '''
import json
import os
import socket


def lambda_handler(event, context):
    query = event.get("queryStringParameters") or {}
    if event.get("echo") or query.get("echo"):
        return {"statusCode": 200, "body": json.dumps({"body": event.get("body"),
                                                       "isBase64Encoded": event.get("isBase64Encoded")})}
    hold = query.get("hold") or event.get("hold")
    if hold:  # wait until the test releases this invocation
        with socket.create_connection(("127.0.0.1", int(hold))) as conn:
            conn.recv(1)
    if event.get("fail"):
        raise ValueError("asked to fail")
    body = {"pid": os.getpid(), "endpoint": os.environ.get("ENDPOINT_NAME"),
            "remaining_ms": context.get_remaining_time_in_millis()}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
'''


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "lambda_function.py").write_text(HANDLER)
    return tmp_path / "code"


def _get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_the_sixth_concurrent_request_is_throttled_with_reserved_concurrency_5(code_dir, tmp_path):
    spec = FunctionSpec("fn", code_dir, environment={"ENDPOINT_NAME": "ep"}, reserved=5, provisioned=2)
    with LambdaRuntime(spec, log_path=tmp_path / "fn.log").start() as runtime, \
            socket.create_server(("127.0.0.1", 0)) as gate:
        assert runtime.warm_workers == 2
        gate.settimeout(60)
        port = gate.getsockname()[1]
        results: list[tuple[int, dict, bytes]] = []
        threads = [threading.Thread(target=lambda: results.append(_get(f"{runtime.url}/?hold={port}")))
                   for _ in range(5)]
        for thread in threads:
            thread.start()
        held = [gate.accept()[0] for _ in range(5)]  # five invocations are running now

        status, headers, body = _get(f"{runtime.url}/?x=6")
        assert status == 429
        assert headers.get("x-amzn-ErrorType") == "TooManyRequestsException"
        assert json.loads(body)["message"] == "Rate Exceeded."

        for conn in held:
            conn.sendall(b"x")
            conn.close()
        for thread in threads:
            thread.join(timeout=60)
        assert [r[0] for r in results] == [200] * 5
        pids = {json.loads(r[2])["pid"] for r in results}
        assert len(pids) == 5
        assert runtime.cold_starts == 3 and runtime.throttles == 1
        assert all(json.loads(r[2])["endpoint"] == "ep" for r in results)

        status, _, body = _get(f"{runtime.url}/again")
        assert status == 200 and json.loads(body)["pid"] in pids  # a warm worker is reused
        assert 0 < json.loads(body)["remaining_ms"] <= 30000


def test_invoke_api_through_the_emulator_runs_the_handler(code_dir, tmp_path, local_target):
    spec = FunctionSpec("direct-fn", code_dir, reserved=2, provisioned=1)
    with LambdaRuntime(spec).start() as runtime:
        request = urllib.request.Request(f"{local_target.endpoint_url}/_sagegate/lambda-runtimes", method="POST",
                                         data=json.dumps({"function_name": "direct-fn", "url": runtime.url}).encode())
        urllib.request.urlopen(request, timeout=10).close()
        lam = local_target.client("lambda")
        answer = lam.invoke(FunctionName="direct-fn", Payload=json.dumps({"k": 1}).encode())
        assert answer["StatusCode"] == 200 and "FunctionError" not in answer
        assert json.loads(json.loads(answer["Payload"].read())["body"])["pid"] > 0

        failed = lam.invoke(FunctionName="direct-fn", Payload=json.dumps({"fail": True}).encode())
        assert failed["FunctionError"] == "Unhandled"
        error = json.loads(failed["Payload"].read())
        assert error == {"errorMessage": "asked to fail", "errorType": "ValueError"}


def _wait_for(condition, what: str, limit_s: float = 60.0) -> None:
    """Poll until ``condition()`` holds (a generous bound, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


async def _burst(host: str, port: int, count: int) -> list[int | str]:
    """``count`` connections opened at once; once all are open, one request on each."""
    opened = asyncio.Event()

    async def one(i: int) -> int | str:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            opened_count.append(None)
            return f"connect: {type(exc).__name__}"
        opened_count.append(i)
        if len(opened_count) == count:
            opened.set()
        try:
            await opened.wait()
            writer.write(f"GET /?n={i} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            status_line = await reader.readline()
            await reader.read()
            writer.close()
            return int(status_line.split()[1]) if status_line else "no answer"
        except (OSError, IndexError, ValueError) as exc:
            return type(exc).__name__  # ConnectionResetError is what a too-short backlog gives

    opened_count: list[int | None] = []
    results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(count))), timeout=120)
    return list(results)


def test_a_burst_of_1000_connections_is_answered_200_or_429_none_reset(code_dir, tmp_path):
    spec = FunctionSpec("burst", code_dir, environment={"ENDPOINT_NAME": "ep"}, reserved=5, provisioned=5)
    with LambdaRuntime(spec, log_path=tmp_path / "burst.log").start() as runtime:
        host, port = runtime.url.removeprefix("http://").split(":")
        statuses = asyncio.run(_burst(host, int(port), 1000))
        counts = collections.Counter(statuses)
        print(f"1,000 simultaneous requests: {dict(counts)}")
        assert set(counts) <= {200, 429}, counts
        assert counts[200] + counts[429] == 1000
        assert counts[200] >= 1 and runtime.throttles == counts[429]
        status, _, _ = _get(f"{runtime.url}/after")
        assert status == 200  # the runtime still serves after the burst


def test_provisioned_workers_are_replaced_after_a_timeout_kill_or_crash(code_dir, tmp_path):
    spec = FunctionSpec("prov", code_dir, environment={"ENDPOINT_NAME": "ep"}, reserved=3, provisioned=2,
                        timeout_s=1.0)
    with LambdaRuntime(spec, log_path=tmp_path / "prov.log").start() as runtime, \
            socket.create_server(("127.0.0.1", 0)) as gate:
        assert runtime.warm_workers == 2
        before = {w.process.pid for w in runtime._workers}
        status, _, _ = _get(f"{runtime.url}/?hold={gate.getsockname()[1]}")  # never released: timed out
        assert status == 502
        _wait_for(lambda: runtime.warm_workers == 2, "the killed provisioned worker is replaced")
        after = {w.process.pid for w in runtime._workers}
        assert len(after) == 2 and len(after - before) == 1 and runtime.replacements == 1
        assert runtime.cold_starts == 0

        os.kill(next(iter(after)), signal.SIGKILL)  # a crash while idle
        _wait_for(lambda: runtime.warm_workers == 2 and runtime.replacements == 2, "the crashed worker is replaced")
        status, _, body = _get(f"{runtime.url}/ok")
        assert status == 200 and json.loads(body)["pid"] in {w.process.pid for w in runtime._workers}
        assert runtime.cold_starts == 0  # served by a provisioned worker


def _raw(url: str, request: bytes) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_a_chunked_request_body_reaches_the_function_url_event(code_dir, tmp_path):
    spec = FunctionSpec("chunked", code_dir, environment={"ENDPOINT_NAME": "ep"}, reserved=2)
    payload = json.dumps({"image": "A" * 70_000}).encode()
    chunks = b"".join(f"{len(part):x};ext=1\r\n".encode() + part + b"\r\n"
                      for part in (payload[:5], payload[5:40_000], payload[40_000:]))
    with LambdaRuntime(spec).start() as runtime:
        request = (b"POST /?echo=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks + b"0\r\nX-Trailer: t\r\n\r\n")
        status, body = _raw(runtime.url, request)
        assert status == 200
        assert json.loads(body) == {"body": payload.decode(), "isBase64Encoded": False}

        binary = bytes(range(256))
        status, body = _raw(runtime.url, b"POST /?echo=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                            b"Content-Type: image/png\r\nConnection: close\r\n\r\n100\r\n" + binary + b"\r\n0\r\n\r\n")
        assert status == 200 and json.loads(body) == {"body": base64.b64encode(binary).decode(), "isBase64Encoded": True}

        status, _ = _raw(runtime.url, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                         b"Connection: close\r\n\r\nzz\r\n")
        assert status == 400
