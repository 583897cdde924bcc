"""The local endpoint answers each request with the status SageMaker's PyTorch serving container gives.

Each row's status is what the real stack answers for this artifact's ``code/inference.py``, read
from the source of the versions below (the newest releases on PyPI), with the file and function
that decides it:

- sagemaker-pytorch-inference 2.0.25 (``sagemaker_pytorch_serving_container``), which vendors
  ``sagemaker_inference`` identical to sagemaker-inference 1.10.1 but for one log line;
  ``transformer.py`` below is its ``src/sagemaker_inference/transformer.py``;
- TorchServe 0.12.0, the model server under it (``decode_input_request=false`` in the toolkit's
  ``etc/default-ts.properties``, so the body reaches ``Transformer.transform`` as bytes).

In ``Transformer.transform``: an Accept that is missing, empty or exactly ``*/*`` becomes
``application/json``; the body is decoded as UTF-8 when the Content-Type header is exactly
``application/json`` or ``text/csv`` (``content_types.UTF8_TYPES``); then input_fn, predict_fn,
output_fn. An exception that is a ``BaseInferenceToolkitError`` (every ``inference.ClientInputError``)
answers its ``status_code``, anything else 500 (``GenericInferenceToolkitError``); the body is
``message + "\\n" + traceback`` (``handle_error``) with no Content-Type header (TorchServe's
``RestJob.responseInference`` sets one only when the handler did, and ``transform`` does only on
success). Neither looks at Accept before input_fn: our ``output_fn`` is the only one to (406).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pytest
from botocore.exceptions import ClientError
from handlers_testkit import ENDPOINT_NAME, REPO, image_bytes
from test_local_server import request, runtime_client

PNG = image_bytes("PNG")
CORRUPT = b"not an image"
JSON_IMAGE = json.dumps({"image": base64.b64encode(PNG).decode()})
NOT_UTF8_JSON = b'{"image": "\xff"}'

TRANSFORM = "transformer.py Transformer.transform"
INPUT_FN = "inference.py input_fn (a ClientInputError: transformer.py keeps its status_code)"
OUTPUT_FN = "inference.py output_fn, after input_fn and predict_fn (transformer.py _default_transform_fn)"
DECODE = "transformer.py transform: input_data.decode('utf-8') for UTF8_TYPES; UnicodeDecodeError → 500"
NOT_DECODED = "not exactly a UTF8_TYPES value, so the bytes reach input_fn"


@dataclass(frozen=True)
class Row:
    name: str
    body: bytes
    content_type: str | None
    accept: str | None
    status: int  # what the real container answers
    source: str  # where in the toolkit that status comes from


# fmt: off
TABLE = [
    Row("good image", PNG, "image/png", None, 200, TRANSFORM + ": no Accept → application/json"),
    Row("good image, Accept */*", PNG, "image/png", "*/*", 200, TRANSFORM + ": */* → application/json"),
    Row("good image, Accept with top_k", PNG, "image/png", "application/json; top_k=2", 200, OUTPUT_FN),
    Row("good JSON image", JSON_IMAGE.encode(), "application/json", None, 200, TRANSFORM),
    Row("wrong content type", PNG, "text/plain", None, 415, INPUT_FN),
    Row("no content type", PNG, None, None, 415, INPUT_FN + ", with content_type None"),
    Row("unsupported Accept", PNG, "image/png", "text/csv", 406, OUTPUT_FN),
    Row("unsupported Accept, wrong content type", PNG, "text/plain", "text/csv", 415, INPUT_FN + ", first"),
    Row("unsupported Accept, corrupt image", CORRUPT, "image/png", "text/csv", 400, INPUT_FN + ", first"),
    Row("non-UTF-8 JSON", NOT_UTF8_JSON, "application/json", None, 500, DECODE),
    Row("UTF-16 JSON", JSON_IMAGE.encode("utf-16"), "application/json", None, 500, DECODE),
    Row("UTF-8 JSON with a byte-order mark", JSON_IMAGE.encode("utf-8-sig"), "application/json", None, 400,
        DECODE + "; input_fn's json.loads refuses the str's leading U+FEFF"),
    Row("non-UTF-8 JSON, charset parameter", NOT_UTF8_JSON, "application/json; charset=utf-8", None, 400,
        INPUT_FN + "; " + NOT_DECODED),
    Row("UTF-16 JSON, charset parameter", JSON_IMAGE.encode("utf-16"), "application/json; charset=utf-16",
        None, 200, TRANSFORM + "; " + NOT_DECODED + ", and json.loads reads UTF-16 bytes"),
    Row("non-UTF-8 CSV", b"1,2,\xff", "text/csv", None, 500, DECODE + ", before input_fn's 415"),
    Row("UTF-8 CSV", b"1,2,3", "text/csv", None, 415, INPUT_FN),
    Row("empty image body", b"", "image/png", None, 400, INPUT_FN + "; the toolkit has no empty-body check"),
    Row("empty JSON body", b"", "application/json", None, 400, INPUT_FN + "; decoded to ''"),
    Row("corrupt image", CORRUPT, "image/png", None, 400, INPUT_FN),
    Row("truncated image", PNG[: len(PNG) // 2], "image/png", None, 400, INPUT_FN),
    Row("JSON that does not parse", b'{"image": ', "application/json", None, 400, INPUT_FN),
]
# fmt: on


def post(server, row: Row):
    headers = {"Content-Type": row.content_type, "Accept": row.accept}
    headers = {name: value for name, value in headers.items() if value is not None}
    return request(server, "POST", "/invocations", row.body, headers)


@pytest.mark.parametrize("row", TABLE, ids=[row.name for row in TABLE])
def test_the_container_contract_answers_as_the_serving_toolkit(server, row):
    status, headers, body = post(server, row)
    assert status == row.status, row.source
    if status == 200:
        assert headers["Content-Type"] == "application/json" and json.loads(body)["predictions"]
        return
    # handle_error: the message, a newline, the traceback; no Content-Type (TorchServe sends none).
    assert "Content-Type" not in headers
    message, _, trace = body.decode("utf-8").partition("\n")
    assert message and trace.startswith("Traceback (most recent call last):\n")
    assert trace.rstrip().endswith(message)  # the trace's last line is the exception
    assert str(REPO) not in trace  # the checkout's paths stay out, as the host's do in the container


@pytest.mark.parametrize("name", ["non-UTF-8 JSON", "wrong content type"])
def test_a_container_error_is_a_model_error_on_the_runtime_path(server, name):
    row = next(row for row in TABLE if row.name == name)
    status, _, container_body = post(server, row)
    with pytest.raises(ClientError) as info:
        runtime_client(server.url).invoke_endpoint(
            EndpointName=ENDPOINT_NAME, Body=row.body, ContentType=row.content_type
        )
    response = info.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == status == row.status
    assert response["OriginalMessage"] == container_body.decode("utf-8")
