"""A local Lambda runtime: the function's handler in worker processes, behind a Function-URL-style server.

- Reserved concurrency is a hard cap on simultaneous invocations: one more is throttled at once
  (HTTP 429, ``TooManyRequestsException``), as Lambda does.
- Provisioned concurrency: that many workers are started (handler imported) before the runtime
  reports ready, and kept; other workers start on demand (a cold start) and stay for reuse.
- Each worker is ``python -m runner.targets.lambda_worker`` with the function's configured
  environment, one invocation at a time; a timeout kills the worker, as Lambda ends a sandbox.

- A provisioned worker that is killed (timeout) or crashes is replaced in the background, so
  ``warm_workers`` returns to the provisioned count, as Lambda keeps provisioned concurrency
  initialised.

Under a burst the server behaves as Lambda's front end: the listen backlog holds the burst
(``LISTEN_BACKLOG``, capped by the kernel's ``net.core.somaxconn``), a dedicated thread accepts
in a tight loop and each connection gets its own thread; a request beyond the concurrency limit
is answered 429 at once, before any event is built or worker touched, so every request of a
burst is answered (200 or 429), none reset. Request bodies are read by ``Content-Length`` or
``Transfer-Encoding: chunked``.

HTTP on 127.0.0.1: ``POST /_runtime/invoke`` takes the raw event (the Invoke API's shape: result
JSON, ``X-Amz-Function-Error`` on a function error); every other request is turned into a
Function URL (payload 2.0) event and the handler's proxy response is sent back.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import parse_qsl, urlsplit

INVOKE_PATH = "/_runtime/invoke"
UNRESERVED_LIMIT = 10  # local cap when the function has no reserved concurrency
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
READY_TIMEOUT_S = 120.0
LISTEN_BACKLOG = 4096  # the kernel caps it at net.core.somaxconn
IDLE_CONNECTION_TIMEOUT_S = 120.0  # a kept-alive connection with no request is closed after this


class Throttled(Exception):
    """No concurrency left for this function."""


@dataclass
class FunctionSpec:
    name: str
    code_dir: Path
    handler: str = "lambda_function.lambda_handler"
    environment: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 30.0
    memory_mb: int = 128
    reserved: int | None = None
    provisioned: int = 0
    version: str = "$LATEST"
    arn: str = ""


@dataclass
class Invocation:
    result: Any = None
    error: dict[str, Any] | None = None
    cold_start: bool = False


class Platform(Protocol):
    """Lambda's own calls around the handler (runner/targets/service_calls.FunctionPlatform)."""

    def environment_started(self) -> str: ...  # returns the environment's log stream

    def invoked(self, stream: str, request_id: str, started: float, duration_ms: float, memory_mb: int) -> None: ...

    def flush(self, timeout_s: float = 10.0) -> None: ...  # what was handed over has been sent

    def stop(self) -> None: ...


