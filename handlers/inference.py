"""The SageMaker PyTorch serving contract for sagegate's image classifier.

The serving container (sagemaker-pytorch-inference-toolkit) imports this module as
``code/inference.py`` and calls, per request::

    model = model_fn(model_dir)                        # once per worker
    data = input_fn(request_body, request_content_type)
    prediction = predict_fn(data, model)
    body, content_type = output_fn(prediction, accept)

What the toolkit does around these calls (read from its ``transformer.py``): the body arrives as
``str`` when the content type is exactly ``application/json`` or ``text/csv`` and as ``bytes``
otherwise; an empty or ``*/*`` Accept is replaced by ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``
(``application/json``); ``output_fn`` may return the body or ``(body, content_type)``; an
exception that subclasses ``sagemaker_inference.errors.BaseInferenceToolkitError`` becomes a
response with its ``status_code``, any other exception a 500. So every error a client can cause
is raised as a :class:`ClientInputError` subclass (a ``BaseInferenceToolkitError`` inside the
container) and never surfaces as a 500 - but for a JSON or CSV body that is not UTF-8, which the
toolkit fails to decode before ``input_fn`` runs (a 500; ``handlers.serving_toolkit`` mirrors it).

Only ``training.model`` is imported from the project: the artifact ships this file with
``code/training/__init__.py`` and ``code/training/model.py`` and nothing else.

Requests
--------
``image/jpeg``, ``image/png``, ``application/x-image``
    The raw bytes of one image (JPEG, PNG, WebP, BMP or GIF; the declared type is not trusted,
    the bytes are).
``application/json``
    ``{"image": "<base64>"}`` for one image, ``{"instances": [<item>, ...]}`` (or a bare JSON list
    of items) for a batch, where an item is a base64 string, ``{"image": "<base64>"}`` or
    ``{"url": "https://..."}``; ``{"url": "..."}`` alone is one image. Base64 may carry a
    ``data:image/...;base64,`` prefix. An optional ``"top_k": <int>`` applies to every image.
    URLs are refused unless their host is in ``SAGEGATE_URL_ALLOWLIST`` (server-side request
    forgery), and are then fetched without following redirects, with a timeout and a size cap.

Preprocessing
-------------
Training's eval transform (training/data.py), on uint8 tensors: PNG and JPEG are decoded by
torchvision.io (libpng, libjpeg-turbo) straight to RGB ``3×H×W`` uint8, other formats and modes
(WebP, BMP, GIF, 16-bit PNG, CMYK JPEG) by PIL's ``convert("RGB")``; then a bilinear antialiased
resize on uint8 (PIL's filter, within one level of it) and one fused multiply-add that
normalises the whole channels_last batch (:class:`EvalTransform`).
tests/handlers/test_preprocess_equivalence.py checks it against training's transform.

Response (``application/json``; the Accept header may add ``;top_k=N``)
-----------------------------------------------------------------------
Always one list per image, in request order, best first::

    {"predictions": [[{"label": "7", "index": 7, "score": 0.91}, ...k entries], ...]}

``k`` comes from the request's ``top_k``, else the Accept parameter ``top_k``, else
``SAGEGATE_TOP_K`` (default 5), and is capped at the number of classes.

Errors (status codes the servers send)
--------------------------------------
415 unsupported content type · 406 unsupported Accept · 400 undecodable/empty image, bad JSON,
bad base64, refused or failed URL, batch over ``SAGEGATE_MAX_BATCH`` · 413 body over
``SAGEGATE_MAX_BODY_BYTES`` or an image over ``SAGEGATE_MAX_IMAGE_PIXELS``.

Environment (all optional)
--------------------------
``SAGEGATE_TOP_K`` (5), ``SAGEGATE_MAX_BODY_BYTES`` (6 MiB, SageMaker's real-time payload
limit), ``SAGEGATE_MAX_BATCH`` (16), ``SAGEGATE_MAX_IMAGE_PIXELS`` (25 000 000),
``SAGEGATE_URL_ALLOWLIST`` (comma-separated ``host``, ``host:port`` or ``*.domain``; empty =
no URL fetching), ``SAGEGATE_URL_SCHEMES`` (``https``), ``SAGEGATE_URL_TIMEOUT_S`` (5).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import os
import struct
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.io import ImageReadMode
from torchvision.io import decode_jpeg as _tv_decode_jpeg
from torchvision.io import decode_png as _tv_decode_png
from torchvision.transforms import functional as _tv_functional

from training.model import build_model, load_state

try:  # Inside the serving container: the toolkit maps these exceptions to their status code.
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ToolkitError
except ImportError:  # Outside it (handlers.serve, tests): same constructor, same attributes.

    class _ToolkitError(Exception):  # type: ignore[no-redef]
        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            self.status_code = status_code
            self.message = message
            self.phrase = phrase
            super().__init__(status_code, message, phrase)


JSON_CONTENT_TYPE = "application/json"
IMAGE_CONTENT_TYPES = frozenset({"image/jpeg", "image/png", "application/x-image"})
SUPPORTED_CONTENT_TYPES = IMAGE_CONTENT_TYPES | {JSON_CONTENT_TYPE}
# Formats PIL may try: a short list keeps PIL's rarely exercised parsers away from untrusted bytes.
ALLOWED_IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF")
# (format, PIL mode) pairs torchvision.io decodes straight to RGB uint8 tensors (libpng/libjpeg-turbo,
# no PIL image in between); anything else (WebP, BMP, GIF, 16-bit or 1-bit PNG, CMYK JPEG) is
# decoded by PIL and converted to RGB there, as before.
_FAST_DECODE = {
    "PNG": frozenset({"L", "LA", "RGB", "RGBA", "P"}),
    "JPEG": frozenset({"L", "RGB"}),
}
MODEL_JSON_FORMAT_VERSION = 1


# --------------------------------------------------------------------------- client errors


class ClientInputError(_ToolkitError):
    """A request the client must fix. ``status_code`` is what the servers answer."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(self.status, message, message)

    def __str__(self) -> str:
        return self.message


