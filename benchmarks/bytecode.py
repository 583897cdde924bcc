"""Compile sagegate's modules to bytecode before timing ``main.py``, as any second run of a checkout
finds them: Python writes ``__pycache__`` on first import unless ``PYTHONDONTWRITEBYTECODE`` is set
(the build machines set it), and without it every ``main.py`` recompiles ~190 modules (≈ 0.3 s of
a check). checkov's own environment has its bytecode from pip, so both sides run compiled code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SOURCES = ("main.py", "runner", "policies", "training", "handlers", "hydra_plugins")


def compile_sagegate(repo: Path) -> None:
    """``python -m compileall`` over the checkout's sources (it writes whatever the environment says)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(repo / s) for s in SOURCES)],
                   check=True, stdout=subprocess.DEVNULL)
