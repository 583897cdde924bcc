"""Hydra sweeps: every job checked before the first runs, checkov once, one summary at the end.

``SweepSummary`` is a Hydra callback (registered in conf/config.yaml). Before the first job it

- refuses a sweep directory that already holds a sweep (its rows would mix with this sweep's):
  the message names ``hydra.sweep.dir``; the default directory is new for every sweep;
- composes and validates every job's config (composition, ``load_settings``, the stack's names and
  references, the job requests against botocore's models). If any job is invalid, nothing runs:
  every error is listed (job number, its overrides, the key and the message), the summary files
  are written (the invalid jobs as ``error`` rows, the others ``not run``) and the sweep exits 2;
- renders every template and hands each distinct resource to one warm checkov process
  (policies/checkov/resources.py: a resource's answer depends on its body, what it references,
  what connects to it through a graph check and the template's other sections, all hashed), which
  scans them while the sweeper sets up; ``before_jobs`` (called by sagegate's sweeper before the
  first job, or at once under another sweeper) waits for the answer and caches each template's by
  template hash in the sweep directory; each job's gate then reads its answer from there instead
  of starting checkov (≈3 s each);
- decides how many jobs run at once and prints it in one line: a sweep whose every job runs
  remotely (target=aws: SageMaker training or tuning, EC2 training, deploy, invoke, destroy)
  runs min(``sweep.max_parallel``, jobs) at once whatever the cores, since its jobs mostly wait
  on AWS; any other sweep one job per core (Hydra's joblib launcher). ``hydra.launcher.n_jobs``
  set by the user wins; jobs that change the same stack on AWS run one at a time. The number is
  set in the config's ``hydra.launcher`` before Hydra instantiates the launcher.
  ``sweep.max_parallel`` is one value for the sweep: a sweep over it is invalid (exit 2).

After the last job it gathers the run.json of each of this sweep's jobs into one table (console,
sweep_summary.csv, sweep_summary.json), sorted by cost; a job that raised is an ``error`` row with
its message (runner/app/cli.py and the sweeper in hydra_plugins/sagegate_sweeper write its
run.json), a job that left none is an ``error`` row too. Swept values keep the types Hydra parses
them to (``2`` an int, ``true`` a bool, ``0.01`` a float) in the JSON. The sweep's exit code: 2 if a
job had an error, 1 if a job failed the gate or its stage, else 0.
"""

from __future__ import annotations

import copy
import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from runner.core.errors import EXIT_BAD_CONFIG, RunExit

if TYPE_CHECKING:
    from runner.core.settings import Settings
    from runner.stack.model import Stack

CACHE_DIR_NAME = ".checkov-cache"
# The sweeper that calls SweepSummary.before_jobs once its set-up is done (conf/config.yaml).
DEFERRING_SWEEPER = "hydra_plugins.sagegate_sweeper.PrevalidatedSweeper"
SEVERITY_COLUMNS = ("critical", "high", "medium", "low")
NOT_RUN = "not run"  # the verdict of a valid job in a sweep stopped by an invalid one


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


def sweep_job_overrides(config: DictConfig) -> list[list[str]]:
    """The jobs of the sweep ``config`` describes: its command-line overrides and the sweeper's
    ``params``, as the sweeper expands them."""
    task = [str(o) for o in (OmegaConf.select(config, "hydra.overrides.task") or [])]
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    return job_overrides([*(f"{key}={value}" for key, value in params.items()), *task])


@dataclass
class Job:
    """One job of a sweep, checked before any job runs."""

    num: int
    overrides: list[str]
    settings: Settings | None = None
    stack: Stack | None = None
    error: str | None = None