class UnsupportedContentTypeError(ClientInputError):
    status = 415


class NotAcceptableError(ClientInputError):
    status = 406


class BadRequestError(ClientInputError):
    """Malformed JSON, bad base64, missing fields, bad ``top_k``."""

    status = 400


class UndecodableImageError(ClientInputError):
    status = 400


class BatchTooLargeError(ClientInputError):
    status = 400


class UrlRefusedError(ClientInputError):
    """A URL whose scheme or host is not allow-listed, or that could not be fetched."""

    status = 400


class PayloadTooLargeError(ClientInputError):
    status = 413


class ModelOutputError(Exception):
    """The model produced something unusable (e.g. NaN from diverged weights): a server fault."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Limits:
    """Request limits and URL policy, read from the environment (see the module docstring)."""

    top_k: int = 5
    max_body_bytes: int = 6 * 1024 * 1024
    max_batch: int = 16
    max_image_pixels: int = 25_000_000
    url_allowlist: tuple[str, ...] = ()
    url_schemes: tuple[str, ...] = ("https",)
    url_timeout_s: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Limits:
        env = os.environ if env is None else env

        def positive(name: str, default: float, kind: type) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r}: expected a positive {kind.__name__}") from None
            if value <= 0:
                raise ValueError(f"{name}={raw!r}: expected a positive {kind.__name__}")
            return value

        def csv(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
            raw = env.get(name)
            if raw is None:
                return default
            return tuple(item.strip().lower() for item in raw.split(",") if item.strip())

        return cls(
            top_k=int(positive("SAGEGATE_TOP_K", cls.top_k, int)),
            max_body_bytes=int(positive("SAGEGATE_MAX_BODY_BYTES", cls.max_body_bytes, int)),
            max_batch=int(positive("SAGEGATE_MAX_BATCH", cls.max_batch, int)),
            max_image_pixels=int(positive("SAGEGATE_MAX_IMAGE_PIXELS", cls.max_image_pixels, int)),
            url_allowlist=csv("SAGEGATE_URL_ALLOWLIST", ()),
            url_schemes=csv("SAGEGATE_URL_SCHEMES", cls.url_schemes),
            url_timeout_s=float(positive("SAGEGATE_URL_TIMEOUT_S", cls.url_timeout_s, float)),
        )


class EvalTransform:
    """The eval transform of model.json on uint8 tensors: resize to ``size``×``size``, normalise.

    Training's eval transform (training/data.py: PIL ``convert("RGB")``, bilinear resize with
    antialias, uint8, then ``(x - mean) / std`` on [0, 1]) on the tensors torchvision.io decodes:
    the resize is torch's uint8 bilinear antialias kernel (PIL's algorithm, results within 1 of it
    on the 0..255 scale), and the normalisation is one fused multiply-add on the whole batch.
    """

    def __init__(self, size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.size = size
        mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.scale = 1.0 / (255.0 * std_t)  # (x/255 - mean) / std == x * scale + shift
        self.shift = -mean_t / std_t

    def resize(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 ``3×H×W`` → uint8 ``1×3×size×size`` (channels_last)."""
        batch = image.unsqueeze(0)
        if tuple(batch.shape[-2:]) != (self.size, self.size):
            # channels_last input takes torch's vectorised uint8 antialias path.
            batch = _tv_functional.resize(
                batch.contiguous(memory_format=torch.channels_last),
                [self.size, self.size],
                interpolation=_tv_functional.InterpolationMode.BILINEAR,
                antialias=True,
            )
        return batch.contiguous(memory_format=torch.channels_last)

    def normalize(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 ``N×3×S×S`` → float32 channels_last model input."""
        return torch.addcmul(self.shift, batch.float(), self.scale).contiguous(
            memory_format=torch.channels_last
        )

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """One uint8 ``3×H×W`` image → float ``3×size×size`` (what the previous transform returned)."""
        return self.normalize(self.resize(image))[0]


@dataclass
class LoadedModel:
    """What ``model_fn`` returns: the network in its inference form plus its metadata."""

    net: torch.nn.Module
    classes: list[str]
    image_size: int
    transform: EvalTransform
    metadata: dict = field(repr=False)


@dataclass
class ImageBatch:
    """What ``input_fn`` returns: decoded RGB images (uint8 ``3×H×W`` tensors) and the request's
    own ``top_k``, if any."""

    images: list[torch.Tensor]
    top_k: int | None = None


@dataclass
class Prediction:
    """What ``predict_fn`` returns: class probabilities, one row per image."""

    probabilities: torch.Tensor
    classes: list[str]
    top_k: int | None = None


# --------------------------------------------------------------------------- model_fn


def model_fn(model_dir: str) -> LoadedModel:
    """Load ``model.pth`` + ``model.json`` (docs/contracts.md) in eval, channels_last form."""
    meta_path = os.path.join(model_dir, "model.json")
    with open(meta_path, encoding="utf-8") as fh:
        meta = json.load(fh)
    version = meta.get("format_version")
    if version != MODEL_JSON_FORMAT_VERSION:
        raise ValueError(f"{meta_path}: format_version {version!r} is not {MODEL_JSON_FORMAT_VERSION}")
    classes = [str(c) for c in meta["classes"]]
    if len(classes) != int(meta["num_classes"]):
        raise ValueError(f"{meta_path}: {len(classes)} classes listed but num_classes={meta['num_classes']}")
    Limits.from_env()  # a bad limit in the environment fails the load, not the first request

    net = build_model(meta["arch"], len(classes), head_hidden=int(meta.get("head_hidden", 256)))
    load_state(net, os.path.join(model_dir, "model.pth"))
    # channels_last is ≈1.5× faster on this CPU class and gives the same top-k (float rounding).
    net = net.eval().requires_grad_(False).to(memory_format=torch.channels_last)
    size = int(meta["image_size"])
    norm = meta.get("normalize") or {}
    transform = EvalTransform(
        size,
        tuple(norm.get("mean", (0.485, 0.456, 0.406))),
        tuple(norm.get("std", (0.229, 0.224, 0.225))),
    )
    return LoadedModel(net=_frozen(net, size), classes=classes, image_size=size, transform=transform, metadata=meta)


def _frozen(net: torch.nn.Module, size: int) -> torch.nn.Module:
    """The network traced and frozen (batch-norm folded into the convolutions, weights as constants).

    Measured on a 2-core CPU, ResNet50 @224: ≈1.2x the eager channels_last forward at batch 1
    and 1.1x at batch 8, for about a second at load; same top-k, probabilities within 1e-5.
    ``SAGEGATE_FREEZE=0`` keeps the eager module (e.g. to debug the model).
    """
    if os.environ.get("SAGEGATE_FREEZE", "1").strip() in ("0", "false", "no"):
        return net
    example = torch.zeros(1, 3, size, size).contiguous(memory_format=torch.channels_last)
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # TorchScript's deprecation notice: the eager module is the fallback
            return torch.jit.freeze(torch.jit.trace(net, example))
    except Exception:  # noqa: BLE001 - tracing is an optimisation; the eager module is always correct
        return net


# --------------------------------------------------------------------------- input_fn


def media_type(content_type: str | None) -> str:
    """``"Image/PNG; q=1"`` → ``"image/png"``; ``None`` → ``""``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def input_fn(request_body: bytes | bytearray | str, request_content_type: str | None) -> ImageBatch:
    """Decode a request body into RGB images; raise a :class:`ClientInputError` on bad input."""
    limits = Limits.from_env()
    kind = media_type(request_content_type)
    if kind not in SUPPORTED_CONTENT_TYPES:
        shown = request_content_type or "(none)"
        raise UnsupportedContentTypeError(
            f"unsupported content type {shown[:100]!r}; use one of {sorted(SUPPORTED_CONTENT_TYPES)}"
        )
    size = len(request_body.encode("utf-8") if isinstance(request_body, str) else request_body)
    if size > limits.max_body_bytes:
        raise PayloadTooLargeError(f"request body is {size} bytes; the limit is {limits.max_body_bytes}")
    if size == 0:
        raise UndecodableImageError("request body is empty")
    if kind in IMAGE_CONTENT_TYPES:
        data = request_body.encode("latin-1") if isinstance(request_body, str) else bytes(request_body)
        return ImageBatch([decode_image(data, limits)])
    return _images_from_json(request_body, limits)


def _images_from_json(body: bytes | bytearray | str, limits: Limits) -> ImageBatch:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BadRequestError("request body is not valid JSON") from None
    top_k = None
    if isinstance(doc, dict):
        top_k = _parse_top_k(doc.get("top_k"), "top_k") if "top_k" in doc else None
        if "instances" in doc:
            items = doc["instances"]
            if not isinstance(items, list):
                raise BadRequestError('"instances" must be a list')
        elif "image" in doc or "url" in doc:
            items = [doc]
        else:
            raise BadRequestError('JSON body needs "image", "url" or "instances"')
    elif isinstance(doc, list):
        items = doc
    else:
        raise BadRequestError('JSON body must be an object with "image", "url" or "instances", or a list')
    if not items:
        raise BadRequestError("no images in the request")
    if len(items) > limits.max_batch:
        raise BatchTooLargeError(f"{len(items)} images in one request; the limit is {limits.max_batch}")
    return ImageBatch([_image_from_item(item, i, limits) for i, item in enumerate(items)], top_k=top_k)


def _image_from_item(item: object, position: int, limits: Limits) -> torch.Tensor:
    where = f"image {position}"
    if isinstance(item, str):
        return decode_image(decode_base64(item, where), limits)
    if isinstance(item, dict):
        if isinstance(item.get("image"), str):
            return decode_image(decode_base64(item["image"], where), limits)
        if isinstance(item.get("url"), str):
            return decode_image(fetch_url(item["url"], limits), limits)
    raise BadRequestError(f'{where}: expected a base64 string, {{"image": "<base64>"}} or {{"url": "..."}}')


def decode_base64(text: str, where: str = "image") -> bytes:
    """Strict base64 (standard or URL-safe alphabet, padding optional, data: URL prefix allowed)."""
    text = text.strip()
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            raise BadRequestError(f"{where}: only base64 data URLs are accepted")
    text = text + "=" * (-len(text) % 4)
    altchars = b"-_" if ("-" in text or "_" in text) else None
    try:
        return base64.b64decode(text, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestError(f"{where}: not valid base64") from None


def decode_image(data: bytes, limits: Limits | None = None) -> torch.Tensor:
    """Bytes → RGB uint8 tensor ``3×H×W``. Checks dimensions before decoding pixels (decompression bombs).

    PIL reads the header only (format, mode, size); PNG and JPEG pixels are then decoded by
    torchvision.io straight into a tensor, other formats and modes by PIL (``convert("RGB")``).
    """
    limits = limits or Limits.from_env()
    if not data:
        raise UndecodableImageError("image is empty")
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_IMAGE_FORMATS)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise UndecodableImageError(
            f"bytes are not a decodable image (accepted formats: {', '.join(ALLOWED_IMAGE_FORMATS)})"
        ) from None
    width, height = image.size
    if width * height > limits.max_image_pixels:
        raise PayloadTooLargeError(
            f"image is {width}x{height} pixels; the limit is {limits.max_image_pixels} pixels"
        )
    if width == 0 or height == 0:
        raise UndecodableImageError("image has no pixels")
    if image.mode in _FAST_DECODE.get(image.format or "", ()):
        pixels = _decode_tensor(data, image.format or "")
        if pixels is not None and tuple(pixels.shape) == (3, height, width):
            return pixels
    try:
        image.load()
        return _pil_to_tensor(image.convert("RGB"))
    except Image.DecompressionBombError:
        raise PayloadTooLargeError("image is too large to decode") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error):  # PIL's truncation errors
        raise UndecodableImageError("image data is truncated or corrupt") from None


