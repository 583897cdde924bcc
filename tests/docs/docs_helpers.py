"""How the documentation tests run a documented command: from the repository root, offline, isolated."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMAND_TIMEOUT_S = 300
EMULATOR_START_TIMEOUT_S = 60
# The address the docs use for `python -m runner.local --port 4566`; the tests start their own.
DOCUMENTED_EMULATOR_URL = "http://127.0.0.1:4566"
PYTHONS = ("python", "python3", ".venv/bin/python")
# Overrides the tests set themselves on every main.py command (a documented value is replaced).
ISOLATION_KEYS = ("hydra.run.dir", "hydra.sweep.dir", "workdir")


@dataclass(frozen=True)
class Ran:
    argv: list[str]
    returncode: int
    output: str

    def explain(self) -> str:
        tail = "\n".join(self.output.splitlines()[-30:])
        return f"$ {' '.join(self.argv)}\n(exit {self.returncode})\n{tail}"


def offline_environment(tmp: Path) -> dict[str, str]:
    """The environment documented commands run in: no AWS credentials or configuration at all, so
    the local target is what runs, and ``target=aws`` fails the way it does on a fresh machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "COLUMNS": "120",
    })
    return env


def is_main_py(argv: list[str]) -> bool:
    return len(argv) > 1 and argv[1] == "main.py"


def isolate_main_py(argv: list[str], out_dir: Path) -> list[str]:
    """A ``main.py`` command that writes its run (or sweep) directory and workdir under ``out_dir``,
    never into the repository."""
    kept = [a for a in argv if a.partition("=")[0] not in ISOLATION_KEYS]
    multirun = "-m" in argv or "--multirun" in argv
    run_key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    return [*kept, f"{run_key}={out_dir / 'hydra'}", f"workdir={out_dir / 'work'}"]


def with_interpreter(argv: list[str]) -> list[str]:
    """``python ...`` as documented, run with the interpreter running the tests."""
    return [sys.executable, *argv[1:]] if argv and argv[0] in PYTHONS else argv


def run_command(argv: list[str], tmp: Path, timeout_s: float = COMMAND_TIMEOUT_S) -> Ran:
    try:
        done = subprocess.run(argv, cwd=REPO_ROOT, env=offline_environment(tmp), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode(errors="replace")
        return Ran(argv, -1, f"timed out after {timeout_s:.0f} s\n{output}")
    return Ran(argv, done.returncode, done.stdout)


@contextlib.contextmanager
def local_emulator(tmp: Path) -> Iterator[str]:
    """``python -m runner.local --port 0`` as a child process; yields its URL, stops it after."""
    process = subprocess.Popen([sys.executable, "-m", "runner.local", "--port", "0"], cwd=REPO_ROOT,
                               env=offline_environment(tmp), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        url = _wait_for_url(process, lines)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def _wait_for_url(process: subprocess.Popen[str], lines: queue.Queue[str]) -> str:
    deadline = time.monotonic() + EMULATOR_START_TIMEOUT_S
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        found = re.search(r"emulator on (http://127\.0\.0\.1:\d+)", line)
        if found:
            return found.group(1)
    raise RuntimeError("python -m runner.local did not report its address:\n" + "".join(seen))
