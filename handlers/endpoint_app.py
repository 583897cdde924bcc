"""The endpoint's requests and responses: SageMaker's container contract and its runtime API.

``GET /ping``
    200 once the model is loaded (the container contract).
``POST /invocations``
    The container contract, answered as SageMaker's PyTorch serving toolkit answers it
    (``handlers.serving_toolkit``): an ``application/json`` or ``text/csv`` body is decoded as
    UTF-8 before ``inference.input_fn`` (not UTF-8: 500), Accept is only checked by ``output_fn``
    (406, after ``input_fn``), and an error is its status with the toolkit's text body, the
    message and a traceback. The server's own refusals (404, 411, 413, 503 busy, 504) keep a JSON
    ``{"error": {"type", "message"}}`` body.
``POST /endpoints/<name>/invocations``
    The SageMaker runtime API, so ``boto3.client("sagemaker-runtime", endpoint_url=URL)`` works
    unchanged. A production variant is picked by weight, or named by the
    ``X-Amzn-SageMaker-Target-Variant`` header, and returned in ``x-Amzn-Invoked-Production-Variant``.
    Errors use the runtime's shapes (``x-amzn-ErrorType`` + JSON body): an error from the model is
    ``ModelError`` (HTTP 424, ``OriginalStatusCode``/``OriginalMessage``/``LogStreamArn``), an
    overloaded server ``ServiceUnavailable`` (503), an unknown endpoint or target variant or a bad
    request ``ValidationError`` (400; 411/413 for a missing length or an oversize body).
"""

from __future__ import annotations

import json
import random
import re
import uuid
from email.message import Message
from functools import partial

import torch

from handlers import inference, serving_toolkit
from handlers.batching import Batcher, ServerBusyError, ServerStoppingError
from handlers.http_server import Reply, Route
from handlers.server_config import NAME_PATTERN, ServerConfig
from handlers.server_log import log_event

ACCOUNT_ID = "123456789012"  # the emulator's account id (moto's); only ever shown in error messages
RUNTIME_PATH = re.compile(f"^/endpoints/({NAME_PATTERN})/invocations$")
# Header names as botocore's sagemaker-runtime service model spells them.
TARGET_VARIANT_HEADER = "X-Amzn-SageMaker-Target-Variant"
INVOKED_VARIANT_HEADER = "x-Amzn-Invoked-Production-Variant"
_ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.sagemaker.runtime/"
_CONTAINER_REFUSAL_TYPES = {411: "LengthRequired", 413: "PayloadTooLargeError"}


