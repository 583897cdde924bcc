"""The checkov worker process, and a worker started before the gate needs it.

checkov's start-up (importing its CloudFormation runner and loading sagegate's custom checks,
≈ 1.7 s) is most of a single check. ``prestart`` launches the worker (``worker.py --serve``) as
the very first thing a run that will gate does (main.py); it imports checkov on one core while
sagegate composes the config, validates the settings and builds the stack on the other, then
waits on stdin. The gate takes it (``take_prestarted``) and sends it the template; a run that
does not gate after all (an invalid config, checkov disabled) discards it, and so does the
interpreter's exit.

Standard library only: main.py imports this before anything else of sagegate.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKOV_VENV = REPO_ROOT / ".venv-checkov"
CHECKS_DIR = Path(__file__).resolve().parent / "checks"
WORKER = Path(__file__).resolve().parent / "worker.py"
CUSTOM_CHECK_IDS = ("CKV_SG_001", "CKV_SG_002")
PARAMS_ENV = "SAGEGATE_CHECKOV_PARAMS"
# Stages whose run gates a stack (runner/app/stages.py).
GATING_STAGES = ("check", "plan", "deploy", "all")
DEFAULT_STAGE = "all"  # conf/config.yaml


def checkov_environment() -> dict[str, str]:
    """The environment checkov runs in: offline, no platform key, parse errors fatal."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BC_", "PRISMA_", "CKV_", "PYTHON")) and k != PARAMS_ENV}
    env.update({
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
        "CKV_PARSE_ERROR_FAIL": "true",
        "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
        "LOG_LEVEL": "ERROR",
    })
    return env


class WorkerProcess:
    """One ``worker.py --serve`` process: checkov loading (or loaded), waiting for templates."""

    def __init__(self, venv: Path, checks_dir: Path) -> None:
        self.venv, self.checks_dir = Path(venv), Path(checks_dir)
        self.tmp = Path(tempfile.mkdtemp(prefix="sagegate-gate-"))
        self.response = self.tmp / "response.json"
        self._stderr = (self.tmp / "stderr.txt").open("w")
        self.process = subprocess.Popen(
            [str(self.venv / "bin" / "python"), "-I", str(WORKER), "--serve", str(self.checks_dir),
             ",".join(CUSTOM_CHECK_IDS), str(self.response)],
            cwd=self.tmp, env=checkov_environment(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr)
        self._ready: dict[str, Any] | None = None

    def alive(self) -> bool:
        return self.process.poll() is None or self.response.exists()

    def ready(self, timeout_s: float) -> dict[str, Any] | None:
        """Wait until checkov is loaded: its ready line (checkov's version, the connection types
        of its graph checks), or None if the worker exited instead (its response says why) or
        was killed after ``timeout_s``."""
        if self._ready is None and self.process.stdout is not None:
            timer = threading.Timer(max(0.1, timeout_s), self.process.kill)
            timer.start()
            try:
                line = self.process.stdout.readline()
            finally:
                timer.cancel()
            try:
                value = json.loads(line) if line.strip() else None
            except ValueError:
                value = None
            self._ready = value if isinstance(value, dict) and value.get("ready") else None
        return self._ready

    def send(self, templates: dict[str, Any]) -> None:
        """The templates to scan (the worker starts once its checkov is loaded)."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps({"templates": templates}, default=str).encode("utf-8"))
        except BrokenPipeError:  # it exited (e.g. checkov failed to load): its response says why
            pass
        finally:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass

    def wait(self, timeout_s: float) -> tuple[int, Path, str]:
        """(exit code, response file, stderr); ``subprocess.TimeoutExpired`` after ``timeout_s``."""
        # Popen.wait(timeout) polls (sleeps of up to 50 ms); a blocking wait and a timer answer at once.
        expired = threading.Event()

        def kill() -> None:
            expired.set()
            self.process.kill()

        timer = threading.Timer(max(0.1, timeout_s), kill)
        timer.start()
        try:
            returncode = self.process.wait()
        finally:
            timer.cancel()
        if expired.is_set():
            raise subprocess.TimeoutExpired(self.process.args, timeout_s)
        self._stderr.close()
        return returncode, self.response, (self.tmp / "stderr.txt").read_text(errors="replace")

    def discard(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self.process.stdin is not None and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass
        self._stderr.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


_prestarted: WorkerProcess | None = None


def prestart(venv: Path = CHECKOV_VENV, checks_dir: Path = CHECKS_DIR) -> WorkerProcess | None:
    """Start the worker now (once per process); None when checkov is not installed (the gate then
    reports it as it always does)."""
    global _prestarted
    if _prestarted is None and (Path(venv) / "bin" / "python").exists() and (Path(checks_dir) / "__init__.py").is_file():
        _prestarted = WorkerProcess(venv, checks_dir)
        atexit.register(discard_prestarted)
    return _prestarted


def take_prestarted(venv: Path = CHECKOV_VENV, checks_dir: Path = CHECKS_DIR) -> WorkerProcess | None:
    """The prestarted worker, for one scan with this venv and these checks (then it is gone)."""
    global _prestarted
    worker, _prestarted = _prestarted, None
    if worker is None:
        return None
    if worker.venv != Path(venv) or worker.checks_dir != Path(checks_dir) or not worker.alive():
        worker.discard()
        return None
    return worker


def discard_prestarted() -> None:
    """Stop the prestarted worker, if it was never used."""
    global _prestarted
    worker, _prestarted = _prestarted, None
    if worker is not None:
        worker.discard()


def will_gate(argv: list[str]) -> bool:
    """Whether ``python main.py ARGV`` gates with checkov on (a single run of a gating stage, or a
    sweep whose stage is one: its callback scans all templates in one batch), as far as the
    command line tells (a group option may still turn checkov off: the worker is then discarded).
    Any other Hydra flag (``--cfg``, ``--help``...) means no."""
    if any(arg.startswith("-") and arg not in ("-m", "--multirun") for arg in argv):
        return False
    stage = DEFAULT_STAGE
    for arg in argv:
        key, _, value = arg.partition("=")
        key = key.lstrip("+")
        if key == "stage":
            stage = value
        elif key == "policy.checkov.enabled" and value.strip().lower() in ("false", "no", "off", "0"):
            return False
    return stage in GATING_STAGES
