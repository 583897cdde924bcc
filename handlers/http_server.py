"""HTTP/1.1 for an endpoint app on a listening socket: limits, keep-alive, overload and drain.

The :class:`App` maps a request line to a :class:`Route` or a finished :class:`Reply`; this module
reads bodies within the limits, writes replies, answers connections past ``max_connections`` with
the app's 503 unparsed, and its ``stop`` lets in-flight requests finish before closing.

Not gunicorn (what SageMaker's bring-your-own-container examples use): the same EndpointApp behind
gunicorn 27.0.1 (gthread, 1 worker, 64 threads) served fewer images/s than this server under
benchmarks/serve_throughput.py's load (ResNet18 @64, 2-core VM, interleaved runs): 1 client
0.79-0.88x, 8 clients 0.81-0.91x. It would be a new dependency too, and it leaves connections over
its limit in the backlog instead of answering with the runtime's 503.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from handlers.server_config import ServerConfig
from handlers.server_log import log_event

DRAIN_LIMIT_BYTES = 64 * 1024 * 1024  # read and discard an oversize body up to this, so the 413 arrives


@dataclass
class Reply:
    """An HTTP response to write."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """What a request line resolved to: its handler, and its error shape for a refused body."""

    handle: Callable[[Message, bytes], Reply]  # (request headers, body) -> reply
    refuse: Callable[[int, str], Reply]  # (411 or 413, message) -> reply, before the body is read
    reads_body: bool = True


class App(Protocol):
    """What the server needs from the endpoint app (``handlers.endpoint_app.EndpointApp``)."""

    def resolve(self, method: str, path: str) -> Route | Reply: ...

    def overloaded_reply(self) -> Reply: ...

    def close(self) -> None: ...


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: boto3 reuses connections
    server_version = "sagegate-serve"
    sys_version = ""
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (≈40 ms a request on loopback).
    disable_nagle_algorithm = True
    # An unparseable request line would otherwise be answered HTTP/0.9-style: a body, no status line.
    default_request_version = "HTTP/1.0"
    server: EndpointHTTPServer

    def setup(self) -> None:
        self.timeout = self.server.config.idle_timeout_s
        super().setup()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # per-request access logs would cost more than the request on a 64 px model

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 (BaseHTTPRequestHandler's name)
        log_event("http_error", client=self.client_address[0], detail=(format % args)[:300])

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        target = self.server.app.resolve(self.command, self.path.split("?", 1)[0])
        if isinstance(target, Reply):
            self._send(target)
            return
        body = self._read_body(target) if target.reads_body else b""
        if body is None:
            return
        with self.server.in_flight:
            self._send(target.handle(self.headers, body))

    def _read_body(self, route: Route) -> bytes | None:
        """The request body, or None after answering (too large, no length) or a disconnect."""
        limit = self.server.config.max_body_bytes
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or not (length_header or "").strip().isdigit():
            self.close_connection = True
            self._send(route.refuse(411, "a Content-Length header is required (chunked bodies are not accepted)"))
            return None
        length = int(length_header)
        if length > limit:
            self.close_connection = True
            self._discard(length)
            self._send(route.refuse(413, f"request body is {length} bytes; the limit is {limit}"))
            return None
        body = self.rfile.read(length)
        if len(body) < length:  # the client went away mid-body
            self.close_connection = True
            return None
        return body

    def _discard(self, length: int) -> None:
        """Read and drop an oversize body so the client sees our 413 instead of a reset."""
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


def raw_response(reply: Reply) -> bytes:
    """A whole ``Connection: close`` response, for writing without a handler."""
    head = [
        f"HTTP/1.1 {reply.status} {_Handler.responses.get(reply.status, ('',))[0]}",
        *(f"{k}: {v}" for k, v in reply.headers.items()),
        "Connection: close",
        f"Content-Length: {len(reply.body)}",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body


class _InFlight:
    """Counts requests being handled, so a drain can wait for zero without polling."""

    def __init__(self) -> None:
        self._idle = threading.Condition()
        self._count = 0

    def __enter__(self) -> None:
        with self._idle:
            self._count += 1

    def __exit__(self, *exc: object) -> None:
        with self._idle:
            self._count -= 1
            if self._count == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout_s)


class EndpointHTTPServer(ThreadingHTTPServer):
    """A thread per connection, at most ``max_connections`` of them; the rest get a quick 503."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, sock: socket.socket, app: App, config: ServerConfig) -> None:
        super().__init__(sock.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_address = sock.getsockname()[:2]
        self.app = app
        self.config = config
        self.in_flight = _InFlight()
        self._busy_response = raw_response(app.overloaded_reply())
        self._slots = threading.BoundedSemaphore(config.max_connections)
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
            request.sendall(self._busy_response)
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
            log_event("connection_error", error_type=type(exc).__name__, message=str(exc)[:300])

    def start(self) -> None:
        serve = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        serve.start()

    def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Stop accepting, let in-flight requests finish (up to the timeout), then close everything."""
        self.shutdown()  # no new connections are accepted after this returns
        self.in_flight.wait_idle(drain_timeout_s)
        self._close_connections()
        self.server_close()
        self.app.close()

    def _close_connections(self) -> None:
        """Wake every connection thread (idle keep-alive ones block in a read)."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
