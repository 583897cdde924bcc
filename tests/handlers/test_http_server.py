"""handlers/http_server.py: body limits, overload and drain, with a stand-in app (no model)."""

from __future__ import annotations

import http.client
import socket
import threading

import pytest

from handlers.http_server import EndpointHTTPServer, Reply, Route
from handlers.server_config import ServerConfig
from handlers.worker_processes import bind_socket

BODY_LIMIT = 1024


class StandInApp:
    """Echoes bodies; ``/slow`` holds its request until ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.slow_started = threading.Event()
        self.closed = False

    def resolve(self, method: str, path: str) -> Route | Reply:
        if path == "/echo":
            return Route(self._echo, self._refuse)
        if path == "/slow":
            return Route(self._slow, self._refuse)
        if path == "/ping":
            return Route(lambda headers, body: Reply(200, b"pong"), self._refuse, reads_body=False)
        return Reply(404, b"no such route", {"X-Resolved": "no"})

    def overloaded_reply(self) -> Reply:
        return Reply(503, b"busy", {"X-Busy": "yes"})

    def close(self) -> None:
        self.closed = True

    @staticmethod
    def _echo(headers, body: bytes) -> Reply:
        return Reply(200, body, {"X-Type": headers.get("Content-Type") or ""})

    def _slow(self, headers, body: bytes) -> Reply:
        self.slow_started.set()
        assert self.release.wait(30)
        return Reply(200, b"finished")

    @staticmethod
    def _refuse(status: int, message: str) -> Reply:
        return Reply(status, message.encode(), {"X-Refused": str(status)})


@pytest.fixture
def app_and_server():
    app = StandInApp()
    settings = ServerConfig(model_dir="unused", max_body_bytes=BODY_LIMIT, max_connections=2).validate()
    server = EndpointHTTPServer(bind_socket("127.0.0.1", 0), app, settings)
    server.start()
    yield app, server
    app.release.set()
    server.stop(drain_timeout_s=5)


def port_of(server: EndpointHTTPServer) -> int:
    return server.server_address[1]


def post(server, path: str, body: bytes, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port_of(server), timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def raw_exchange(server, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_a_keep_alive_connection_carries_bodies_and_headers_to_the_route(app_and_server):
    _, server = app_and_server
    conn = http.client.HTTPConnection("127.0.0.1", port_of(server), timeout=30)
    for body in (b"one", b"", b"x" * BODY_LIMIT):
        conn.request("POST", "/echo", body=body, headers={"Content-Type": "text/plain"})
        response = conn.getresponse()
        assert (response.status, response.read(), response.getheader("X-Type")) == (200, body, "text/plain")
    conn.close()


def test_an_unresolved_request_gets_the_apps_reply(app_and_server):
    _, server = app_and_server
    status, headers, body = post(server, "/nowhere", b"x")
    assert (status, headers["X-Resolved"], body) == (404, "no", b"no such route")


def test_a_body_over_the_limit_is_refused_by_the_route_and_the_connection_closed(app_and_server):
    _, server = app_and_server
    status, headers, body = post(server, "/echo", b"x" * (BODY_LIMIT + 1))
    assert (status, headers["X-Refused"], headers["Connection"]) == (413, "413", "close")
    assert b"the limit is 1024" in body
    assert post(server, "/echo", b"ok")[2] == b"ok"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /echo HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    ],
)
def test_a_body_without_a_length_is_refused_by_the_route(app_and_server, request_bytes):
    _, server = app_and_server
    answer = raw_exchange(server, request_bytes)
    assert answer.startswith(b"HTTP/1.1 411 ") and b"X-Refused: 411" in answer


def test_a_route_without_a_body_is_answered_without_reading_one(app_and_server):
    _, server = app_and_server
    answer = raw_exchange(server, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"pong")


def test_connections_over_the_limit_get_the_apps_overloaded_reply(app_and_server):
    _, server = app_and_server
    holders = [socket.create_connection(("127.0.0.1", port_of(server))) for _ in range(2)]
    answer = raw_exchange(server, b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"X-Busy: yes" in answer and b"Connection: close" in answer and answer.endswith(b"busy")
    for holder in holders:
        holder.close()


def test_stop_lets_an_in_flight_request_finish_before_closing_the_app(app_and_server):
    app, server = app_and_server
    answers: list = []
    client = threading.Thread(target=lambda: answers.append(post(server, "/slow", b"payload")))
    client.start()
    assert app.slow_started.wait(30)
    draining = threading.Event()
    wait_idle = server.in_flight.wait_idle

    def observed_wait_idle(timeout_s: float) -> bool:
        draining.set()  # shutdown() has returned: the accept loop is over
        return wait_idle(timeout_s)

    server.in_flight.wait_idle = observed_wait_idle
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    assert draining.wait(30)
    assert not app.closed and stopper.is_alive()  # still waiting for /slow
    app.release.set()
    client.join(30)
    stopper.join(30)
    assert not stopper.is_alive() and app.closed
    [(status, _, body)] = answers
    assert (status, body) == (200, b"finished")
