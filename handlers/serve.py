"""The local SageMaker endpoint: the model artifact behind an HTTP server on loopback.

Command line::

    python -m handlers.serve --model-dir DIR_OR_MODEL_TAR_GZ [--host 127.0.0.1] [--port 0]
        [--workers 1] [--endpoint-name NAME] [--max-batch 32] [--max-batch-delay-ms 2]
        [--max-connections 64]

``--port 0`` picks a free port. When the model is loaded and the socket listens, exactly one line
goes to stdout (logs go to stderr as JSON lines)::

    {"event": "ready", "url": "http://127.0.0.1:PORT", "host": "127.0.0.1", "port": PORT, "pid": PID, "workers": K}

SIGTERM or SIGINT stops accepting, lets in-flight requests finish, and exits 0.

HTTP API
--------
``GET /ping``
    200 once the model is loaded (the container contract).
``POST /invocations``
    The container contract: the body goes to ``inference.input_fn``; client errors come back with
    their own status (400/406/413/415) and a JSON ``{"error": {"type", "message"}}`` body.
``POST /endpoints/<name>/invocations``
    The SageMaker runtime API, so ``boto3.client("sagemaker-runtime", endpoint_url=URL)`` works
    unchanged. Errors use the runtime's shapes (``x-amzn-ErrorType`` + JSON body): an error from
    the model is ``ModelError`` (HTTP 424, ``OriginalStatusCode``/``OriginalMessage``), an
    overloaded server ``ServiceUnavailable`` (503), an unknown endpoint name or bad request
    ``ValidationError`` (400; 413 for an oversize body).

Throughput
----------
Requests are decoded and preprocessed on their connection's thread; forward passes run on one
batching thread that takes every request already queued (up to ``max_batch`` images), waiting up
to ``max_batch_delay_ms`` for more only while other requests are still being preprocessed, so a
lone client never waits. ``--workers K`` runs K such processes on one listening socket, each with
``cores // K`` torch threads. The model runs in channels_last eval form (``inference.model_fn``).

Python API
----------
``start_server(model_dir, host, port, endpoint_name, **options) -> ServerHandle`` runs the server
in this process (threads); ``spawn_server(...) -> ServerProcess`` runs ``python -m handlers.serve``
as a child process and waits for its ready line. Both handles have ``.url``, ``.port``, ``.stop()``
and work as context managers.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import signal
import socket
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import torch

from handlers import inference
from handlers.server_process import ServerProcess, spawn_server  # noqa: F401 (the child-process API)

ACCOUNT_ID = "123456789012"  # the emulator's account id (moto's); only ever shown in error messages
RUNTIME_PATH = re.compile(r"^/endpoints/([A-Za-z0-9](?:-*[A-Za-z0-9]){0,62})/invocations$")
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024  # read and discard an oversize body up to this, so the 413 arrives


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server needs; the CLI flags map one to one."""

    model_dir: str
    host: str = "127.0.0.1"
    port: int = 0
    endpoint_name: str | None = None  # None: answer any name on the runtime path
    workers: int = 1
    max_body_bytes: int = 6 * 1024 * 1024  # SageMaker real-time payload limit
    max_connections: int = 64
    max_queued_images: int = 256
    max_batch: int = 32
    max_batch_delay_ms: float = 2.0
    request_timeout_s: float = 60.0  # SageMaker's model response limit
    idle_timeout_s: float = 30.0  # a silent connection is closed after this (slow clients)
    torch_threads: int | None = None

    def validate(self) -> ServerConfig:
        for name in ("workers", "max_body_bytes", "max_connections", "max_queued_images", "max_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_batch_delay_ms < 0 or self.request_timeout_s <= 0 or self.idle_timeout_s <= 0:
            raise ValueError("max_batch_delay_ms must be >= 0 and the timeouts > 0")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        if self.endpoint_name is not None and not RUNTIME_PATH.match(
            f"/endpoints/{self.endpoint_name}/invocations"
        ):
            raise ValueError(f"endpoint_name {self.endpoint_name!r} is not a valid SageMaker endpoint name")
        return self


def _log(event: str, **fields: Any) -> None:
    """One JSON line on stderr; stdout carries only the ready line."""
    print(json.dumps({"event": event, **fields}, default=str), file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- errors


class ServerBusyError(Exception):
    """Too many queued images or connections: the client should retry (503)."""


class ServerStoppingError(Exception):
    """The server is shutting down; queued work is refused (503)."""


# --------------------------------------------------------------------------- batching


class _Gauge:
    """A thread-safe counter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def add(self, delta: int, limit: int | None = None) -> bool:
        with self._lock:
            if limit is not None and self._value + delta > limit:
                return False
            self._value += delta
            return True

    @property
    def value(self) -> int:
        return self._value


@dataclass
class _Work:
    batch: torch.Tensor
    future: Future = field(default_factory=Future)

    @property
    def size(self) -> int:
        return int(self.batch.shape[0])


class Batcher:
    """Runs forward passes on one thread, merging the requests that are waiting into one batch."""

    def __init__(self, model: inference.LoadedModel, config: ServerConfig) -> None:
        self._model = model
        self._max_batch = config.max_batch
        self._max_delay_s = config.max_batch_delay_ms / 1000.0
        self._max_queued = config.max_queued_images
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._queued = _Gauge()
        self.preparing = _Gauge()  # requests being decoded: worth a short wait for them
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)
        self._thread.start()

    def submit(self, batch: torch.Tensor) -> Future:
        if self._stopped.is_set():
            raise ServerStoppingError("the server is shutting down")
        work = _Work(batch)
        if not self._queued.add(work.size, limit=self._max_queued):
            raise ServerBusyError(f"more than {self._max_queued} images queued; retry shortly")
        self._queue.put(work)
        return work.future

    def stop(self) -> None:
        self._stopped.set()
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _collect(self, first: _Work) -> tuple[list[_Work], _Work | None]:
        """The first item plus whatever fits in the batch; returns the item that did not fit."""
        items, size = [first], first.size
        deadline = time.monotonic() + self._max_delay_s
        while size < self._max_batch:
            try:
                work = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if self.preparing.value == 0 or remaining <= 0:
                    break
                try:
                    work = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if work is None:  # stop sentinel: put it back for the main loop
                self._queue.put(None)
                break
            if size + work.size > self._max_batch:
                return items, work
            items.append(work)
            size += work.size
        return items, None

    def _run(self) -> None:
        carry: _Work | None = None
        while True:
            first = carry if carry is not None else self._queue.get()
            carry = None
            if first is None:
                break
            items, carry = self._collect(first)
            self._queued.add(-sum(w.size for w in items))
            try:
                batch = items[0].batch if len(items) == 1 else torch.cat([w.batch for w in items])
                probs = inference.forward_probabilities(self._model, batch)
            except Exception as exc:  # the model failed: every request of this batch gets the error
                for work in items:
                    work.future.set_exception(exc)
                continue
            start = 0
            for work in items:
                work.future.set_result(probs[start : start + work.size])
                start += work.size
        while True:  # refuse whatever is left
            try:
                work = carry or self._queue.get_nowait()
            except queue.Empty:
                return
            carry = None
            if work is not None:
                work.future.set_exception(ServerStoppingError("the server is shutting down"))


# --------------------------------------------------------------------------- the application


@dataclass
class Reply:
    """An HTTP response to write."""

    status: int
    body: bytes
    headers: dict[str, str]


def _json(status: int, doc: dict, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    return Reply(status, body, {"Content-Type": "application/json", **(headers or {})})


class EndpointApp:
    """The model, the batcher, and the mapping from outcomes to container/runtime responses."""

    def __init__(self, model: inference.LoadedModel, config: ServerConfig) -> None:
        self.model = model
        self.config = config
        self.batcher = Batcher(model, config)
        self.active_requests = _Gauge()

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[bytes, str]:
        """Run the inference contract; raises the contract's exceptions."""
        inference.negotiate_accept(accept)  # 406 before spending any compute
        self.batcher.preparing.add(1)
        try:
            request = inference.input_fn(body, content_type)
            batch = inference.preprocess(request.images, self.model)
            future = self.batcher.submit(batch)
        finally:
            self.batcher.preparing.add(-1)
        probs = future.result(timeout=self.config.request_timeout_s)
        prediction = inference.Prediction(
            probabilities=probs, classes=self.model.classes, top_k=request.top_k
        )
        return inference.output_fn(prediction, accept)

    def container_reply(self, body: bytes, content_type: str | None, accept: str | None) -> Reply:
        """``POST /invocations``: the model's own status codes."""
        try:
            payload, out_type = self.invoke(body, content_type, accept)
            return Reply(200, payload, {"Content-Type": out_type})
        except inference.ClientInputError as exc:
            return _json(exc.status_code, {"error": {"type": type(exc).__name__, "message": exc.message}})
        except (ServerBusyError, ServerStoppingError) as exc:
            return _json(503, {"error": {"type": type(exc).__name__, "message": str(exc)}})
        except TimeoutError:
            return _json(504, {"error": {"type": "Timeout", "message": "the model did not answer in time"}})
        except Exception as exc:  # a model fault: reported, never a client's fault
            _log("model_error", error_type=type(exc).__name__, message=str(exc)[:300])
            return _json(
                500, {"error": {"type": "ModelError", "message": "the model failed on this request"}}
            )

    def runtime_reply(self, name: str, body: bytes, content_type: str | None, accept: str | None) -> Reply:
        """``POST /endpoints/<name>/invocations``: the SageMaker runtime API's shapes."""
        if self.config.endpoint_name is not None and name != self.config.endpoint_name:
            return runtime_error(
                400, "ValidationError", f"Endpoint {name} of account {ACCOUNT_ID} not found."
            )
        container = self.container_reply(body, content_type, accept)
        if container.status == 200:
            container.headers["x-Amzn-Invoked-Production-Variant"] = "AllTraffic"
            return container
        if container.status == 503:
            return runtime_error(503, "ServiceUnavailable", "The endpoint is overloaded; try again.")
        return model_error(name, container)


def runtime_error(status: int, error_type: str, message: str) -> Reply:
    """An error in the shape botocore's rest-json parser reads for sagemaker-runtime."""
    return _json(
        status,
        {"message": message},
        {"x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.sagemaker.runtime/"},
    )


def model_error(endpoint_name: str, container: Reply) -> Reply:
    """What SageMaker returns when the container answers non-2xx: ModelError, HTTP 424."""
    try:
        original = json.loads(container.body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        original = container.body.decode("utf-8", "replace")
    side = "client" if container.status < 500 else "server"
    log_group = f"/aws/sagemaker/Endpoints/{endpoint_name}"
    doc = {
        "ErrorCode": f"{side.upper()}_ERROR_FROM_MODEL",
        "LogStreamArn": f"arn:aws:logs:us-east-1:{ACCOUNT_ID}:log-group:{log_group}",
        "Message": (
            f'Received {side} error ({container.status}) from primary with message "{original}". '
            f"See the log group {log_group} in account {ACCOUNT_ID} for more information."
        ),
        "OriginalMessage": original,
        "OriginalStatusCode": container.status,
    }
    return _json(
        424,
        doc,
        {"x-amzn-ErrorType": "ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker.runtime/"},
    )


# --------------------------------------------------------------------------- HTTP plumbing


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: boto3 reuses connections
    server_version = "sagegate-serve"
    sys_version = ""
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (≈40 ms a request on loopback).
    disable_nagle_algorithm = True
    # An unparseable request line would otherwise be answered HTTP/0.9-style: a body, no status line.
    default_request_version = "HTTP/1.0"
    server: _HTTPServer

    def setup(self) -> None:
        self.timeout = self.server.app.config.idle_timeout_s
        super().setup()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # per-request access logs would cost more than the request on a 64 px model

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 (BaseHTTPRequestHandler's name)
        _log("http_error", client=self.client_address[0], detail=(format % args)[:300])

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/ping":
            self._send(Reply(200, b"", {"Content-Type": "text/plain"}))
        else:
            self._send(
                _json(404, {"error": {"type": "NotFound", "message": "GET /ping is the only GET route"}})
            )

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        runtime = RUNTIME_PATH.match(path)
        if path != "/invocations" and runtime is None:
            self._send(
                _json(404, {"error": {"type": "NotFound", "message": f"no route for POST {path[:100]}"}})
            )
            return
        body = self._read_body(runtime is not None)
        if body is None:
            return
        app = self.server.app
        app.active_requests.add(1)
        try:
            ctype, accept = self.headers.get("Content-Type"), self.headers.get("Accept")
            if runtime is not None:
                reply = app.runtime_reply(runtime.group(1), body, ctype, accept)
            else:
                reply = app.container_reply(body, ctype, accept)
            reply.headers.setdefault("x-amzn-RequestId", str(uuid.uuid4()))
            self._send(reply)
        finally:
            app.active_requests.add(-1)

    def _read_body(self, runtime: bool) -> bytes | None:
        """The request body, or None after answering (too large, no length) or a disconnect."""
        limit = self.server.app.config.max_body_bytes
        length_header = self.headers.get("Content-Length")
        if (
            self.headers.get("Transfer-Encoding")
            or length_header is None
            or not length_header.strip().isdigit()
        ):
            self.close_connection = True
            msg = "a Content-Length header is required (chunked bodies are not accepted)"
            self._send(
                runtime_error(411, "ValidationError", msg)
                if runtime
                else _json(411, {"error": {"type": "LengthRequired", "message": msg}})
            )
            return None
        length = int(length_header)
        if length > limit:
            self.close_connection = True
            self._drain(length)
            msg = f"request body is {length} bytes; the limit is {limit}"
            self._send(
                runtime_error(413, "ValidationError", msg)
                if runtime
                else _json(413, {"error": {"type": "PayloadTooLargeError", "message": msg}})
            )
            return None
        body = self.rfile.read(length)
        if len(body) < length:  # the client went away mid-body
            self.close_connection = True
            return None
        return body

    def _drain(self, length: int) -> None:
        """Read and discard an oversize body so the client sees our 413 instead of a reset."""
        remaining = min(length, DRAIN_LIMIT_BYTES)
        try:
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    return
                remaining -= len(chunk)
        except OSError:
            return

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(reply.body)
            self.wfile.flush()
        except OSError:  # the client is gone; nothing to tell it
            self.close_connection = True


def _raw_response(status: str, reply: Reply) -> bytes:
    head = [
        f"HTTP/1.1 {status}",
        *(f"{k}: {v}" for k, v in reply.headers.items()),
        "Connection: close",
        f"Content-Length: {len(reply.body)}",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body


# Written by the accept loop's helper thread to connections over the limit, without parsing them.
_BUSY_RESPONSE = _raw_response(
    "503 Service Unavailable",
    runtime_error(503, "ServiceUnavailable", "The endpoint is overloaded; try again later."),
)


class _HTTPServer(ThreadingHTTPServer):
    """A thread per connection, at most ``max_connections`` of them; the rest get a quick 503."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, sock: socket.socket, app: EndpointApp) -> None:
        super().__init__(sock.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_address = sock.getsockname()[:2]
        self.app = app
        self._slots = threading.BoundedSemaphore(app.config.max_connections)
        self._reject_slots = threading.BoundedSemaphore(16)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        if self._slots.acquire(blocking=False):
            with self._connections_lock:
                self._connections.add(request)
            super().process_request(request, client_address)
        elif self._reject_slots.acquire(blocking=False):
            threading.Thread(target=self._reject, args=(request,), daemon=True).start()
        else:
            self.shutdown_request(request)

    def process_request_thread(self, request: socket.socket, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(request)
            self._slots.release()

    def _reject(self, request: socket.socket) -> None:
        """503 for a connection over the limit; read what the client sent so it gets the answer."""
        try:
            request.settimeout(2.0)
            request.sendall(_BUSY_RESPONSE)
            request.shutdown(socket.SHUT_WR)
            received = 0
            while received < DRAIN_LIMIT_BYTES and (chunk := request.recv(1 << 16)):
                received += len(chunk)
        except OSError:
            pass
        finally:
            request.close()
            self._reject_slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | TimeoutError):
            _log("connection_error", error_type=type(exc).__name__, message=str(exc)[:300])

    def close_connections(self) -> None:
        """Wake every connection thread (idle keep-alive ones block in a read)."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# --------------------------------------------------------------------------- lifecycle


def prepare_model_dir(model_path: str) -> tuple[str, str | None]:
    """A directory is used as is; a ``model.tar.gz`` is extracted to a temporary directory.

    Returns ``(model_dir, temp_dir_to_remove_or_None)``.
    """
    if os.path.isdir(model_path):
        return model_path, None
    if not tarfile.is_tarfile(model_path):
        raise ValueError(f"--model-dir {model_path!r} is neither a directory nor a model.tar.gz")
    temp_dir = tempfile.mkdtemp(prefix="sagegate-model-")
    with tarfile.open(model_path) as archive:
        archive.extractall(temp_dir, filter="data")  # refuses absolute paths, .., devices, links out
    return temp_dir, temp_dir


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


class _Serving:
    """One server loop on a socket, with its model and batcher."""

    def __init__(self, config: ServerConfig, model_dir: str, sock: socket.socket) -> None:
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        model = inference.model_fn(model_dir)
        self.app = EndpointApp(model, config)
        self.httpd = _HTTPServer(sock, self.app)
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="http", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, drain_timeout_s: float = 10.0) -> None:
        self.httpd.shutdown()  # no new connections or requests are accepted after this returns
        deadline = time.monotonic() + drain_timeout_s
        while self.app.active_requests.value > 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # draining in-flight requests; bounded by the deadline above
        self.httpd.close_connections()
        self.httpd.server_close()
        self.app.batcher.stop()


@dataclass
class ServerHandle:
    """An in-process server. ``stop()`` is idempotent."""

    url: str
    host: str
    port: int
    config: ServerConfig
    _serving: _Serving = field(repr=False)
    _temp_dir: str | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._serving.stop()
        if self._temp_dir:
            shutil.rmtree(self._temp_dir, ignore_errors=True)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def start_server(
    model_dir: str,
    host: str = "127.0.0.1",
    port: int = 0,
    endpoint_name: str | None = None,
    **options: Any,
) -> ServerHandle:
    """Load the artifact (directory or model.tar.gz) and serve it on threads of this process.

    ``options`` are :class:`ServerConfig` fields (``max_batch``, ``max_connections``, …);
    ``workers`` > 1 needs :func:`spawn_server`. Returns once ``/ping`` answers 200.
    """
    config = ServerConfig(
        model_dir=model_dir, host=host, port=port, endpoint_name=endpoint_name, **options
    ).validate()
    if config.workers != 1:
        raise ValueError("start_server runs one worker in this process; use spawn_server for workers > 1")
    resolved, temp_dir = prepare_model_dir(model_dir)
    sock = bind_socket(host, port)
    try:
        serving = _Serving(config, resolved, sock)
    except BaseException:
        sock.close()
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    serving.start()
    bound_port = sock.getsockname()[1]
    return ServerHandle(
        _url(host, bound_port), host, bound_port, replace(config, port=bound_port), serving, temp_dir
    )


# --------------------------------------------------------------------------- command line


def _worker_main(config: ServerConfig, model_dir: str, sock: socket.socket, ready: Any) -> None:
    """One of K worker processes sharing the parent's listening socket."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # Every worker wakes when a connection arrives; the losers must not block in accept(), or
    # serve_forever (and so shutdown) never returns.
    sock.setblocking(False)
    serving = _Serving(config, model_dir, sock)
    serving.start()
    ready.put(os.getpid())
    stop.wait()
    serving.stop()


def _serve_workers(
    config: ServerConfig, model_dir: str, sock: socket.socket, stop: threading.Event, on_ready: Any
) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # fork after torch's thread pools start is unsafe
    ready = ctx.Queue()
    per_worker = replace(
        config, torch_threads=config.torch_threads or max(1, (os.cpu_count() or 1) // config.workers)
    )
    procs = [
        ctx.Process(target=_worker_main, args=(per_worker, model_dir, sock, ready), daemon=True)
        for _ in range(config.workers)
    ]
    for proc in procs:
        proc.start()
    started = 0
    while started < len(procs):
        try:
            ready.get(timeout=0.5)
            started += 1
        except queue.Empty:
            if stop.is_set() or any(p.exitcode is not None for p in procs):
                break
    if started == len(procs):
        on_ready()
    while not stop.wait(0.2):  # also notice a worker that died
        if any(not p.is_alive() for p in procs):
            _log("worker_exited", codes=[p.exitcode for p in procs])
            break
    for proc in procs:
        if proc.is_alive():
            proc.terminate()  # SIGTERM: the worker drains and exits
    for proc in procs:
        proc.join(timeout=30)
        if proc.is_alive():
            _log("worker_killed", pid=proc.pid)
            proc.kill()
            proc.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m handlers.serve",
        description="Serve a sagegate model artifact locally (SageMaker container + runtime API).",
    )
    parser.add_argument("--model-dir", required=True, help="artifact directory or model.tar.gz")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on the same socket")
    parser.add_argument(
        "--endpoint-name", default=None, help="the only name accepted on /endpoints/<name>/invocations"
    )
    parser.add_argument("--max-batch", type=int, default=ServerConfig.max_batch)
    parser.add_argument("--max-batch-delay-ms", type=float, default=ServerConfig.max_batch_delay_ms)
    parser.add_argument("--max-connections", type=int, default=ServerConfig.max_connections)
    parser.add_argument("--max-body-bytes", type=int, default=ServerConfig.max_body_bytes)
    args = parser.parse_args(argv)
    try:
        config = ServerConfig(
            model_dir=args.model_dir,
            host=args.host,
            port=args.port,
            endpoint_name=args.endpoint_name,
            workers=args.workers,
            max_batch=args.max_batch,
            max_batch_delay_ms=args.max_batch_delay_ms,
            max_connections=args.max_connections,
            max_body_bytes=args.max_body_bytes,
        ).validate()
        model_dir, temp_dir = prepare_model_dir(config.model_dir)
    except (ValueError, OSError, tarfile.TarError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        sock = bind_socket(config.host, config.port)
        port = sock.getsockname()[1]

        def announce() -> None:
            ready = {
                "event": "ready",
                "url": _url(config.host, port),
                "host": config.host,
                "port": port,
                "pid": os.getpid(),
                "workers": config.workers,
            }
            print(json.dumps(ready), flush=True)
            _log(**ready)

        if config.workers == 1:
            serving = _Serving(config, model_dir, sock)
            serving.start()
            announce()
            stop.wait()
            serving.stop()
        else:
            _serve_workers(config, model_dir, sock, stop, announce)
            sock.close()
        _log("stopped", pid=os.getpid())
        return 0
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
