"""The smoke test (runner/app/invoke.py): which images are sent, how the function is reached
(its local Function URL or a Lambda invoke), the predictions table, and a failed call."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from runner_helpers import settings_for

from runner.app import invoke
from runner.app.context import RunContext
from runner.app.invoke import Answer, Sample, SmokeTestFailed, function_caller, run, samples
from runner.core.errors import EXIT_VIOLATIONS, UserError
from runner.core.names import LOCAL_ACCOUNT
from runner.targets.dataplane import register_runtime

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
TOP_K = [{"label": "7", "index": 7, "score": 0.91}, {"label": "1", "index": 1, "score": 0.05},
         {"label": "9", "index": 9, "score": 0.02}]


def _context(tmp_path: Path, name: str = "inv-demo", image: Path | None = None, count: int = 3) -> RunContext:
    settings = settings_for(name)
    settings.image = str(image) if image is not None else None
    settings.invoke.samples = count
    return RunContext(settings, tmp_path / "run", Console(record=True, width=200, highlight=False))


def _test_split(root: Path, classes: dict[str, list[str]]) -> Path:
    for label, files in classes.items():
        folder = root / "test" / label
        folder.mkdir(parents=True)
        for file in files:
            (folder / file).write_bytes(PNG + f"{label}/{file}".encode())
    return root


# ---- samples -------------------------------------------------------------------------------------------

def test_an_image_path_is_one_sample_without_a_label(tmp_path: Path):
    image = tmp_path / "digit.png"
    image.write_bytes(PNG)
    assert samples(_context(tmp_path, image=image), data_dir=None) == [Sample("digit.png", PNG, "image/png", None)]


@pytest.mark.parametrize("name, content_type", [("photo.JPG", "image/jpeg"), ("scan.bmp", "image/bmp"),
                                                 ("upload.bin", "application/x-image")])
def test_the_content_type_comes_from_the_suffix(tmp_path: Path, name: str, content_type: str):
    image = tmp_path / name
    image.write_bytes(PNG)
    [sample] = samples(_context(tmp_path, image=image), data_dir=None)
    assert sample.content_type == content_type


def test_an_image_path_that_is_not_a_file(tmp_path: Path):
    with pytest.raises(UserError, match=r"^image: .*missing\.png is not a file$"):
        samples(_context(tmp_path, image=tmp_path / "missing.png"), data_dir=None)
    with pytest.raises(UserError, match="is not a file"):
        samples(_context(tmp_path, image=tmp_path), data_dir=None)


def test_without_an_image_or_data_it_asks_for_an_image(tmp_path: Path):
    with pytest.raises(UserError, match=r"image=PATH"):
        samples(_context(tmp_path), data_dir=None)


def test_held_out_images_of_spread_classes(tmp_path: Path):
    data = _test_split(tmp_path / "data", {str(d): [f"{d}{n:03d}.png" for n in (2, 1)] for d in range(10)})
    picked = samples(_context(tmp_path, count=3), data_dir=lambda: data)
    # Classes 0, 3 and 6 of ten, each with its first image by name.
    assert [(s.name, s.true_label, s.content_type) for s in picked] == [
        ("0/0001.png", "0", "image/png"), ("3/3001.png", "3", "image/png"), ("6/6001.png", "6", "image/png")]
    assert picked[1].data == (data / "test" / "3" / "3001.png").read_bytes()


def test_no_more_samples_than_classes_and_only_image_files(tmp_path: Path):
    data = _test_split(tmp_path / "data", {"cat": ["notes.txt", "b.JPEG"], "dog": ["a.webp"]})
    (data / "test" / "README.md").write_text("not a class")
    picked = samples(_context(tmp_path, count=5), data_dir=lambda: data)
    assert [(s.name, s.true_label) for s in picked] == [("cat/b.JPEG", "cat"), ("dog/a.webp", "dog")]


def test_a_class_folder_without_images_is_skipped(tmp_path: Path):
    data = _test_split(tmp_path / "data", {"a": ["1.png"], "b": [], "c": ["3.png"]})
    picked = samples(_context(tmp_path, count=3), data_dir=lambda: data)
    assert [s.name for s in picked] == ["a/1.png", "c/3.png"]


def test_a_smoke_test_without_any_image_fails(tmp_path: Path):
    data = _test_split(tmp_path / "data", {"a": ["scan.tif"], "b": ["scan.tif"]})
    context = _context(tmp_path, count=2)
    with pytest.raises(UserError):  # SmokeTestFailed is one too
        run(context, _caller({}), samples(context, data_dir=lambda: data))


@pytest.mark.parametrize("tree", ["no test folder", "test folder without classes"])
def test_data_without_a_test_split_names_data_source(tmp_path: Path, tree: str):
    data = tmp_path / "data"
    (data / "train" / "0").mkdir(parents=True)
    if tree == "test folder without classes":
        (data / "test").mkdir()
        (data / "test" / "0.png").write_bytes(PNG)
    with pytest.raises(UserError, match=r"^data.source: no test split with class folders in .*; pass image=PATH$"):
        samples(_context(tmp_path), data_dir=lambda: data)


# ---- run --------------------------------------------------------------------------------------------

def _caller(answers: dict[str, Answer], sent: list[Sample] | None = None):
    def call(sample: Sample) -> Answer:
        if sent is not None:
            sent.append(sample)
        return answers[sample.name]

    return call


def _ok(top_k: list[dict[str, Any]] = TOP_K, latency: float = 12.34) -> Answer:
    return Answer(200, {"predictions": [top_k]}, latency)


def test_run_sends_every_sample_and_records_the_top_prediction(tmp_path: Path):
    batch = [Sample("7/a.png", PNG, "image/png", "7"), Sample("1/b.png", PNG, "image/png", "1")]
    sent: list[Sample] = []
    context = _context(tmp_path)
    records = run(context, _caller({"7/a.png": _ok(), "1/b.png": _ok(latency=3.06)}, sent), batch)
    assert sent == batch
    assert records[0] == {"image": "7/a.png", "true_label": "7", "status": 200, "latency_ms": 12.3,
                          "predictions": TOP_K, "label": "7", "score": 0.91}
    assert (records[1]["label"], records[1]["latency_ms"]) == ("7", 3.1)


def test_run_prints_a_table_marking_right_and_wrong(tmp_path: Path):
    batch = [Sample("7/a.png", PNG, "image/png", "7"), Sample("1/b.png", PNG, "image/png", "1"),
             Sample("mine.png", PNG, "image/png", None)]
    context = _context(tmp_path)
    run(context, _caller({s.name: _ok() for s in batch}), batch)
    text = context.console.export_text()
    assert "predictions through the function" in text
    cells = {line.split("│")[1].strip(): [c.strip() for c in line.strip("│").split("│")]
             for line in text.splitlines() if line.startswith("│")}
    assert cells["7/a.png"] == ["7/a.png", "7", "7 ✓", "0.910", "1 0.05, 9 0.02", "12 ms"]
    assert cells["1/b.png"][1:3] == ["1", "7 ✗"]
    assert cells["mine.png"][1:3] == ["", "7"]


def test_a_failed_call_fails_the_smoke_test_after_printing_every_row(tmp_path: Path):
    batch = [Sample("0/a.png", PNG, "image/png", "0"), Sample("3/b.png", PNG, "image/png", "3"),
             Sample("6/c.png", PNG, "image/png", "6")]
    error = {"error": {"code": "ModelError", "message": "the endpoint answered 500"}}
    sent: list[Sample] = []
    context = _context(tmp_path)
    with pytest.raises(SmokeTestFailed) as failed:
        run(context, _caller({"0/a.png": _ok(), "3/b.png": Answer(503, error, 40.0),
                              "6/c.png": Answer(502, {"error": "other"}, 1.0)}, sent), batch)
    assert len(sent) == 3  # every sample is sent, the first failure is reported
    assert failed.value.exit_code == EXIT_VIOLATIONS
    assert str(failed.value) == f"invoke: the function answered 503 for 3/b.png: {json.dumps(error)}"
    text = context.console.export_text()
    assert "HTTP 503" in text and "HTTP 502" in text and "0 ✓" not in text


def test_a_long_error_body_is_cut_in_the_message(tmp_path: Path):
    batch = [Sample("x.png", PNG, "image/png", None)]
    with pytest.raises(SmokeTestFailed) as failed:
        run(_context(tmp_path), _caller({"x.png": Answer(500, {"message": "y" * 1000}, 1.0)}), batch)
    assert len(str(failed.value)) == len("invoke: the function answered 500 for x.png: ") + 300


def test_a_200_without_predictions_fails_the_smoke_test(tmp_path: Path):
    batch = [Sample("x.png", PNG, "image/png", None)]
    with pytest.raises(SmokeTestFailed):
        run(_context(tmp_path), _caller({"x.png": Answer(200, {"error": "not JSON", "message": "<html>"}, 1.0)}),
            batch)


# ---- _json ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, parsed", [
    (b'{"predictions": []}', {"predictions": []}),
    ('{"a": 1}', {"a": 1}),
    (b"[1, 2]", {"value": [1, 2]}),
    (b"3", {"value": 3}),
    (b"<html>Bad Gateway</html>", {"error": "not JSON", "message": "b'<html>Bad Gateway</html>'"}),
    ("", {"error": "not JSON", "message": ""}),
    (None, {"error": "not JSON", "message": "None"}),
])
def test_json_answers(raw, parsed):
    assert invoke._json(raw) == parsed


def test_json_cuts_a_long_non_json_answer():
    assert invoke._json("x" * 1000) == {"error": "not JSON", "message": "x" * 300}


# ---- the callers --------------------------------------------------------------------------------------

class _FunctionUrl(BaseHTTPRequestHandler):
    """A stand-in for the local function runtime's Function URL."""

    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests.append({"path": self.path, "content_type": self.headers["Content-Type"], "body": body})
        if body == b"fail":
            status, payload = 500, json.dumps({"error": {"code": "ModelError"}}).encode()
        elif body == b"gateway":
            status, payload = 502, b"Bad Gateway"
        else:
            status, payload = 200, json.dumps({"predictions": [TOP_K]}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def function_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    handler = type("Handler", (_FunctionUrl,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    finally:
        server.shutdown()
        server.server_close()


LOCAL = SimpleNamespace(account=LOCAL_ACCOUNT, serves_data_plane=True)


def test_the_http_caller_posts_the_image_to_the_function_url(function_url):
    url, requests = function_url
    call = function_caller(settings_for("inv-http"), LOCAL, SimpleNamespace(function_url=f"{url}/"))
    answer = call(Sample("a.png", PNG, "image/png", None))
    assert (answer.status, answer.body) == (200, {"predictions": [TOP_K]}) and answer.latency_ms >= 0
    assert requests == [{"path": "/", "content_type": "image/png", "body": PNG}]


def test_the_http_caller_returns_error_answers(function_url):
    url, _ = function_url
    call = function_caller(settings_for("inv-http"), LOCAL, SimpleNamespace(function_url=f"{url}/"))
    failed = call(Sample("a.png", b"fail", "image/png", None))
    assert (failed.status, failed.body) == (500, {"error": {"code": "ModelError"}})
    gateway = call(Sample("a.png", b"gateway", "image/png", None))
    assert (gateway.status, gateway.body["error"]) == (502, "not JSON")


def test_a_function_url_nobody_answers_is_a_user_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    call = function_caller(settings_for("inv-http"), LOCAL, SimpleNamespace(function_url=f"http://127.0.0.1:{port}/"))
    with pytest.raises(UserError, match=rf"^the local function at http://127.0.0.1:{port}/ did not answer"):
        call(Sample("a.png", PNG, "image/png", None))


def test_without_a_plane_the_runtime_registered_with_the_emulator_is_called(function_url, local_target, stack_name):
    url, requests = function_url
    function_name = f"{stack_name}-invoke"
    register_runtime(local_target.endpoint_url, function_name, url)
    try:
        call = function_caller(settings_for(stack_name), local_target)
        assert call(Sample("a.png", PNG, "image/png", None)).status == 200
    finally:
        register_runtime(local_target.endpoint_url, function_name, None)
    assert [r["path"] for r in requests] == ["/"]


def test_without_a_registered_runtime_it_says_how_to_serve_one(local_target, stack_name):
    with pytest.raises(UserError, match=rf"no local runtime runs {stack_name}-invoke: .*python -m runner.local"):
        function_caller(settings_for(stack_name), local_target)


class _Lambda:
    def __init__(self, responses: list[dict[str, Any]]):
        self.responses = responses
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return self.responses.pop(0)


def _aws(client: _Lambda) -> Any:
    return SimpleNamespace(account="210987654321", serves_data_plane=False,
                           client=lambda service: client if service == "lambda" else None)


def _payload(value: Any) -> io.BytesIO:
    return io.BytesIO(json.dumps(value).encode())


def test_on_aws_the_alias_is_invoked_with_a_direct_event():
    client = _Lambda([{"StatusCode": 200, "Payload": _payload({"statusCode": 200,
                                                                 "body": json.dumps({"predictions": [TOP_K]})})}])
    settings = settings_for("inv-aws")
    answer = function_caller(settings, _aws(client))(Sample("a.jpg", PNG, "image/jpeg", None))
    assert (answer.status, answer.body) == (200, {"predictions": [TOP_K]})
    [call] = client.calls
    assert (call["FunctionName"], call["Qualifier"]) == ("inv-aws-invoke", settings.function.alias)
    assert json.loads(call["Payload"]) == {"image": base64.b64encode(PNG).decode(), "content_type": "image/jpeg"}


def test_on_aws_a_function_error_or_a_malformed_proxy_answer_is_502():
    client = _Lambda([
        {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": _payload({"errorMessage": "boom"})},
        {"StatusCode": 200, "Payload": _payload({"body": "{}"})},
        {"StatusCode": 200, "Payload": _payload({"statusCode": 400, "body": "not json"})},
    ])
    call = function_caller(settings_for("inv-aws"), _aws(client))
    sample = Sample("a.png", PNG, "image/png", None)
    crashed = call(sample)
    assert crashed.status == 502 and crashed.body["error"] == "FunctionError" and "boom" in crashed.body["message"]
    no_status = call(sample)
    assert (no_status.status, no_status.body) == (502, {})
    not_json = call(sample)
    assert (not_json.status, not_json.body) == (400, {"error": "not JSON", "message": "not json"})
