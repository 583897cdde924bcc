"""Helpers shared by the training tests (a module with a unique name, beside conftest.py)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_SIZE = 16


def copy_subset(source: Path, dest: Path, per_class: dict[str, int], classes: int = 10) -> Path:
    for split, count in per_class.items():
        for folder in sorted((source / split).iterdir())[:classes]:
            target = dest / split / folder.name
            target.mkdir(parents=True)
            for image in sorted(folder.iterdir())[:count]:
                shutil.copyfile(image, target / image.name)
    return dest



def tiny_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--data_dir", str(data), "--model_dir", str(out / "model"), "--output_dir", str(out / "output"),
            "--image_size", str(TINY_SIZE), "--epochs", "2", "--batch_size", "16", *extra]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_python(args: list[str], cwd: Path = REPO_ROOT, env: dict[str, str] | None = None,
               timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll until ``predicate()`` holds or ``timeout`` seconds pass (no fixed sleeps in tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
