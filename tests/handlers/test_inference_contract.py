"""handlers/inference.py: the SageMaker PyTorch serving contract on a tiny real artifact."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from handlers_testkit import CLASSES, IMAGE_SIZE, image_bytes

from handlers import inference


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def run(model, body, content_type, accept="application/json"):
    """The toolkit's order of calls; returns the decoded JSON and the response content type."""
    data = inference.input_fn(body, content_type)
    payload, out_type = inference.output_fn(inference.predict_fn(data, model), accept)
    return json.loads(payload), out_type


# --------------------------------------------------------------------------- model_fn


def test_model_fn_loads_the_artifact_in_eval_form(loaded_model):
    assert loaded_model.classes == CLASSES
    assert loaded_model.image_size == IMAGE_SIZE
    # Traced and frozen: torch.jit.freeze takes only eval-mode modules and turns every
    # parameter into a constant, so nothing is left to train.
    assert isinstance(loaded_model.net, torch.jit.ScriptModule)
    assert list(loaded_model.net.parameters()) == []


def test_freezing_can_be_turned_off(artifact, monkeypatch):
    monkeypatch.setenv("SAGEGATE_FREEZE", "0")
    eager = inference.model_fn(str(artifact.directory)).net
    assert not isinstance(eager, torch.jit.ScriptModule)
    assert not eager.training and all(not p.requires_grad for p in eager.parameters())


