"""The stages of a run, and the one place where user errors become exit codes.

Exit codes: 0 success, 1 policy violations, 2 bad configuration or a tool failure the user must
fix (missing credentials, a gate that could not run). Tracebacks are for bugs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from rich.console import Console
from rich.text import Text

from policies.checkov.process import GATING_STAGES, discard_prestarted
from runner.app.context import RunContext
from runner.core.errors import EXIT_BAD_CONFIG, ConfigError, RunExit, UserError
from runner.core.settings import load_settings


def _run_dir() -> Path:
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path.cwd()


def _in_multirun() -> bool:
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def run(cfg: DictConfig) -> None:
    """Run the configured stage and write run.json.

    A single run exits the process with the stage's code. A sweep job returns instead (an exit
    would end the whole sweep): runner/sweep.py reads every job's run.json and sets the
    sweep's exit code.
    """
    multirun = _in_multirun()
    # A sweep job prints one line (below); the sweep's summary table says the rest.
    console = Console(highlight=False, quiet=multirun)
    run_dir = _run_dir()
    record: dict[str, Any] = {"stage": cfg.get("stage"), "overrides": _overrides()}
    try:
        settings = load_settings(cfg)
        if not settings.policy.checkov.enabled or settings.stage not in GATING_STAGES:
            discard_prestarted()  # main.py started a checkov worker this run will not use
        context = RunContext(settings, run_dir, console)
        record = {**record, "stack": settings.name, "target": settings.target.kind, "run_id": context.run_id}
        code = run_stage(context)
        record.update(context.result)
    except (ConfigError, UserError, BotoCoreError, ClientError, Boto3Error) as exc:
        # An AWS call the account refused (AccessDenied, a quota, a missing bucket) is the user's to
        # fix, not a bug: one line, exit 2.
        kind = "config error" if isinstance(exc, ConfigError) else "error"
        console.print(error_line(kind, exc), soft_wrap=True)
        code = getattr(exc, "exit_code", EXIT_BAD_CONFIG)
        record["error"] = f"{kind}: {exc}"
        if "context" in locals():
            record.update(context.result)
    except Exception as exc:
        if not multirun:
            raise  # a bug: its traceback
        # In a sweep, a job that raised is a row with its error (the traceback is in the job's
        # directory); the sweep's summary is still written (runner/app/sweep.py).
        import traceback

        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "traceback.txt").write_text("".join(traceback.format_exception(exc)))
        code = EXIT_BAD_CONFIG
        record["error"] = f"error: {type(exc).__name__}: {exc} (traceback in {run_dir / 'traceback.txt'})"
        if "context" in locals():
            record.update(context.result)
    record["exit_code"] = code
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    if multirun:
        Console(highlight=False).print(_job_line(record), soft_wrap=True, markup=False)
    elif code:
        raise RunExit(code)



def error_line(kind: str, exc: BaseException) -> Text:
    """The one line an error ends in. Its message holds untrusted text (AWS's, e.g. "... enum value
    set: [ml.t2.medium, ml.m5.large]"): a Text, never console markup."""
    return Text.assemble((f"{kind}:", "bold red"), " ", str(exc))


def _job_line(record: dict[str, Any]) -> str:
    gate = record.get("gate") or {}
    cost = record.get("cost") or {}
    verdict = "error" if record.get("error") else gate.get("verdict", "done")
    money = f" ${cost['monthly_min']:,.2f}..${cost['monthly_max']:,.2f}/month" if cost else ""
    detail = record.get("error") or (gate.get("top_finding") if verdict == "fail" else "") or ""
    return f"  {' '.join(record.get('overrides', []))}: {verdict}{money}" + (f" — {detail}" if detail else "")


def run_stage(context: RunContext) -> int:
    from runner.app import stages

    return stages.STAGES[context.settings.stage](context)
