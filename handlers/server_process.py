"""Start ``python -m handlers.serve`` as a child process and wait for its ready line.

Kept apart from handlers/serve.py, which imports torch: the control plane (runner/targets/
dataplane.py) starts endpoint servers without paying torch's import in its own process.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO


@dataclass
class ServerProcess:
    """A ``python -m handlers.serve`` child. ``stop()`` sends SIGTERM and returns the exit code."""

    url: str
    host: str
    port: int
    process: subprocess.Popen = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout_s: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def spawn_server(
    model_dir: str,
    host: str = "127.0.0.1",
    port: int = 0,
    endpoint_name: str | None = None,
    workers: int | None = None,
    extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
    stderr: int | IO | None = None,
    ready_timeout_s: float = 120.0,
    variants: list[tuple[str, float]] | None = None,
    region: str | None = None,
) -> ServerProcess:
    """Start the server as a child process and wait for its ready line on stdout.

    ``variants`` are ``(name, weight)`` production variants (default: the server's ``AllTraffic``);
    ``region`` defaults to the child's ``AWS_REGION``, else us-east-1.
    """
    cmd = [
        sys.executable,
        "-m",
        "handlers.serve",
        "--model-dir",
        model_dir,
        "--host",
        host,
        "--port",
        str(port),
    ]
    if workers is not None:  # None: the server's default
        cmd += ["--workers", str(workers)]
    if endpoint_name:
        cmd += ["--endpoint-name", endpoint_name]
    if region:
        cmd += ["--region", region]
    for name, weight in variants or []:
        cmd += ["--variant", f"{name}={float(weight)!r}"]
    cmd += extra_args or []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, env=env, text=True)
    lines: queue.SimpleQueue[str] = queue.SimpleQueue()

    def pump() -> None:  # a thread, so the deadline holds even if the child prints nothing
        with proc.stdout:  # type: ignore[union-attr]  # closed here, at EOF, not by stop()
            for line in proc.stdout:  # type: ignore[union-attr]
                lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + ready_timeout_s
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            proc.kill()
            proc.wait()
            raise TimeoutError(f"handlers.serve was not ready after {ready_timeout_s:g} s") from None
        if not line:
            proc.wait()
            raise RuntimeError(f"handlers.serve exited with code {proc.returncode} before it was ready")
        try:
            ready = json.loads(line)
        except ValueError:
            continue
        if isinstance(ready, dict) and ready.get("event") == "ready":
            return ServerProcess(ready["url"], ready["host"], int(ready["port"]), proc)