def _decode_tensor(data: bytes, fmt: str) -> torch.Tensor | None:
    """torchvision.io's decoder for ``fmt``; None (PIL decides) when it fails or gives no 8-bit RGB."""
    encoded = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # libjpeg's "corrupt data" warnings: PIL's load decides
            if fmt == "PNG":
                pixels = _tv_decode_png(encoded, mode=ImageReadMode.RGB)
            else:
                pixels = _tv_decode_jpeg(encoded, mode=ImageReadMode.RGB)
    except RuntimeError:
        return None
    return pixels if pixels.dtype == torch.uint8 else None


def _pil_to_tensor(rgb: Image.Image) -> torch.Tensor:
    """An RGB PIL image → uint8 ``3×H×W`` (a copy: the image's buffer is not kept)."""
    width, height = rgb.size
    return torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).view(height, width, 3).permute(2, 0, 1)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could point anywhere (an internal address): refuse instead of following."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        return None


def url_allowed(url: str, limits: Limits) -> bool:
    """True when the URL's scheme is allowed and its host matches an allow-list entry."""
    try:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        return False
    if parts.scheme.lower() not in limits.url_schemes or not host or parts.username or parts.password:
        return False
    for entry in limits.url_allowlist:
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
        elif ":" in entry:
            if entry == f"{host}:{port}":
                return True
        elif entry == host:
            return True
    return False


