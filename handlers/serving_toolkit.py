"""What SageMaker's PyTorch serving stack does around ``inference.py``, so ``/invocations`` answers alike.

In the real container the model server (TorchServe) hands each request to the serving toolkit's
``Transformer.transform``, which calls ``input_fn``/``predict_fn``/``output_fn`` from the
artifact's ``code/inference.py``. What it does around those calls decides the status a request
gets, so the local server does the same, in the same order. Read from:

- sagemaker-pytorch-inference 2.0.25, which vendors ``sagemaker_inference`` (identical to
  sagemaker-inference 1.10.1 but for one log line): ``src/sagemaker_inference/transformer.py``
  (``Transformer.transform``, ``Transformer.handle_error``), ``content_types.py``
  (``UTF8_TYPES``), ``environment.py`` (``default_accept``), ``errors.py``;
  ``src/sagemaker_pytorch_serving_container/etc/default-ts.properties``
  (``decode_input_request=false``: the body reaches ``transform`` as the raw bytes).
- TorchServe 0.12.0: ``ts/protocol/otf_message_handler.py`` (``create_predict_response``) and
  ``frontend/.../job/RestJob.java`` (``responseInference``): the status, phrase and body that
  ``handle_error`` sets are what the client gets, with a Content-Type header only when the
  handler set one (``transform`` sets it on success only).

Neither the toolkit nor TorchServe looks at Accept before ``input_fn``: an Accept this model cannot
produce is refused by our own ``output_fn`` (406), after ``input_fn`` and ``predict_fn`` have run.
"""

from __future__ import annotations

import os
import traceback

from handlers import inference
from handlers.http_server import Reply

# content_types.py: UTF8_TYPES = [JSON, CSV]. transform() tests ``content_type in UTF8_TYPES`` on the
# raw header value, so only these exact strings are decoded ("application/json; charset=utf-8" and
# "Application/JSON" reach input_fn as bytes).
UTF8_TYPES = ("application/json", "text/csv")
ANY = "*/*"  # content_types.ANY
# environment.py: default_accept = $SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT or content_types.JSON; the
# stack's model (runner/stack/endpoint.py) does not set that variable.
DEFAULT_ACCEPT = "application/json"
# What inference.py's errors derive from: sagemaker_inference.errors.BaseInferenceToolkitError in the
# container, its stand-in outside it. transform() gives these their own status_code.
TOOLKIT_ERROR = inference._ToolkitError
# The checkout's own location is left out of a trace: the container's trace shows the container's paths.
_CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def effective_accept(accept: str | None) -> str:
    """transform(): a missing, empty or exactly ``*/*`` Accept becomes the default; nothing is validated."""
    if not accept or accept == ANY:
        return DEFAULT_ACCEPT
    return accept


def request_body(body: bytes, content_type: str | None) -> bytes | str:
    """transform(): the body ``input_fn`` receives, ``str`` for the exact UTF-8 types, else the bytes.

    The decoding is strict and happens before ``input_fn``: a body that is not UTF-8 raises
    ``UnicodeDecodeError``, which is no toolkit error, so the request is a 500.
    """
    if content_type in UTF8_TYPES:
        return body.decode("utf-8")
    return body


def error_reply(exc: BaseException) -> Reply:
    """transform()'s ``except`` + handle_error(): the status, and ``message + "\\n" + traceback`` as the body.

    A toolkit error (every :class:`inference.ClientInputError`) keeps its ``status_code`` and
    ``message``; anything else becomes ``GenericInferenceToolkitError(500, str(e))``. The trace is
    what ``traceback.format_exc()`` gives where the exception is caught: the frames from the
    request's handling down to the raise (file names relative to the checkout). No Content-Type
    header, as TorchServe sends it.
    """
    if isinstance(exc, TOOLKIT_ERROR):
        status, message = int(exc.status_code), str(exc.message)
    else:
        status, message = 500, str(exc)
    trace = "".join(traceback.format_exception(exc)).replace(_CHECKOUT, "")
    return Reply(status, f"{message}\n{trace}".encode())