def check_jobs(jobs: list[list[str]]) -> list[Job]:
    """Compose and validate every job as its run would, without running anything: composition
    (group options, keys), ``load_settings``, the stack (names, references) and its job requests."""
    from runner.app.compose import ComposeFailure, compose_each
    from runner.core.errors import ConfigError, UserError
    from runner.core.settings import load_settings
    from runner.stack.build import build_stack

    checked = []
    for num, (overrides, config) in enumerate(zip(jobs, compose_each(jobs), strict=True)):
        job = Job(num, list(overrides))
        if isinstance(config, ComposeFailure):
            job.error = f"config error: {config}"
        else:
            try:
                job.settings = load_settings(config)
                job.stack = build_stack(job.settings)
                if any(j.api for j in job.stack.jobs):
                    from runner.targets.request_validation import check_job_requests  # botocore's models

                    check_job_requests(job.stack)
            except ConfigError as exc:
                job.error = f"config error: {exc}"
            except UserError as exc:
                job.error = f"error: {exc}"
        checked.append(job)
    return checked


@dataclass
class CheckovBatch:
    """The sweep's checkov batch, handed to the worker: it scans while the sweep sets up."""

    templates: int  # how many templates it holds
    finish: Callable[[], object]  # waits for checkov's answer and stores it in the sweep's cache
    stats: dict[str, int]


def start_checkov_batch(jobs: list[Job], cache_dir: Path) -> CheckovBatch | None:
    """Render the templates of all valid jobs that run checkov and hand them to checkov in one
    batch (``policies.checkov.runner.start_warm_cache``); None when no job runs checkov."""
    from policies.checkov.runner import render_template, start_warm_cache
    from runner.stack.build import build_stack

    templates = []
    timeout_s = 600.0
    account: str | None = None
    for job in jobs:
        settings = job.settings
        if job.error or settings is None or not settings.policy.checkov.enabled:
            continue  # an invalid job does not run
        if account is None:
            from runner.targets import account_of  # asks AWS once per sweep on target=aws

            account = account_of(settings)
        stack = job.stack if job.stack is not None and job.stack.account == account else None
        templates.append(render_template(settings, stack or build_stack(settings, account=account)))
        timeout_s = max(timeout_s, float(settings.policy.checkov.timeout_s))
    if not templates:
        return None
    stats: dict[str, int] = {}
    return CheckovBatch(len(templates), start_warm_cache(templates, cache_dir, timeout_s, stats=stats), stats)


def finish_checkov_batch(batch: CheckovBatch, console: Console) -> None:
    """Wait for the batch's answer (stored in the sweep's cache) and say what was scanned."""
    with console.status(f"checkov: scanning the resources of {batch.templates} templates in one batch"):
        batch.finish()
    stats = batch.stats
    if stats.get("resources") is not None:
        console.print(f"checkov: {stats['template_resources']} resources in {stats['templates']} distinct templates, "
                      f"{stats['resources']} scanned ({stats['parts']} parts holding each distinct resource once)",
                      markup=False)


def reused_sweep_dir(sweep_dir: Path) -> list[str]:
    """What a previous sweep left in ``sweep_dir`` (empty: the directory is fresh)."""
    if not sweep_dir.is_dir():
        return []
    return sorted(p.name for p in sweep_dir.iterdir()
                  if p.name in ("multirun.yaml", "sweep_summary.json", "sweep_summary.csv", CACHE_DIR_NAME)
                  or (p.is_dir() and p.name.isdigit()))


def _value(overrides: list[str], key: str) -> str:
    for override in overrides:
        name, _, value = override.partition("=")
        if name.lstrip("+~") == key:
            return value
    return ""


@lru_cache(maxsize=1)
def _parser() -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()  # ≈ 2 ms each: once per sweep, not per cell of the summary


def _typed(overrides: list[str], key: str) -> Any:
    """The value of ``key`` as Hydra parses it for the job (``2`` an int, ``true`` a bool, ``'2'`` a
    string); None if the job does not set it."""
    for override in overrides:
        if override.partition("=")[0].lstrip("+~") == key:
            return copy.deepcopy(_parsed_value(override))
    return None


