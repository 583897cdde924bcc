"""Hydra sweeps: checkov once for the whole sweep, and one summary table at the end.

``SweepSummary`` is a Hydra callback (registered in conf/config.yaml). Before the first job it
composes every job's config, renders every template and scans them all with one warm checkov
process, caching the answers by template hash in the sweep directory; each job's gate then reads
its answer from there instead of starting checkov (≈3 s each). After the last job it gathers
every job's run.json into one table (console, sweep_summary.csv, sweep_summary.json), sorted by
cost, and sets the sweep's exit code: 2 if a job had an error, 1 if a job failed the gate.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from runner.core.errors import RunExit

CACHE_DIR_NAME = ".checkov-cache"
SEVERITY_COLUMNS = ("critical", "high", "medium", "low")


def checkov_cache_dir() -> Path | None:
    """The sweep's checkov cache, for a job inside a multirun; None for a single run."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir) / CACHE_DIR_NAME


def job_overrides(task_overrides: list[str]) -> list[list[str]]:
    """Every job's overrides, exactly as Hydra's basic sweeper will expand them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(task_overrides))
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def precompute_checkov(task_overrides: list[str], cache_dir: Path, console: Console) -> int:
    """Scan the templates of all jobs in one checkov batch; returns how many were scanned."""
    from policies.checkov.runner import render_template, warm_cache
    from runner.app.compose import compose_jobs
    from runner.core.errors import ConfigError
    from runner.core.settings import load_settings
    from runner.stack.build import build_stack

    templates = []
    timeout_s = 600.0
    account: str | None = None
    for config in compose_jobs(job_overrides(task_overrides)):
        try:
            settings = load_settings(config)
        except ConfigError:
            continue  # the job itself reports its bad config
        if not settings.policy.checkov.enabled:
            continue
        if account is None:
            from runner.targets import account_of  # asks AWS once per sweep on target=aws

            account = account_of(settings)
        templates.append(render_template(settings, build_stack(settings, account=account)))
        timeout_s = max(timeout_s, float(settings.policy.checkov.timeout_s))
    if templates:
        with console.status(f"checkov: scanning {len(templates)} templates in one batch"):
            warm_cache(templates, cache_dir, timeout_s)
    return len(templates)


def _value(overrides: list[str], key: str) -> str:
    for override in overrides:
        name, _, value = override.partition("=")
        if name.lstrip("+~") == key:
            return value
    return ""


def summary_rows(sweep_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per job, from each job's run.json, sorted by monthly cost at max capacity; and
    the keys that vary between jobs (the sweep's columns)."""
    records = []
    for path in sorted(sweep_dir.glob("*/run.json"), key=lambda p: _job_number(p.parent.name)):
        records.append((path.parent.name, json.loads(path.read_text())))
    keys: list[str] = []
    for _, record in records:
        keys += [k for k in (o.partition("=")[0].lstrip("+~") for o in record.get("overrides", [])) if k not in keys]
    # The columns are the keys that vary between jobs; the rest is the same everywhere.
    swept = [k for k in keys if len({_value(r.get("overrides", []), k) for _, r in records}) > 1]
    rows = []
    for job, record in records:
        gate = record.get("gate") or {}
        counts = gate.get("counts") or {}
        cost = record.get("cost") or {}
        metrics = (record.get("training") or {}).get("metrics") or {}
        error = record.get("error")
        verdict = "error" if error else gate.get("verdict", "pass" if record.get("exit_code") == 0 else "fail")
        row: dict[str, Any] = {"job": int(job) if job.isdigit() else job}
        row.update({key: _value(record.get("overrides", []), key) for key in swept})
        row.update({
            "monthly_min_usd": cost.get("monthly_min"),
            "monthly_max_usd": cost.get("monthly_max"),
            "verdict": verdict,
            **{severity: counts.get(severity, 0) for severity in SEVERITY_COLUMNS},
            "top_finding": error or gate.get("top_finding") or "",
            "exit_code": record.get("exit_code"),
        })
        for name, value in metrics.items():
            if isinstance(value, int | float):
                row[name] = value
        rows.append(row)
    # Ties (e.g. every row of a learning-rate sweep costs the same) keep the job order: 2 before 10.
    rows.sort(key=lambda r: (r["monthly_max_usd"] is None, r["monthly_max_usd"] or 0.0,
                             r["monthly_min_usd"] or 0.0, _job_number(r["job"])))
    return rows, swept