def json_reply(status: int, doc: dict, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    return Reply(status, body, {"Content-Type": "application/json", **(headers or {})})


def container_error(status: int, error_type: str, message: str) -> Reply:
    return json_reply(status, {"error": {"type": error_type, "message": message}})


def runtime_error(status: int, error_type: str, message: str) -> Reply:
    """An error in the shape botocore's rest-json parser reads for sagemaker-runtime."""
    return json_reply(status, {"message": message}, {"x-amzn-ErrorType": error_type + _ERROR_TYPE_SUFFIX})


def _partition(region: str) -> str:
    """The ARN partition a region belongs to (China and GovCloud have their own)."""
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


def model_error(endpoint_name: str, container: Reply, region: str) -> Reply:
    """What SageMaker returns when the container answers non-2xx: ModelError, HTTP 424.

    ``OriginalMessage`` is the container's body as text, whatever its shape (the toolkit's
    message + traceback, or the server's JSON refusal).
    """
    original = container.body.decode("utf-8", "replace")
    side = "client" if container.status < 500 else "server"
    log_group = f"/aws/sagemaker/Endpoints/{endpoint_name}"
    doc = {
        "ErrorCode": f"{side.upper()}_ERROR_FROM_MODEL",
        "LogStreamArn": f"arn:{_partition(region)}:logs:{region}:{ACCOUNT_ID}:log-group:{log_group}",
        "Message": (
            f'Received {side} error ({container.status}) from primary with message "{original}". '
            f"See the log group {log_group} in account {ACCOUNT_ID} for more information."
        ),
        "OriginalMessage": original,
        "OriginalStatusCode": container.status,
    }
    return json_reply(424, doc, {"x-amzn-ErrorType": "ModelError" + _ERROR_TYPE_SUFFIX})


def _not_loaded(batch: object) -> torch.Tensor:
    raise RuntimeError("the model is not loaded yet")


def _with_request_id(reply: Reply) -> Reply:
    reply.headers.setdefault("x-amzn-RequestId", str(uuid.uuid4()))
    return reply


class EndpointApp:
    """The model behind a batcher, and the mapping from outcomes to container/runtime responses."""

    def __init__(
        self,
        model: inference.LoadedModel,
        config: ServerConfig,
        rng: random.Random | None = None,
        batcher: Batcher | None = None,
    ) -> None:
        self.model = model
        self.config = config
        self.batcher = batcher or self._new_batcher(config)
        self.batcher.forward = self._forward
        self._rng = rng or random.Random()
        self._variant_names = [name for name, _ in config.variants]
        self._variant_weights = [weight for _, weight in config.variants]
        self._ping = Route(self._pong, self._container_refusal, reads_body=False)
        self._container = Route(self.container_reply, self._container_refusal)

    @classmethod
    def load(cls, model_dir: str, config: ServerConfig, rng: random.Random | None = None) -> EndpointApp:
        """``model_fn`` on the batching thread, then the app: every parallel torch operation of the
        server (loading, tracing, resizing, normalising, forward passes) runs on that one thread
        (handlers/batching.py says why)."""
        batcher = cls._new_batcher(config)
        try:
            model = batcher.run(partial(inference.model_fn, model_dir))
        except BaseException:
            batcher.stop()
            raise
        return cls(model, config, rng, batcher)

    @staticmethod
    def _new_batcher(config: ServerConfig) -> Batcher:
        return Batcher(
            _not_loaded,
            max_batch=config.max_batch,
            max_delay_s=config.max_batch_delay_ms / 1000.0,
            max_queued_images=config.max_queued_images,
        )

    def _forward(self, images: list) -> torch.Tensor:
        """On the batching thread: resize and normalise the decoded images, one forward pass."""
        return inference.forward_probabilities(self.model, inference.preprocess(images, self.model))

    def resolve(self, method: str, path: str) -> Route | Reply:
        if method == "GET":
            if path == "/ping":
                return self._ping
            return container_error(404, "NotFound", "GET /ping is the only GET route")
        if path == "/invocations":
            return self._container
        runtime = RUNTIME_PATH.match(path)
        if runtime is None:
            return container_error(404, "NotFound", f"no route for {method} {path[:100]}")
        return Route(partial(self.runtime_reply, runtime.group(1)), self._runtime_refusal)

    def overloaded_reply(self) -> Reply:
        return runtime_error(503, "ServiceUnavailable", "The endpoint is overloaded; try again later.")

    def close(self) -> None:
        self.batcher.stop()

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[bytes, str]:
        """Run the inference contract in the serving toolkit's order; raises what it raises.

        transformer.py ``transform``: default the Accept, decode a JSON/CSV body, then input_fn,
        predict_fn (here: the batcher's preprocess + forward pass) and output_fn, which alone
        refuses an Accept (406), so a bad body is reported before a bad Accept.
        """
        accept = serving_toolkit.effective_accept(accept)
        data = serving_toolkit.request_body(body, content_type)
        self.batcher.preparing.add(1)
        try:  # decoding only (libpng/libjpeg, no torch op): the batching thread does the rest
            request = inference.input_fn(data, content_type)
        finally:
            self.batcher.preparing.add(-1)
        future = self.batcher.submit(request.images)
        probs = future.result(timeout=self.config.request_timeout_s)
        prediction = inference.Prediction(probabilities=probs, classes=self.model.classes, top_k=request.top_k)
        return inference.output_fn(prediction, accept)

    def container_reply(self, headers: Message, body: bytes) -> Reply:
        """``POST /invocations``: the model's own status codes."""
        return _with_request_id(self._container_outcome(headers, body))

    def runtime_reply(self, name: str, headers: Message, body: bytes) -> Reply:
        """``POST /endpoints/<name>/invocations``: the SageMaker runtime API's shapes."""
        return _with_request_id(self._runtime_outcome(name, headers, body))

    def choose_variant(self) -> str:
        """A production variant drawn by weight, as SageMaker splits an endpoint's traffic."""
        return self._rng.choices(self._variant_names, weights=self._variant_weights)[0]

    def _container_outcome(self, headers: Message, body: bytes) -> Reply:
        content_type, accept = headers.get("Content-Type"), headers.get("Accept")
        try:
            payload, out_type = self.invoke(body, content_type, accept)
            return Reply(200, payload, {"Content-Type": out_type})
        except (ServerBusyError, ServerStoppingError) as exc:  # the model server's queue, not the toolkit
            return container_error(503, type(exc).__name__, str(exc))
        except TimeoutError:
            return container_error(504, "Timeout", "the model did not answer in time")
        except Exception as exc:  # what transform() catches: its status and its text body
            reply = serving_toolkit.error_reply(exc)
            if reply.status >= 500:  # a model fault (or a body the toolkit cannot decode): logged
                log_event("model_error", error_type=type(exc).__name__, message=str(exc)[:300])
            return reply

    def _runtime_outcome(self, name: str, headers: Message, body: bytes) -> Reply:
        if self.config.endpoint_name is not None and name != self.config.endpoint_name:
            return runtime_error(400, "ValidationError", f"Endpoint {name} of account {ACCOUNT_ID} not found.")
        variant = headers.get(TARGET_VARIANT_HEADER)
        if variant is None:
            variant = self.choose_variant()
        elif variant not in self._variant_names:
            return runtime_error(
                400,
                "ValidationError",
                f"Variant {variant!r} not found for endpoint {name}; "
                f"its variants are {', '.join(self._variant_names)}.",
            )
        container = self._container_outcome(headers, body)
        if container.status == 200:
            container.headers[INVOKED_VARIANT_HEADER] = variant
            return container
        if container.status == 503:
            return runtime_error(503, "ServiceUnavailable", "The endpoint is overloaded; try again.")
        return model_error(name, container, self.config.region)

    @staticmethod
    def _pong(headers: Message, body: bytes) -> Reply:
        return Reply(200, b"", {"Content-Type": "text/plain"})

    @staticmethod
    def _container_refusal(status: int, message: str) -> Reply:
        return container_error(status, _CONTAINER_REFUSAL_TYPES[status], message)

    @staticmethod
    def _runtime_refusal(status: int, message: str) -> Reply:
        return runtime_error(status, "ValidationError", message)
