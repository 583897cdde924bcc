"""The local Lambda runtime: reserved concurrency throttles, provisioned workers are warm."""

from __future__ import annotations

import json
import socket
import threading
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
