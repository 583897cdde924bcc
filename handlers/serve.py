"""The local SageMaker endpoint: the model artifact behind an HTTP server on loopback.

Command line::

    python -m handlers.serve --model-dir DIR_OR_MODEL_TAR_GZ [--host 127.0.0.1] [--port 0]
        [--workers 1] [--endpoint-name NAME] [--region REGION] [--variant NAME=WEIGHT ...]
        [--max-batch 32] [--max-batch-delay-ms 2] [--max-connections 64] [--max-body-bytes N]
        [--torch-threads N]

``--port 0`` picks a free port. When the model is loaded and the socket listens, exactly one JSON
ready line goes to stdout (logs go to stderr as JSON lines); SIGTERM or SIGINT stops accepting,
lets in-flight requests finish, and exits 0. ``--workers K`` runs K processes on one socket, each
with ``cores // K`` torch threads.

The pieces, each in its own module:

- ``handlers.inference``: the model contract (model_fn / input_fn / predict_fn / output_fn);
- ``handlers.endpoint_app``: the HTTP API (container contract and runtime API, their error shapes);
- ``handlers.batching``: merging concurrent requests into one forward pass, on the one thread
  that runs torch's parallel operations;
- ``handlers.http_server``: HTTP parsing, limits, overload and drain;
- ``handlers.worker_processes``: the socket, worker processes, signals and the ready line;
- ``handlers.server_config``: the settings; ``handlers.server_process``: the torch-free launcher.

Python API: ``start_server(model_dir, host, port, endpoint_name, **options) -> ServerHandle`` runs
the server in this process (threads); ``spawn_server(...) -> ServerProcess`` runs
``python -m handlers.serve`` as a child process and waits for its ready line. Both handles have
``.url``, ``.port``, ``.stop()`` and work as context managers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field, replace
from typing import Any

# How long torch's OpenMP threads (libgomp) spin at a barrier before they sleep, read once when
# torch loads: libgomp's default (300 000 spins, ≈ 1 ms) makes the forward pass fast on idle
# cores and ruinous on busy ones - a spinning thread holds the core its partner needs; too short a
# spin puts the threads to sleep between the forward pass's many barriers. Measured on the 2-core
# machine, ResNet50 @224 (benchmarks/serve_throughput.py, 2026-12-06; server img/s at 1 / 8
# clients): idle, 1 000 spins 18.4 / 26.7, 10 000 spins 23.8 / 32.7, the default 23.1 / 30.9; two
# busy processes beside it, 10.7 / 11.5, 10.6 / 13.6 and 8.8 / 8.0; four, 4.7 / 8.4, 4.9 / 7.4 and
# 2.2 / 3.6 (at load 6 a single forward pass took 1.6-9 s with the default). 10 000 is as fast as
# the default when idle and as robust as 1 000 under load. Set before torch is imported, so
# ``python -m handlers.serve`` and its workers get it; a value in the environment wins.
OMP_SPIN_COUNT = "10000"
os.environ.setdefault("GOMP_SPINCOUNT", OMP_SPIN_COUNT)

import torch  # noqa: E402

from handlers.endpoint_app import EndpointApp  # noqa: E402
from handlers.http_server import EndpointHTTPServer  # noqa: E402
from handlers.server_config import ServerConfig, parse_variant  # noqa: E402
from handlers.server_log import log_event  # noqa: E402
from handlers.server_process import ServerProcess, spawn_server  # noqa: E402
from handlers.worker_processes import bind_socket, serve_until_stopped, stop_on_signals, url_for  # noqa: E402

__all__ = ["ServerConfig", "ServerHandle", "ServerProcess", "main", "spawn_server", "start_server"]


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, which a container limits), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def set_torch_threads(config: ServerConfig) -> int:
    """Intra-op threads for this worker: ``--torch-threads``, else the cores split between the workers.

    One forward pass runs at a time per worker (on the batcher's thread), so the cores go to
    intra-op parallelism and one inter-op thread is enough (a traced ResNet has no parallel
    branches). Measured on the 2-core machine, ResNet50 @224 (benchmarks/serve_throughput.py,
    2026-12-06, same load): 2 workers × 1 thread served 1 client at 13.9 img/s (p50 72 ms: a
    one-thread forward) and 8 clients at 19.6 img/s; 1 worker × 2 threads 16.5-18.7 img/s (p50 53
    ms) and 28-30 img/s (batches of up to 8). So one worker with every core is the default.
    """
    threads = config.torch_threads or max(1, usable_cores() // config.workers)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or the inter-op pool has started (in-process servers): keep it
        pass
    return threads


def open_endpoint(config: ServerConfig, model_dir: str, sock: socket.socket) -> EndpointHTTPServer:
    """Load the model and put the endpoint app on ``sock`` (not yet started)."""
    set_torch_threads(config)
    return EndpointHTTPServer(sock, EndpointApp.load(model_dir, config), config)


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


@dataclass
class ServerHandle:
    """An in-process server. ``stop()`` is idempotent."""

    url: str
    host: str
    port: int
    config: ServerConfig
    _server: EndpointHTTPServer = field(repr=False)
    _temp_dir: str | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.stop()
        if self._temp_dir:
            shutil.rmtree(self._temp_dir, ignore_errors=True)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(
    model_dir: str,
    host: str = "127.0.0.1",
    port: int = 0,
    endpoint_name: str | None = None,
    **options: Any,
) -> ServerHandle:
    """Load the artifact (directory or model.tar.gz) and serve it on threads of this process.

    ``options`` are :class:`ServerConfig` fields (``max_batch``, ``variants``, ``region``, …);
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
        server = open_endpoint(config, resolved, sock)
    except BaseException:
        sock.close()
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    server.start()
    bound_port = sock.getsockname()[1]
    return ServerHandle(
        url_for(host, bound_port), host, bound_port, replace(config, port=bound_port), server, temp_dir
    )


def _variant_flag(text: str) -> tuple[str, float]:
    try:
        return parse_variant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    parser.add_argument(
        "--region", default=None, help="the region in error ARNs (default: $AWS_REGION, else us-east-1)"
    )
    parser.add_argument(
        "--variant",
        dest="variants",
        action="append",
        type=_variant_flag,
        metavar="NAME=WEIGHT",
        help="a production variant and its traffic weight; repeatable (default: AllTraffic=1)",
    )
    parser.add_argument("--max-batch", type=int, default=ServerConfig.max_batch)
    parser.add_argument("--max-batch-delay-ms", type=float, default=ServerConfig.max_batch_delay_ms)
    parser.add_argument("--max-connections", type=int, default=ServerConfig.max_connections)
    parser.add_argument("--max-body-bytes", type=int, default=ServerConfig.max_body_bytes)
    parser.add_argument(
        "--torch-threads", type=int, default=None, help="intra-op threads per worker (default: cores // workers)"
    )
    args = parser.parse_args(argv)
    given = {"region": args.region, "variants": args.variants}  # unset: ServerConfig's defaults
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
            torch_threads=args.torch_threads,
            **{name: value for name, value in given.items() if value is not None},
        ).validate()
        model_dir, temp_dir = prepare_model_dir(config.model_dir)
    except (ValueError, OSError, tarfile.TarError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    stop = stop_on_signals()
    try:
        sock = bind_socket(config.host, config.port)
        serve_until_stopped(open_endpoint, config, model_dir, sock, stop)
        log_event("stopped", pid=os.getpid())
        return 0
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)


if __name__ == "__main__":
    code = main()
    # Everything is drained, closed and logged by now; torch's interpreter teardown alone takes
    # seconds (it garbage-collects the model), which SIGTERM's caller would wait for.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
