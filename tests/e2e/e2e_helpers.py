"""Shared by the end-to-end tests (a uniquely named module: every test folder has a conftest)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """No AWS settings from the developer's shell: the local target must not need them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"COLUMNS": "160", **extra})
    return env