def fetch_url(url: str, limits: Limits) -> bytes:
    """Fetch an allow-listed URL: no redirects, a timeout per read and overall, a size cap."""
    if not url_allowed(url, limits):
        raise UrlRefusedError("URL not allowed: fetching is limited to the hosts in SAGEGATE_URL_ALLOWLIST")
    opener = urllib.request.build_opener(_NoRedirect)
    deadline = time.monotonic() + limits.url_timeout_s
    cap = limits.max_body_bytes
    try:
        with opener.open(urllib.request.Request(url, method="GET"), timeout=limits.url_timeout_s) as resp:
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > cap:
                raise PayloadTooLargeError(f"URL content is {declared} bytes; the limit is {cap}")
            chunks, total = [], 0
            while chunk := resp.read(64 * 1024):
                total += len(chunk)
                if total > cap:
                    raise PayloadTooLargeError(f"URL content exceeds the limit of {cap} bytes")
                if time.monotonic() > deadline:
                    raise UrlRefusedError(f"URL fetch took longer than {limits.url_timeout_s:g} s")
                chunks.append(chunk)
            return b"".join(chunks)
    except ClientInputError:
        raise
    except urllib.error.HTTPError as exc:
        raise UrlRefusedError(f"URL fetch failed: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UrlRefusedError(f"URL fetch failed: {type(reason).__name__}") from None


# --------------------------------------------------------------------------- predict_fn


def resize_images(images: list[torch.Tensor], model: LoadedModel) -> torch.Tensor:
    """Decoded images → one uint8 ``N×3×S×S`` channels_last batch (resized, not yet normalised)."""
    resized = [model.transform.resize(image) for image in images]
    batch = resized[0] if len(resized) == 1 else torch.cat(resized)
    return batch.contiguous(memory_format=torch.channels_last)


def preprocess(images: list[torch.Tensor], model: LoadedModel) -> torch.Tensor:
    """The eval transform of model.json, as one float channels_last batch."""
    return model.transform.normalize(resize_images(images, model))


def forward_probabilities(model: LoadedModel, batch: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities for a preprocessed batch; refuses non-finite outputs."""
    with torch.inference_mode():
        probs = torch.softmax(model.net(batch.contiguous(memory_format=torch.channels_last)), dim=1)
    if not bool(torch.isfinite(probs).all()):
        raise ModelOutputError("the model produced non-finite scores (are the weights valid?)")
    return probs


def predict_fn(input_object: ImageBatch, model: LoadedModel) -> Prediction:
    """Preprocess, run the network once for the whole batch, return probabilities."""
    probs = forward_probabilities(model, preprocess(input_object.images, model))
    return Prediction(probabilities=probs, classes=model.classes, top_k=input_object.top_k)


# --------------------------------------------------------------------------- output_fn


def _parse_top_k(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadRequestError(f"{where} must be a positive integer")
    try:
        k = int(value)
    except ValueError:
        raise BadRequestError(f"{where} must be a positive integer") from None
    if k < 1:
        raise BadRequestError(f"{where} must be a positive integer")
    return k


def negotiate_accept(accept: str | None) -> int | None:
    """Check that JSON is acceptable; return the Accept header's ``top_k`` parameter, if any.

    Raises :class:`NotAcceptableError` (406) when no listed media range matches JSON.
    """
    if not accept or not accept.strip():
        return None
    for media_range in accept.split(","):
        kind, *params = (part.strip() for part in media_range.split(";"))
        if kind.lower() in (JSON_CONTENT_TYPE, "application/*", "*/*"):
            for param in params:
                name, _, value = param.partition("=")
                if name.strip().lower() == "top_k":
                    return _parse_top_k(value.strip().strip('"'), "Accept parameter top_k")
            return None
    raise NotAcceptableError(f"cannot produce {accept[:100]!r}; this model answers {JSON_CONTENT_TYPE}")


def top_k_entries(probabilities: torch.Tensor, classes: list[str], k: int) -> list[list[dict]]:
    """Rows of probabilities → per image, the ``k`` best ``{label, index, score}``, best first."""
    k = min(k, len(classes))
    scores, indices = torch.topk(probabilities, k, dim=1)
    return [
        [
            {"label": classes[i], "index": i, "score": round(float(s), 6)}
            for s, i in zip(row_scores.tolist(), row_indices.tolist(), strict=True)
        ]
        for row_scores, row_indices in zip(scores, indices, strict=True)
    ]


def output_fn(prediction: Prediction, accept: str | None) -> tuple[bytes, str]:
    """Serialise the top-k as JSON; returns ``(body, content_type)`` as the toolkit allows."""
    accept_k = negotiate_accept(accept)
    k = prediction.top_k or accept_k or Limits.from_env().top_k
    entries = top_k_entries(prediction.probabilities, prediction.classes, k)
    if any(not math.isfinite(e["score"]) for row in entries for e in row):
        raise ModelOutputError("the model produced non-finite scores")
    body = json.dumps({"predictions": entries}, separators=(",", ":")).encode("utf-8")
    return body, JSON_CONTENT_TYPE