def test_model_fn_refuses_an_unknown_format_version(tmp_path, artifact):
    for name in ("model.pth", "model.json"):
        (tmp_path / name).write_bytes((artifact.directory / name).read_bytes())
    meta = json.loads((tmp_path / "model.json").read_text())
    (tmp_path / "model.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ValueError, match="format_version"):
        inference.model_fn(str(tmp_path))


def test_model_fn_fails_fast_on_a_bad_limit(monkeypatch, artifact):
    monkeypatch.setenv("SAGEGATE_TOP_K", "many")
    with pytest.raises(ValueError, match="SAGEGATE_TOP_K"):
        inference.model_fn(str(artifact.directory))


def test_fast_form_gives_the_same_predictions_as_the_plain_model(loaded_model, artifact):
    """Tracing, freezing and channels_last are optimisations only: same top-k, scores equal to
    float rounding."""
    from training.model import build_model, load_state

    plain = load_state(build_model("resnet18", len(CLASSES), 16), str(artifact.directory / "model.pth")).eval()
    images = [
        inference.decode_image(image_bytes("PNG", color=(i * 40, 255 - i * 30, 128), size=(50 + i, 40)))
        for i in range(6)
    ]
    batch = inference.preprocess(images, loaded_model)
    fast = inference.forward_probabilities(loaded_model, batch)
    with torch.inference_mode():
        reference = torch.softmax(plain(batch.contiguous()), dim=1)
    assert torch.equal(fast.argsort(dim=1), reference.argsort(dim=1))
    assert torch.allclose(fast, reference, atol=1e-5)


# --------------------------------------------------------------------------- content types


@pytest.mark.parametrize(
    "content_type", ["image/png", "image/jpeg", "application/x-image", "Image/PNG; charset=binary"]
)
def test_raw_image_content_types(loaded_model, png, content_type):
    doc, out_type = run(loaded_model, png, content_type)
    assert out_type == "application/json"
    [row] = doc["predictions"]
    assert [e["label"] for e in row] == [CLASSES[e["index"]] for e in row]
    assert [e["score"] for e in row] == sorted((e["score"] for e in row), reverse=True)
    assert len(row) == len(CLASSES)  # default k=5 is capped at the number of classes
    assert sum(e["score"] for e in row) == pytest.approx(1.0, abs=1e-4)


def test_jpeg_bytes_decode(loaded_model, jpeg):
    doc, _ = run(loaded_model, jpeg, "image/jpeg")
    assert len(doc["predictions"]) == 1


def test_every_encoding_of_one_image_gives_the_same_prediction(loaded_model, png):
    raw, _ = run(loaded_model, png, "image/png")
    encodings = [
        (json.dumps({"image": b64(png)}), "application/json"),  # str: how the toolkit passes JSON
        (json.dumps({"image": b64(png)}).encode(), "application/json; charset=utf-8"),  # bytes
        (bytearray(json.dumps({"image": "data:image/png;base64," + b64(png)}).encode()), "application/json"),
        (json.dumps({"image": base64.urlsafe_b64encode(png).decode().rstrip("=")}), "application/json"),
        (json.dumps({"instances": [b64(png)]}), "application/json"),
        (json.dumps([{"image": b64(png)}]), "application/json"),
    ]
    for body, content_type in encodings:
        doc, _ = run(loaded_model, body, content_type)
        assert doc == raw, content_type


def test_instances_batch_keeps_request_order(loaded_model, png, jpeg):
    doc, _ = run(
        loaded_model,
        json.dumps({"instances": [b64(png), {"image": b64(jpeg)}, b64(png)]}),
        "application/json",
    )
    single_png, _ = run(loaded_model, png, "image/png")
    single_jpeg, _ = run(loaded_model, jpeg, "image/jpeg")
    assert len(doc["predictions"]) == 3
    assert doc["predictions"][0] == doc["predictions"][2] == single_png["predictions"][0]
    assert [e["index"] for e in doc["predictions"][1]] == [e["index"] for e in single_jpeg["predictions"][0]]


def test_top_k_from_request_then_accept_then_environment(loaded_model, png, monkeypatch):
    doc, _ = run(
        loaded_model,
        json.dumps({"image": b64(png), "top_k": 1}),
        "application/json",
        "application/json;top_k=2",
    )
    assert len(doc["predictions"][0]) == 1
    doc, _ = run(loaded_model, png, "image/png", 'application/json; top_k="2"')
    assert len(doc["predictions"][0]) == 2
    monkeypatch.setenv("SAGEGATE_TOP_K", "1")
    doc, _ = run(loaded_model, png, "image/png", None)
    assert len(doc["predictions"][0]) == 1


@pytest.mark.parametrize("accept", [None, "", "*/*", "application/*", "text/html, application/json;q=0.9"])
def test_acceptable_accept_headers(loaded_model, png, accept):
    doc, out_type = run(loaded_model, png, "image/png", accept)
    assert out_type == "application/json" and doc["predictions"]


# --------------------------------------------------------------------------- client errors


def raises_client_error(status: int, body, content_type, accept=None, model=None):
    """Every client error is a toolkit error carrying the status SageMaker will answer with."""
    with pytest.raises(inference.ClientInputError) as info:
        data = inference.input_fn(body, content_type)
        if model is not None:
            inference.output_fn(inference.predict_fn(data, model), accept)
    assert isinstance(info.value, inference._ToolkitError)
    assert info.value.status_code == status
    assert info.value.message and info.value.phrase
    return info.value


@pytest.mark.parametrize(
    "content_type", [None, "", "text/plain", "application/octet-stream", "multipart/form-data"]
)
def test_unsupported_content_type_is_415(png, content_type):
    raises_client_error(415, png, content_type)


@pytest.mark.parametrize("accept", ["text/csv", "image/png", "application/xml, text/plain"])
def test_unsupported_accept_is_406(loaded_model, png, accept):
    raises_client_error(406, png, "image/png", accept, loaded_model)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "image/png"),
        (b"definitely not an image", "image/jpeg"),
        (image_bytes("PNG")[:60], "image/png"),  # truncated
        (b"GIF89a" + b"\x00" * 20, "application/x-image"),
        ("{not json", "application/json"),
        (b"\xff\xfe\x00", "application/json"),
        ("42", "application/json"),
        ('{"something": "else"}', "application/json"),
        ('{"image": "!!!not base64!!!"}', "application/json"),
        ('{"image": 12}', "application/json"),
        ('{"image": "data:image/png,abc"}', "application/json"),
        ('{"instances": "abc"}', "application/json"),
        ('{"instances": []}', "application/json"),
        ("[]", "application/json"),
        ('{"instances": [{"nothing": 1}]}', "application/json"),
        (json.dumps({"image": b64(b"not an image")}), "application/json"),
        (json.dumps({"image": b64(image_bytes()), "top_k": 0}), "application/json"),
        (json.dumps({"image": b64(image_bytes()), "top_k": "three"}), "application/json"),
        (json.dumps({"image": b64(image_bytes()), "top_k": True}), "application/json"),
        ("[" * 100_000 + "]" * 100_000, "application/json"),  # recursion bomb
    ],
)
def test_bad_input_is_400(body, content_type):
    raises_client_error(400, body, content_type)


def test_bad_accept_top_k_is_400(loaded_model, png):
    raises_client_error(400, png, "image/png", "application/json; top_k=0", loaded_model)


def test_batch_over_the_limit_is_400(monkeypatch, png):
    monkeypatch.setenv("SAGEGATE_MAX_BATCH", "2")
    error = raises_client_error(400, json.dumps({"instances": [b64(png)] * 3}), "application/json")
    assert isinstance(error, inference.BatchTooLargeError)


def test_body_over_the_limit_is_413(monkeypatch, png):
    monkeypatch.setenv("SAGEGATE_MAX_BODY_BYTES", str(len(png) - 1))
    raises_client_error(413, png, "image/png")
    raises_client_error(413, json.dumps({"image": b64(png)}), "application/json")


def test_image_over_the_pixel_limit_is_413_before_decoding(monkeypatch):
    monkeypatch.setenv("SAGEGATE_MAX_IMAGE_PIXELS", "100")
    raises_client_error(413, image_bytes(size=(11, 10)), "image/png")


