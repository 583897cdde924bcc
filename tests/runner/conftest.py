"""Tests of the runner package mirror its layers (core, stack, deploy, targets, launchers, app);
their shared helpers live in runner_helpers.py beside this file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A tiny image-folder data set (one class, one file per split), for launches that upload it."""
    root = tmp_path / "digits"
    for split in ("train", "valid", "test"):
        (root / split / "0").mkdir(parents=True)
        (root / split / "0" / "a.png").write_bytes(b"png-" + split.encode())
    return root
