"""What a stage works with: the settings, the run directory, the console, and the run record."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from runner.core.settings import Settings


@dataclass
class RunContext:
    settings: Settings
    run_dir: Path
    console: Console
    # What the run found and did, written as run.json at the end (and read by sweep summaries).
    result: dict[str, Any] = field(default_factory=dict)
    # Names this run's jobs: SageMaker job names are unique in an account and region forever, so
    # every run needs its own (a UTC timestamp and a random suffix, e.g. 20261205-222600-3f9a).
    run_id: str = field(default_factory=lambda: f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-"
                                                f"{secrets.token_hex(2)}")

    def write_json(self, name: str, value: Any) -> Path:
        path = self.run_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")
        return path