@lru_cache(maxsize=4096)
def _parsed_value(override: str) -> Any:
    """Parsed once per distinct override (≈ 0.2 ms each: a 100-job sweep repeats a few values)."""
    try:
        return _parser().parse_override(override).value()
    except Exception:  # noqa: BLE001 - a value Hydra ran with parses; keep the text otherwise
        return override.partition("=")[2]


def summary_rows(sweep_dir: Path, jobs: list[list[str]] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per job, from each job's run.json, sorted by monthly cost at max capacity; and
    the keys that vary between jobs (the sweep's columns).

    ``jobs``: the sweep's job overrides; then only jobs 0..n-1 are read, and a job without a
    run.json is an error row. Without it, every ``<n>/run.json`` in the directory is a row."""
    records: list[tuple[str, dict[str, Any]]] = []
    if jobs is None:
        for path in sorted(sweep_dir.glob("*/run.json"), key=lambda p: _job_number(p.parent.name)):
            records.append((path.parent.name, json.loads(path.read_text())))
    else:
        for num, overrides in enumerate(jobs):
            path = sweep_dir / str(num) / "run.json"
            try:
                records.append((str(num), json.loads(path.read_text())))
            except (OSError, ValueError) as exc:
                reason = "wrote no run.json" if isinstance(exc, FileNotFoundError) else f"left an unreadable run.json ({exc})"
                records.append((str(num), {"overrides": list(overrides), "exit_code": EXIT_BAD_CONFIG,
                                           "error": f"error: the job {reason}: it did not finish"}))
    return rows_of(records)


def rows_of(records: list[tuple[str, dict[str, Any]]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The summary rows of (job, run record) pairs, and the swept keys (see ``summary_rows``)."""
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
        verdict = record.get("verdict") or (
            "error" if error else gate.get("verdict", "pass" if record.get("exit_code") == 0 else "fail"))
        row: dict[str, Any] = {"job": int(job) if job.isdigit() else job}
        row.update({key: _typed(record.get("overrides", []), key) for key in swept})
        row.update({
            "monthly_min_usd": cost.get("monthly_min"),
            "monthly_max_usd": cost.get("monthly_max"),
            "verdict": verdict,
            **{severity: counts.get(severity, 0) for severity in SEVERITY_COLUMNS},
            "top_finding": error or gate.get("top_finding") or record.get("note") or "",
            "exit_code": record.get("exit_code"),
        })
        for name, value in metrics.items():
            if isinstance(value, int | float):
                row[name] = value
        simulation = record.get("simulation") or {}
        if simulation:  # stage=simulate, or a gate with an SLO (issue 14)
            row.update({"slo_met": simulation.get("slo_met"), "p99_ms": simulation.get("p99_ms"),
                        "error_rate": simulation.get("error_rate"),
                        "simulated_monthly_usd": simulation.get("cost_usd_month"),
                        **{f"slo_{k}": v for k, v in (record.get("slo") or {}).items()}})
        rows.append(row)
    # Cheapest first: by the simulated month where there is one, else the plan's bound. Ties (e.g.
    # every row of a learning-rate sweep costs the same) keep the job order: 2 before 10.
    rows.sort(key=lambda r: (_monthly(r) is None, _monthly(r) or 0.0, r["monthly_min_usd"] or 0.0,
                             _job_number(r["job"])))
    recommended = recommendation(rows)
    if recommended is not None:
        recommended["recommended"] = True
    return rows, swept


def _monthly(row: dict[str, Any]) -> float | None:
    simulated = row.get("simulated_monthly_usd")
    return simulated if simulated is not None else row["monthly_max_usd"]


def recommendation(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The cheapest simulated row that meets its SLO (rows are sorted cheapest first); None
    without simulated rows with an SLO, or when none meets it."""
    return next((r for r in rows if r.get("slo_met") is True and r["verdict"] != "error"), None)


def why_not(row: dict[str, Any]) -> str:
    """Why a simulated row misses its SLO, in its own numbers."""
    reasons = []
    if row.get("slo_p99_ms") is not None and (row.get("p99_ms") or 0) > row["slo_p99_ms"]:
        reasons.append(f"p99 {row['p99_ms']:.0f} ms > {row['slo_p99_ms']:g} ms")
    if row.get("slo_error_rate") is not None and (row.get("error_rate") or 0) > row["slo_error_rate"]:
        reasons.append(f"errors {row['error_rate']:.2%} > {row['slo_error_rate']:.2%}")
    return ", ".join(reasons) or row["top_finding"] or row["verdict"]


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
    simulated = any(r.get("simulated_monthly_usd") is not None for r in rows)
    # A stage=simulate sweep runs no gate: no plan cost, no findings to show.
    gated = any(r["monthly_max_usd"] is not None or r["verdict"] == "error" for r in rows) or not simulated
    for column in ["job", *keys, *(["valid loss"] if trained else []),
                   *(["SLO", "p99 ms", "errors", "$/month simulated"] if simulated else []),
                   *(["$/month min", "$/month max"] if gated else []), "verdict",
                   *(["crit/high/med/low", "top finding"] if gated else [])]:
        table.add_column(column, overflow="fold")
    for row in rows:
        style = {"pass": "green", "fail": "red", "error": "magenta", NOT_RUN: "dim"}.get(row["verdict"], "")
        money = ["" if row[k] is None else f"{row[k]:,.2f}" for k in ("monthly_min_usd", "monthly_max_usd")]
        loss = validation_loss(row)
        # Values and findings are untrusted text (AWS messages hold [brackets]): never markup.
        table.add_row(str(row["job"]) + (" *" if row.get("recommended") else ""), *[escape(_fmt(row[k])) for k in keys],
                      *([f"{loss:.4f}" if loss is not None else ""] if trained else []),
                      *(_simulated_cells(row) if simulated else []), *(money if gated else []),
                      f"[{style}]{escape(row['verdict'])}[/]" if style else escape(row["verdict"]),
                      *(["/".join(str(row[s]) for s in SEVERITY_COLUMNS),
                         escape(_short(row["top_finding"])) if row["verdict"] not in ("pass", NOT_RUN) else ""]
                        if gated else []))
    console.print(table)
    not_run = sum(1 for r in rows if r["verdict"] == NOT_RUN)
    failing = sum(1 for r in rows if r["verdict"] not in ("pass", NOT_RUN))
    console.print(f"{len(rows) - failing - not_run} pass, {failing} fail"
                  + (f", {not_run} not run" if not_run else "")
                  + f"; {escape(str(sweep_dir / 'sweep_summary.csv'))} and sweep_summary.json written")
    _print_recommendation(console, rows, keys)
    best = best_by_validation_loss(rows)
    if best is not None:
        loss = validation_loss(best)
        console.print(escape(f"best by validation loss: job {best['job']} ({loss:.4f}): "
                             + ", ".join(f"{k}={_fmt(best[k])}" for k in keys)))


def _simulated_cells(row: dict[str, Any]) -> list[str]:
    if row.get("simulated_monthly_usd") is None:
        return ["", "", "", ""]
    met = {True: "met", False: "missed", None: "-"}[row.get("slo_met")]
    return [met, f"{row['p99_ms']:.0f}", f"{row['error_rate']:.2%}", f"{row['simulated_monthly_usd']:,.2f}"]


def _print_recommendation(console: Console, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """The cheapest row whose simulated day meets its SLO, and why each cheaper one does not."""
    if not any(r.get("slo_met") is not None for r in rows):
        return
    best = recommendation(rows)

    def named(row: dict[str, Any]) -> str:
        return f"job {row['job']} ({', '.join(f'{k}={_fmt(row[k])}' for k in keys)})"

    if best is None:
        console.print(escape("recommended: none - no combination meets its SLO"), soft_wrap=True)
    else:
        console.print(escape(f"recommended (*): {named(best)}, ${best['simulated_monthly_usd']:,.2f} a month, "
                             f"p99 {best['p99_ms']:.0f} ms, errors {best['error_rate']:.2%}"), soft_wrap=True)
    cheaper = rows[: rows.index(best)] if best is not None else rows
    for row in cheaper:
        if row.get("slo_met") is False:
            console.print(escape(f"  cheaper, but {named(row)}: {why_not(row)}"), soft_wrap=True)


def _short(finding: str) -> str:
    """Rule id and resource for the table; the CSV and JSON keep the whole message."""
    head, _, _ = finding.partition(":")
    return head if head and len(head) < 60 else finding[:60]


def _fmt(value: Any) -> str:
    """A swept value as it was written on the command line (``true``, ``0.01``, ``null``)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def sweep_exit_code(rows: list[dict[str, Any]]) -> int:
    if any(r["verdict"] == "error" for r in rows):
        return 2
    return 1 if any(r["verdict"] == "fail" or (r["exit_code"] or 0) != 0 for r in rows) else 0


# ---- how many jobs run at once ------------------------------------------------------------------

# Hydra's joblib launcher (conf/config.yaml): n_jobs=-1 is one job per core.
JOBLIB_ALL_CORES = -1
N_JOBS_KEY = "hydra.launcher.n_jobs"
# Stages that change a stack: two jobs changing the same stack on AWS at once would race.
CHANGING_STAGES = ("deploy", "destroy", "all")


def remote_work(settings: Settings) -> str | None:
    """Why this job's heavy work runs on AWS rather than on this machine (e.g. ``stage=deploy``);
    None when it runs here: everything on target=local (the emulator, local training, the local
    endpoint), checkov (stage=check, plan) and training with training.launcher=local. A remote job
    mostly waits (a SageMaker training or tuning job, an EC2 instance, a deploy's waiters)."""
    if settings.target.kind != "aws":
        return None
    stage = settings.stage
    if stage in ("deploy", "invoke", "destroy"):
        return f"stage={stage}"
    if stage in ("train", "all") and settings.training.launcher != "local":
        return f"stage={stage} " + ("hpo=sagemaker_tuner" if settings.hpo.enabled
                                    else f"training.launcher={settings.training.launcher}")
    return None


def check_sweep_level(jobs: list[Job]) -> None:
    """Settings that belong to the sweep, not to a job, must be the same in every job: a sweep
    over ``sweep.max_parallel`` makes every valid job an error (the sweep then stops, nothing run)."""
    values = {job.num: job.settings.sweep.max_parallel for job in jobs if job.settings is not None}
    if len(set(values.values())) < 2:
        return
    given = ", ".join(str(v) for v in sorted(set(values.values())))
    for job in jobs:
        if job.num in values and not job.error:
            job.error = (f"config error: sweep.max_parallel: {values[job.num]} here, but the sweep's jobs give "
                         f"{given}: it is one value for the whole sweep (how many remote jobs run at once), "
                         "set it once instead of sweeping over it")


@dataclass(frozen=True)
class Parallelism:
    n_jobs: int | None  # what to set hydra.launcher.n_jobs to; None: leave the launcher's value
    line: str  # the one line the sweep prints: how many jobs run at once, and why


def _effective(n_jobs: Any, cpus: int) -> int:
    """How many jobs joblib runs at once for ``n_jobs`` (negative: counted back from the cores)."""
    if not isinstance(n_jobs, int) or n_jobs == 0:
        return 1
    return n_jobs if n_jobs > 0 else max(1, cpus + 1 + n_jobs)


def parallelism(jobs: list[Job], launcher: Any, explicit: bool, cpus: int) -> Parallelism:
    """How many of the (valid) ``jobs`` run at once on ``launcher`` (the hydra.launcher config).

    - ``explicit`` (the user set hydra.launcher.n_jobs): that, whatever the jobs;
    - jobs that change the same stack on AWS (stage deploy, destroy or all): one at a time;
    - every job remote (see ``remote_work``): min(sweep.max_parallel, jobs), not limited by the
      cores, since the jobs mostly wait on AWS;
    - else (a job works on this machine, so a mixed sweep too): the launcher's n_jobs, one per core.
    """
    count = len(jobs)
    plural = "s" if count != 1 else ""
    n_jobs = launcher.get("n_jobs")
    if "n_jobs" not in launcher:  # not the joblib launcher
        target = str(launcher.get("_target_", ""))
        how = "one at a time" if target.endswith("BasicLauncher") else f"as its launcher ({target}) runs them"
        return Parallelism(None, f"sweep: {count} job{plural}, {how}")
    if explicit:
        at_once = min(count, _effective(n_jobs, cpus))
        return Parallelism(None, f"sweep: {count} job{plural}, {at_once} at once ({N_JOBS_KEY}={n_jobs})")
    settings = [job.settings for job in jobs if job.settings is not None]
    changed: dict[tuple[str, str, str | None], int] = {}
    for s in settings:
        if s.target.kind == "aws" and s.stage in CHANGING_STAGES:
            key = (s.name, s.target.region, s.target.profile)
            changed[key] = changed.get(key, 0) + 1
    shared = sorted({name for (name, _, _), n in changed.items() if n > 1})
    if shared:
        return Parallelism(1, f"sweep: {count} job{plural} change the same stack on AWS (name={', '.join(shared)}): "
                              "1 at a time (jobs of one stack never run at once)")
    reasons = [remote_work(s) for s in settings]
    remote = sorted({r for r in reasons if r is not None})
    if settings and all(reasons):
        at_once = min(count, settings[0].sweep.max_parallel)
        return Parallelism(at_once, f"sweep: {count} job{plural} run remotely (target=aws, {'; '.join(remote)}), "
                                    f"{at_once} at once (sweep.max_parallel={settings[0].sweep.max_parallel})")
    at_once = min(count, _effective(n_jobs, cpus))
    n_remote = sum(1 for r in reasons if r)
    where = (f"{n_remote} of {count} jobs run remotely and {count - n_remote} on this machine: all run as local jobs"
             if remote else f"{count} job{plural} run on this machine")
    why = f"one per core; {N_JOBS_KEY} to change it" if n_jobs == JOBLIB_ALL_CORES else f"{N_JOBS_KEY}={n_jobs}"
    return Parallelism(None, f"sweep: {where}, {at_once} at once ({why})")


def set_parallelism(config: DictConfig, jobs: list[Job], console: Console) -> Parallelism | None:
    """Decide how many jobs run at once, print it, and set it in ``config``'s hydra.launcher, from
    which Hydra instantiates the launcher after this callback (hydra/_internal/hydra.py, multirun).
    None for a config without a launcher (not Hydra's)."""
    import joblib

    launcher = OmegaConf.select(config, "hydra.launcher")
    if launcher is None:
        return None
    hydra_overrides = OmegaConf.select(config, "hydra.overrides.hydra") or []
    explicit = any(str(o).partition("=")[0].lstrip("+~") == N_JOBS_KEY for o in hydra_overrides) or (
        launcher.get("n_jobs", JOBLIB_ALL_CORES) != JOBLIB_ALL_CORES)
    decided = parallelism(jobs, launcher, explicit, joblib.cpu_count())
    if decided.n_jobs is not None:
        with open_dict(launcher):
            launcher.n_jobs = decided.n_jobs
    console.print(decided.line, markup=False, soft_wrap=True)
    return decided


class SweepSummary(Callback):
    """Registered under hydra.callbacks in conf/config.yaml."""

    _checkov: CheckovBatch | None = None  # started in on_multirun_start, finished in before_jobs

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        console = Console(highlight=False)
        left = reused_sweep_dir(sweep_dir)
        if left:
            # Its rows would be counted with this sweep's (and its job directories overwritten).
            console.print(escape(
                f"config error: hydra.sweep.dir={sweep_dir} already holds a sweep ({', '.join(left[:5])}"
                f"{', ...' if len(left) > 5 else ''}): give each sweep a fresh directory (the default, "
                "multirun/<date>/<time>-<stage>, is new for every sweep) or remove it first"), soft_wrap=True)
            raise RunExit(EXIT_BAD_CONFIG)
        jobs = check_jobs(sweep_job_overrides(config))
        check_sweep_level(jobs)
        invalid = [job for job in jobs if job.error]
        if invalid:
            stop_invalid_sweep(console, sweep_dir, jobs)
        from policies.checkov.process import discard_prestarted

        self._checkov = None
        try:
            self._checkov = start_checkov_batch(jobs, sweep_dir / CACHE_DIR_NAME)
        except Exception as exc:  # noqa: BLE001 - each job then runs (and reports) its own checkov
            _batch_failed(console, exc)
        finally:
            if self._checkov is None:
                discard_prestarted()  # main.py's early worker, if the batch did not take it
        set_parallelism(config, jobs, console)
        if OmegaConf.select(config, "hydra.sweeper._target_") != DEFERRING_SWEEPER:
            self.before_jobs(config)  # another sweeper: the jobs need the answer before they start

    def before_jobs(self, config: DictConfig, **kwargs: Any) -> None:
        """Called by sagegate's sweeper after its own set-up, before the first job starts
        (hydra_plugins/sagegate_sweeper): checkov has scanned the sweep's batch meanwhile; wait for
        its answer and store it where each job's gate reads it."""
        batch, self._checkov = self._checkov, None
        if batch is None:
            return
        console = Console(highlight=False)
        try:
            finish_checkov_batch(batch, console)
        except Exception as exc:  # noqa: BLE001 - each job then runs (and reports) its own checkov
            _batch_failed(console, exc)
        else:
            console.print(f"checkov: {batch.templates} templates scanned once for the whole sweep")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.before_jobs(config)  # a sweeper that never started its jobs leaves no worker behind
        sweep_dir = Path(config.hydra.sweep.dir)
        task = OmegaConf.select(config, "hydra.overrides.task")
        rows, keys = summary_rows(sweep_dir, sweep_job_overrides(config) if task is not None else None)
        write_summary(sweep_dir, rows)
        print_summary(Console(highlight=False), rows, keys, sweep_dir)
        code = sweep_exit_code(rows)
        if code:
            raise RunExit(code)


def _batch_failed(console: Console, exc: Exception) -> None:
    console.print(escape(f"checkov batch for the sweep failed, jobs will scan one by one: {exc}"), soft_wrap=True)


def stop_invalid_sweep(console: Console, sweep_dir: Path, jobs: list[Job]) -> None:
    """List every invalid job, write the summary (invalid jobs ``error``, the others ``not run``)
    and exit 2: no job of the sweep runs."""
    invalid = [job for job in jobs if job.error]
    console.print(f"[bold red]sweep not started:[/] {len(invalid)} of {len(jobs)} jobs have an invalid config; "
                  "no job ran", soft_wrap=True)
    for job in invalid:
        console.print(escape(f"  job {job.num} ({' '.join(job.overrides)}): {job.error}"), soft_wrap=True)
    note = f"not run: {len(invalid)} job(s) of the sweep are invalid"
    records = [(str(job.num), {"overrides": job.overrides, "error": job.error, "exit_code": EXIT_BAD_CONFIG}
                if job.error else {"overrides": job.overrides, "verdict": NOT_RUN, "note": note, "exit_code": None})
               for job in jobs]
    rows, _ = rows_of(records)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_summary(sweep_dir, rows)
    console.print(escape(f"{sweep_dir / 'sweep_summary.csv'} and sweep_summary.json written"), soft_wrap=True)
    raise RunExit(EXIT_BAD_CONFIG)