class _Worker:
    def __init__(self, spec: FunctionSpec, env: dict[str, str], log: IO[bytes] | int | None,
                 provisioned: bool = False):
        self.stream = ""  # its log stream, when a platform ships logs
        self.provisioned = provisioned
        self.ready = False  # initialised (the handler imported)
        self.on_exit: Any = None  # called (with this worker) once its process has exited
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runner.targets.lambda_worker"], cwd=spec.code_dir, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")
        self.process.wait()
        if self.on_exit is not None:
            self.on_exit(self)

    def wait_ready(self, timeout_s: float) -> None:
        message = self._next(timeout_s)
        if not message.get("ready"):
            raise RuntimeError("the function's worker did not start")
        self.ready = True

    def _next(self, timeout_s: float) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=max(0.0, timeout_s))
        except queue.Empty:
            raise TimeoutError from None
        if not line:
            raise RuntimeError(f"the function's worker exited (code {self.process.wait()})")
        return json.loads(line)

    def invoke(self, event: Any, timeout_s: float, request_id: str) -> dict[str, Any]:
        deadline_ms = int((time.time() + timeout_s) * 1000)
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"id": request_id, "event": event, "deadline_ms": deadline_ms}) + "\n")
        self.process.stdin.flush()
        return self._next(timeout_s)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(Exception):
                self.process.stdin.close()  # type: ignore[union-attr]
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class _Server(ThreadingHTTPServer):
    """One thread per connection, a deep listen backlog, and a blocking accept loop."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True
    block_on_close = False  # threads are not tracked: a burst leaves no list to reap

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        # socketserver's loop accepts one connection per select() wake-up; under a burst the
        # accept queue is drained faster by accepting until it would block.
        self.socket.settimeout(poll_interval)
        self._running = True
        while self._running:
            try:
                conn, address = self.socket.accept()
            except TimeoutError:
                continue
            except OSError:
                if not self._running:
                    break
                time.sleep(0.01)  # e.g. out of file descriptors: let connections finish
                continue
            conn.settimeout(None)
            try:
                self.process_request(conn, address)
            except Exception:
                self.handle_error(conn, address)
                self.shutdown_request(conn)

    def shutdown(self) -> None:
        self._running = False


class LambdaRuntime:
    def __init__(self, spec: FunctionSpec, base_env: dict[str, str] | None = None, log_path: Path | None = None,
                 platform: Platform | None = None):
        self.spec = spec
        self.platform = platform
        self.limit = spec.reserved if spec.reserved is not None else UNRESERVED_LIMIT
        self._slots = threading.BoundedSemaphore(self.limit)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._workers: list[_Worker] = []
        self._log = log_path.open("ab") if log_path else subprocess.DEVNULL
        self._env = self._environment(base_env if base_env is not None else dict(os.environ))
        self._server: _Server | None = None
        self._serving: threading.Thread | None = None
        self._stopping = False
        self._replacing = 0  # provisioned workers being started in the background
        self.throttles = 0
        self.cold_starts = 0
        self.replacements = 0  # provisioned workers started again after a kill or crash

    def _environment(self, base: dict[str, str]) -> dict[str, str]:
        spec = self.spec
        project_root = str(Path(__file__).resolve().parents[2])
        env = {**base, **spec.environment}
        env.update({
            "_HANDLER": spec.handler,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(spec.timeout_s)),
            "SAGEGATE_FUNCTION_ARN": spec.arn,
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            # The function's code first (as in /var/task), then this project for the worker module.
            "PYTHONPATH": os.pathsep.join([str(spec.code_dir), project_root]),
            "PYTHONUNBUFFERED": "1",
        })
        return env

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def provisioned(self) -> int:
        return min(self.spec.provisioned, self.limit)

    def start(self, port: int = 0) -> LambdaRuntime:
        warm = [self._spawn("provisioned-concurrency") for _ in range(self.provisioned)]
        for worker in warm:
            worker.wait_ready(READY_TIMEOUT_S)
        with self._lock:
            self._idle.extend(warm)
        self._server = _Server(("127.0.0.1", port), _handler_for(self))
        self._serving = threading.Thread(target=self._server.serve_forever, name=f"lambda-{self.spec.name}",
                                         daemon=True)
        self._serving.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def warm_workers(self) -> int:
        with self._lock:
            return sum(1 for w in self._idle if w.alive())

    def stop(self) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.shutdown()
            if self._serving is not None:
                self._serving.join(timeout=5)
            self._server.server_close()
            self._server = None
        with self._lock:
            workers, self._workers, self._idle = list(self._workers), [], []
        for worker in workers:
            worker.stop()
        if self.platform is not None:
            self.platform.stop()
        if self._log is not subprocess.DEVNULL:
            self._log.close()  # type: ignore[union-attr]

    def __enter__(self) -> LambdaRuntime:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, initialization_type: str = "on-demand") -> _Worker:
        # As Lambda does: the handler module sees how its sandbox was started (provisioned
        # sandboxes initialise, e.g. create their SDK clients, before any request arrives).
        env = {**self._env, "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type}
        worker = _Worker(self.spec, env, self._log, provisioned=initialization_type == "provisioned-concurrency")
        if self.platform is not None:
            worker.stream = self.platform.environment_started()
        with self._lock:
            self._workers.append(worker)
        worker.on_exit = self._exited
        if worker.process.poll() is not None:  # exited before on_exit was set
            self._exited(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        worker.process.kill()
        self._exited(worker)

    def _exited(self, worker: _Worker) -> None:
        """A worker is gone (killed after a timeout, crashed, or stopped): forget it and keep
        the provisioned count, as Lambda replaces a provisioned environment."""
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
            if worker in self._idle:
                self._idle.remove(worker)
            if self._stopping or not worker.ready:
                return  # one that never initialised is not retried in a loop
            alive = sum(1 for w in self._workers if w.provisioned and w.process.poll() is None)
            missing = self.provisioned - alive - self._replacing
            self._replacing += max(0, missing)
        for _ in range(missing):
            threading.Thread(target=self._replace, name=f"lambda-{self.spec.name}-provision", daemon=True).start()

    def _replace(self) -> None:
        worker = None
        try:
            worker = self._spawn("provisioned-concurrency")
            worker.wait_ready(READY_TIMEOUT_S)
        except (TimeoutError, RuntimeError, OSError):
            # The handler no longer initialises: tried again at the next kill of a provisioned worker.
            if worker is not None:
                worker.process.kill()
            with self._lock:
                self._replacing -= 1
            return
        with self._lock:
            self._replacing -= 1
            self.replacements += 1
            if self._stopping:
                worker.on_exit = None
            else:
                self._idle.append(worker)
                return
        worker.stop()

    # -- invocation --------------------------------------------------------------------------
    def acquire(self) -> None:
        """Take one unit of concurrency, or raise :class:`Throttled` at once."""
        if not self._slots.acquire(blocking=False):
            with self._lock:
                self.throttles += 1
            raise Throttled(f"Rate Exceeded: {self.spec.name} is at its concurrency limit ({self.limit})")

    def release(self) -> None:
        self._slots.release()

    def invoke(self, event: Any) -> Invocation:
        self.acquire()
        return self.invoke_acquired(event)

    def invoke_acquired(self, event: Any) -> Invocation:
        """Run one invocation with the unit of concurrency already taken (released here)."""
        try:
            with self._lock:
                worker = None
                while self._idle and worker is None:
                    candidate = self._idle.pop()
                    worker = candidate if candidate.alive() else None
            cold = worker is None
            if worker is None:
                worker = self._spawn()
                with self._lock:
                    self.cold_starts += 1
                try:
                    worker.wait_ready(READY_TIMEOUT_S)
                except (TimeoutError, RuntimeError) as exc:
                    self._discard(worker)
                    return Invocation(error={"errorMessage": f"init failed: {exc}", "errorType": "Runtime.InitError"},
                                      cold_start=True)
            request_id, started = str(uuid.uuid4()), time.time()
            try:
                answer = worker.invoke(event, self.spec.timeout_s, request_id)
            except TimeoutError:
                self._discard(worker)
                return Invocation(error={"errorMessage": f"Task timed out after {self.spec.timeout_s:.2f} seconds",
                                         "errorType": "Sandbox.Timedout"}, cold_start=cold)
            except (RuntimeError, OSError, ValueError) as exc:
                self._discard(worker)
                return Invocation(error={"errorMessage": str(exc), "errorType": "Runtime.ExitError"}, cold_start=cold)
            with self._lock:
                self._idle.append(worker)
            if self.platform is not None:
                self.platform.invoked(worker.stream, request_id, started, (time.time() - started) * 1000,
                                      self.spec.memory_mb)
            return Invocation(answer.get("result"), answer.get("error"), cold)
        finally:
            self._slots.release()


def function_url_event(method: str, path: str, headers: dict[str, str], body: bytes, source_ip: str) -> dict[str, Any]:
    """A Lambda Function URL request (payload format 2.0)."""
    parts = urlsplit(path)
    lowered = {k.lower(): v for k, v in headers.items()}
    content_type = lowered.get("content-type", "")
    textual = content_type.startswith(("text/", "application/json")) or not body
    if textual:
        try:
            text = body.decode()
        except UnicodeDecodeError:
            textual = False  # not UTF-8 after all: sent base64-encoded, as Lambda does for binary
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": lowered,
        "queryStringParameters": dict(parse_qsl(parts.query)) or None,
        "requestContext": {
            "accountId": "anonymous", "apiId": "local", "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": "local", "requestId": str(uuid.uuid4()), "routeKey": "$default", "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": int(now * 1000),
            "http": {"method": method, "path": parts.path or "/", "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": lowered.get("user-agent", "")},
        },
        "body": text if textual else base64.b64encode(body).decode(),
        "isBase64Encoded": not textual,
    }


def _handler_for(runtime: LambdaRuntime) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: with Nagle's algorithm a kept-alive client
        # waits ~40 ms (delayed ACK) for the body of every answer.
        disable_nagle_algorithm = True
        timeout = IDLE_CONNECTION_TIMEOUT_S  # an idle kept-alive connection does not hold its thread forever

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _body(self) -> bytes | None:
            """The request body (Content-Length or chunked); None when an error was answered."""
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._chunked()
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length < 0:
                    raise ValueError(length)
            except ValueError:
                self._refuse(400, "Invalid Content-Length", "InvalidRequestContentException")
                return None
            if length > MAX_PAYLOAD_BYTES:
                self._too_large()
                return None
            return self.rfile.read(length) if length else b""

        def _chunked(self) -> bytes | None:
            chunks: list[bytes] = []
            size = 0
            try:
                while True:
                    line = self.rfile.readline(1024)
                    chunk = int(line.split(b";", 1)[0].strip(), 16)  # chunk extensions are ignored
                    if chunk < 0:
                        raise ValueError(chunk)
                    if chunk == 0:
                        break
                    size += chunk
                    if size > MAX_PAYLOAD_BYTES:
                        self._too_large()
                        return None
                    data = self.rfile.read(chunk)
                    if len(data) != chunk or self.rfile.read(2) != b"\r\n":
                        raise ValueError("truncated chunk")
                    chunks.append(data)
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
            except ValueError:
                self._refuse(400, "Malformed chunked request body", "InvalidRequestContentException")
                return None
            return b"".join(chunks)

        def _refuse(self, status: int, message: str, error_type: str) -> None:
            self.close_connection = True  # the rest of the body is not read: the connection ends
            self._send(status, {"Message": message}, {"x-amzn-ErrorType": error_type, "Connection": "close"})

        def _too_large(self) -> None:
            self._refuse(413, "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
                         "RequestTooLargeException")

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _throttled(self) -> None:
            self._send(429, {"Type": "User", "message": "Rate Exceeded.",
                             "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"},
                       {"x-amzn-ErrorType": "TooManyRequestsException"})

        def _any(self) -> None:
            body = self._body()
            if body is None:
                return
            if self.path == INVOKE_PATH and self.command == "POST":
                self._invoke_api(body)
            else:
                self._function_url(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any  # noqa: N815

        def _invoke_api(self, body: bytes) -> None:
            try:
                event = json.loads(body or b"{}")
            except ValueError:
                self._send(400, {"message": "Could not parse request body into json"},
                           {"x-amzn-ErrorType": "InvalidRequestContentException"})
                return
            try:
                runtime.acquire()
            except Throttled:
                self._throttled()
                return
            outcome = runtime.invoke_acquired(event)
            headers = {"X-Amz-Executed-Version": runtime.spec.version}
            if outcome.error is not None:
                self._send(200, outcome.error, {**headers, "X-Amz-Function-Error": "Unhandled"})
            else:
                self._send(200, json.dumps(outcome.result).encode(), headers)

        def _function_url(self, body: bytes) -> None:
            try:
                runtime.acquire()  # a throttled request is answered before any work starts
            except Throttled:
                self._throttled()
                return
            try:
                event = function_url_event(self.command, self.path, dict(self.headers.items()), body,
                                           self.client_address[0])
            except BaseException:
                runtime.release()
                raise
            outcome = runtime.invoke_acquired(event)
            if outcome.error is not None:
                self._send(502, {"Message": "Internal Server Error"})
                return
            result = outcome.result
            if isinstance(result, dict) and "statusCode" in result:
                payload = result.get("body") or ""
                data = base64.b64decode(payload) if result.get("isBase64Encoded") else str(payload).encode()
                headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
                self._send(int(result["statusCode"]), data, headers)
            else:
                self._send(200, json.dumps(result).encode())

    return Handler
