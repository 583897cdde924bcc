"""Running main.py as a user does: a subprocess from the repo root, outputs in a temporary dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """No AWS settings from the developer's shell: the local target must not need them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"COLUMNS": "160", **extra})
    return env


@pytest.fixture
def run_main():
    def run(*args: str, timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(REPO / "main.py"), *args], cwd=REPO, env=env or clean_env(),
                              capture_output=True, text=True, timeout=timeout)

    return run
