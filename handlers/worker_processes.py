"""Process plumbing for ``python -m handlers.serve``: the listening socket, one server or K worker
processes sharing it; drain on SIGTERM/SIGINT; the ready line on stdout.

The ready line (what ``handlers.server_process.spawn_server`` waits for) is printed once every
worker has loaded the model and listens::

    {"event": "ready", "url": "http://127.0.0.1:PORT", "host": "127.0.0.1", "port": PORT, "pid": PID, "workers": K}
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from handlers.http_server import EndpointHTTPServer
from handlers.server_config import ServerConfig
from handlers.server_log import log_event

# Loads the model and builds the server on a socket. Workers are spawned, not forked, so this must
# be a module-level function (it is pickled by name).
OpenServer = Callable[[ServerConfig, str, socket.socket], EndpointHTTPServer]


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock



def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM (what SageMaker and ``ServerProcess.stop`` send) or SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def announce_ready(config: ServerConfig, port: int) -> None:
    ready = {
        "event": "ready",
        "url": url_for(config.host, port),
        "host": config.host,
        "port": port,
        "pid": os.getpid(),
        "workers": config.workers,
    }
    print(json.dumps(ready), flush=True)
    log_event(**ready)


def serve_until_stopped(
    open_server: OpenServer, config: ServerConfig, model_dir: str, sock: socket.socket, stop: threading.Event
) -> None:
    """Serve on ``sock`` until ``stop`` is set, then drain in-flight requests and return."""
    port = sock.getsockname()[1]
    if config.workers == 1:
        server = open_server(config, model_dir, sock)
        server.start()
        announce_ready(config, port)
        stop.wait()
        server.stop()
    else:
        _run_workers(open_server, config, model_dir, sock, stop, lambda: announce_ready(config, port))
        sock.close()


def _worker_main(
    open_server: OpenServer, config: ServerConfig, model_dir: str, sock: socket.socket, ready: Any
) -> None:
    """One of K worker processes sharing the parent's listening socket."""
    stop = stop_on_signals()
    # Every worker wakes when a connection arrives; the losers must not block in accept(), or
    # serve_forever (and so shutdown) never returns.
    sock.setblocking(False)
    server = open_server(config, model_dir, sock)
    server.start()
    ready.put(os.getpid())
    stop.wait()
    server.stop()
    # Drained and closed: skip torch's slow interpreter teardown (see handlers/serve.py).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _run_workers(
    open_server: OpenServer,
    config: ServerConfig,
    model_dir: str,
    sock: socket.socket,
    stop: threading.Event,
    on_ready: Callable[[], None],
) -> None:
    ctx = multiprocessing.get_context("spawn")  # fork after torch's thread pools start is unsafe
    ready = ctx.Queue()
    procs = [
        ctx.Process(target=_worker_main, args=(open_server, config, model_dir, sock, ready), daemon=True)
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
            log_event("worker_exited", codes=[p.exitcode for p in procs])
            break
    for proc in procs:
        if proc.is_alive():
            proc.terminate()  # SIGTERM: the worker drains and exits
    for proc in procs:
        proc.join(timeout=30)
        if proc.is_alive():
            log_event("worker_killed", pid=proc.pid)
            proc.kill()
            proc.join()
