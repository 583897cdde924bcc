"""The stages of a run, and the one place where user errors become exit codes.

Exit codes: 0 success, 1 policy violations, 2 bad configuration or a tool failure the user must
fix (missing credentials, a gate that could not run). Tracebacks are for bugs.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from rich.console import Console

from runner.settings import ConfigError, Settings, load_settings

EXIT_OK = 0
EXIT_VIOLATIONS = 1
EXIT_BAD_CONFIG = 2


class UserError(Exception):
    """Something the user must fix; printed as one line, never with a traceback."""

    exit_code = EXIT_BAD_CONFIG


@dataclass
class RunContext:
    settings: Settings
    run_dir: Path
    console: Console

    def write_json(self, name: str, value: Any) -> Path:
        path = self.run_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")
        return path


def _run_dir() -> Path:
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path.cwd()


def run(cfg: DictConfig) -> None:
    """Run the configured stage; exits the process with the stage's code."""
    console = Console(stderr=False, highlight=False)
    try:
        settings = load_settings(cfg)
    except ConfigError as exc:
        console.print(f"[bold red]config error:[/] {exc}", soft_wrap=True)
        sys.exit(EXIT_BAD_CONFIG)
    context = RunContext(settings, _run_dir(), console)
    try:
        code = run_stage(context)
    except (ConfigError, UserError) as exc:
        kind = "config error" if isinstance(exc, ConfigError) else "error"
        console.print(f"[bold red]{kind}:[/] {exc}", soft_wrap=True)
        code = getattr(exc, "exit_code", EXIT_BAD_CONFIG)
    if code:
        sys.exit(code)


def run_stage(context: RunContext) -> int:
    from runner import stages

    return stages.STAGES[context.settings.stage](context)
