"""Tests of the runner package mirror its layers (core, stack, deploy, targets, launchers, app);
their shared helpers live in runner_helpers.py beside this file."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
