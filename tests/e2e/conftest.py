"""Running main.py as a user does: a subprocess from the repo root, outputs in a temporary dir."""

from __future__ import annotations

import subprocess
import sys

import pytest
from e2e_helpers import REPO, clean_env


@pytest.fixture
def run_main():
    def run(*args: str, timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(REPO / "main.py"), *args], cwd=REPO, env=env or clean_env(),
                              capture_output=True, text=True, timeout=timeout)

    return run