def test_a_model_fault_is_not_a_client_error(poisoned_artifact, png):
    model = inference.model_fn(str(poisoned_artifact))
    with pytest.raises(inference.ModelOutputError):
        inference.predict_fn(inference.input_fn(png, "image/png"), model)


# --------------------------------------------------------------------------- URLs


class _ImageSite(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        _ImageSite.hits.append(self.path)
        routes = {
            "/cat.png": (200, image_bytes(), {}),
            "/moved": (302, b"", {"Location": "/cat.png"}),
            "/big": (200, b"x" * 5000, {}),
        }
        status, body, headers = routes.get(self.path, (404, b"", {}))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def image_site():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ImageSite)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def allow_site(monkeypatch, image_site):
    monkeypatch.setenv("SAGEGATE_URL_ALLOWLIST", f"example.com, {image_site}")
    monkeypatch.setenv("SAGEGATE_URL_SCHEMES", "http,https")
    _ImageSite.hits.clear()
    return image_site


def test_url_of_an_allowed_host_is_fetched(loaded_model, allow_site, png):
    doc, _ = run(loaded_model, json.dumps({"url": f"http://{allow_site}/cat.png"}), "application/json")
    direct, _ = run(loaded_model, png, "image/png")
    assert doc == direct
    assert _ImageSite.hits == ["/cat.png"]


def test_urls_are_refused_by_default_without_any_request(monkeypatch, image_site):
    monkeypatch.delenv("SAGEGATE_URL_ALLOWLIST", raising=False)
    _ImageSite.hits.clear()
    error = raises_client_error(400, json.dumps({"url": f"http://{image_site}/cat.png"}), "application/json")
    assert isinstance(error, inference.UrlRefusedError)
    assert _ImageSite.hits == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # instance metadata: the classic SSRF target
        "http://localhost/cat.png",
        "http://evil.example.com.attacker.net/cat.png",
        "file:///etc/passwd",
        "ftp://example.com/cat.png",
        "http://user:pw@{site}/cat.png",
        "not a url",
    ],
)
def test_urls_outside_the_allow_list_are_refused(allow_site, url):
    raises_client_error(400, json.dumps({"url": url.format(site=allow_site)}), "application/json")
    assert _ImageSite.hits == []


def test_https_only_by_default(monkeypatch, image_site):
    monkeypatch.setenv("SAGEGATE_URL_ALLOWLIST", image_site)
    monkeypatch.delenv("SAGEGATE_URL_SCHEMES", raising=False)
    raises_client_error(400, json.dumps({"url": f"http://{image_site}/cat.png"}), "application/json")


def test_redirects_are_not_followed(allow_site):
    raises_client_error(400, json.dumps({"url": f"http://{allow_site}/moved"}), "application/json")
    assert _ImageSite.hits == ["/moved"]


def test_url_content_over_the_limit_is_413(monkeypatch, allow_site):
    monkeypatch.setenv("SAGEGATE_MAX_BODY_BYTES", "1000")
    raises_client_error(413, json.dumps({"url": f"http://{allow_site}/big"}), "application/json")


def test_url_errors_are_400(allow_site):
    raises_client_error(400, json.dumps({"url": f"http://{allow_site}/missing"}), "application/json")


def test_wildcard_allow_list_entries():
    limits = inference.Limits(url_allowlist=("*.images.example.com",))
    assert inference.url_allowed("https://a.images.example.com/x.png", limits)
    assert not inference.url_allowed("https://images.example.com.evil.net/x.png", limits)
    assert not inference.url_allowed("https://evilimages.example.com/x.png", limits)


# --------------------------------------------------------------------------- the artifact's code/ alone


def test_inference_runs_with_only_the_artifacts_code_dir(artifact, png, tmp_path):
    """As in the serving container: code/ on sys.path, nothing else of the project importable."""
    (tmp_path / "image.png").write_bytes(png)
    script = f"""
import json, sys
sys.path.insert(0, {str(artifact.directory / "code")!r})
import inference
model = inference.model_fn({str(artifact.directory)!r})
body, ctype = inference.output_fn(
    inference.predict_fn(inference.input_fn(open({str(tmp_path / "image.png")!r}, "rb").read(), "image/png"), model),
    "application/json")
project = sorted(m for m in sys.modules if m == "handlers" or m.startswith(("handlers.", "training")))
print(json.dumps({{"ctype": ctype, "n": len(json.loads(body)["predictions"]), "project": project,
                  "training": sys.modules["training"].__file__}}))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ctype"] == "application/json" and result["n"] == 1
    assert result["project"] == ["training", "training.model"]
    assert result["training"].startswith(str(artifact.directory / "code"))