VALIDATION_LOSS_KEYS = ("best_valid_loss", "valid_loss", "validation_loss")


def _job_number(job: object) -> tuple[int, str]:
    text = str(job)
    return (int(text), "") if text.isdigit() else (1 << 30, text)


def validation_loss(row: dict[str, Any]) -> float | None:
    for key in VALIDATION_LOSS_KEYS:
        if isinstance(row.get(key), int | float):
            return float(row[key])
    return None


def best_by_validation_loss(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """For `stage=train` sweeps (HPO by Hydra): the row whose best epoch had the lowest validation loss."""
    trained = [r for r in rows if validation_loss(r) is not None]
    return min(trained, key=lambda row: validation_loss(row) or 0.0) if trained else None


def write_summary(sweep_dir: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with (sweep_dir / "sweep_summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    (sweep_dir / "sweep_summary.json").write_text(json.dumps(rows, indent=2) + "\n")


def print_summary(console: Console, rows: list[dict[str, Any]], keys: list[str], sweep_dir: Path) -> None:
    if not rows:
        console.print("sweep: no job wrote a run.json")
        return
    table = Table(title=f"sweep: {len(rows)} combinations, cheapest first")
    trained = any(validation_loss(r) is not None for r in rows)
    for column in ["job", *keys, *(["valid loss"] if trained else []), "$/month min", "$/month max", "verdict",
                   "crit/high/med/low", "top finding"]:
        table.add_column(column, overflow="fold")
    for row in rows:
        style = {"pass": "green", "fail": "red", "error": "magenta"}.get(row["verdict"], "")
        money = ["" if row[k] is None else f"{row[k]:,.2f}" for k in ("monthly_min_usd", "monthly_max_usd")]
        loss = validation_loss(row)
        table.add_row(str(row["job"]), *[_fmt(row[k]) for k in keys],
                      *([f"{loss:.4f}" if loss is not None else ""] if trained else []), *money, f"[{style}]{row['verdict']}[/]",
                      "/".join(str(row[s]) for s in SEVERITY_COLUMNS),
                      _short(row["top_finding"]) if row["verdict"] != "pass" else "")
    console.print(table)
    failing = sum(1 for r in rows if r["verdict"] != "pass")
    console.print(f"{len(rows) - failing} pass, {failing} fail; "
                  f"{sweep_dir / 'sweep_summary.csv'} and sweep_summary.json written")
    best = best_by_validation_loss(rows)
    if best is not None:
        loss = validation_loss(best)
        console.print(f"best by validation loss: job {best['job']} ({loss:.4f}): "
                      + ", ".join(f"{k}={best[k]}" for k in keys))


def _short(finding: str) -> str:
    """Rule id and resource for the table; the CSV and JSON keep the whole message."""
    head, _, _ = finding.partition(":")
    return head if head and len(head) < 60 else finding[:60]


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def sweep_exit_code(rows: list[dict[str, Any]]) -> int:
    if any(r["verdict"] == "error" for r in rows):
        return 2
    return 1 if any(r["verdict"] == "fail" or (r["exit_code"] or 0) != 0 for r in rows) else 0


class SweepSummary(Callback):
    """Registered under hydra.callbacks in conf/config.yaml."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        console = Console(highlight=False)
        try:
            scanned = precompute_checkov(list(config.hydra.overrides.task), sweep_dir / CACHE_DIR_NAME, console)
        except Exception as exc:  # noqa: BLE001 - each job then runs (and reports) its own checkov
            console.print(f"checkov batch for the sweep failed, jobs will scan one by one: {exc}")
            return
        if scanned:
            console.print(f"checkov: {scanned} templates scanned once for the whole sweep")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows, keys = summary_rows(sweep_dir)
        write_summary(sweep_dir, rows)
        print_summary(Console(highlight=False), rows, keys, sweep_dir)
        code = sweep_exit_code(rows)
        if code:
            raise RunExit(code)
