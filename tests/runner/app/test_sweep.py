"""Sweeps (runner/app/sweep.py): the jobs Hydra will run, one summary row per job's run.json,
cheapest first, the summary files, the best trained row, the sweep's exit code, and the callback."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

import hydra_plugins.sagegate_sweeper as sweeper_plugin  # by attribute: Hydra's plugin scan reloads it
import policies.checkov.runner as checkov_runner
from hydra_plugins.sagegate_sweeper import record_failure
from runner.app.sweep import (
    CACHE_DIR_NAME,
    DEFERRING_SWEEPER,
    SweepSummary,
    best_by_validation_loss,
    check_jobs,
    checkov_cache_dir,
    finish_checkov_batch,
    job_overrides,
    print_summary,
    reused_sweep_dir,
    start_checkov_batch,
    summary_rows,
    sweep_exit_code,
    write_summary,
)
from runner.core.errors import RunExit

COUNTS_PASS = {"critical": 0, "high": 0, "medium": 0, "low": 1, "info": 0}
TOP = "SG-COST-002 EndpointConfig: ml.g4dn.xlarge x 2 costs $1,500.00/month at max capacity"


def _record(overrides: list[str], *, cost: tuple[float, float] | None, verdict: str | None = "pass",
            exit_code: int = 0, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"stage": "plan", "overrides": overrides, "exit_code": exit_code, **extra}
    if cost is not None:
        record["cost"] = {"monthly_min": cost[0], "monthly_max": cost[1], "price_snapshot": "us-east-1 2026-10-01"}
    if verdict is not None:
        counts = COUNTS_PASS if verdict == "pass" else {**COUNTS_PASS, "high": 1}
        record["gate"] = {"verdict": verdict, "fail_on": "high", "counts": counts,
                          "top_finding": "SG-HARD-001 EndpointConfig: AWS-managed key" if verdict == "pass" else TOP}
    return record


def _write_jobs(sweep_dir: Path, records: dict[str, dict[str, Any]]) -> Path:
    for job, record in records.items():
        (sweep_dir / job).mkdir(parents=True)
        (sweep_dir / job / "run.json").write_text(json.dumps(record))
    return sweep_dir


@pytest.fixture
def plan_sweep(tmp_path: Path) -> Path:
    """A finished `-m stage=plan endpoint.variants.AllTraffic.instance_type=... autoscaling.max_capacity=...` sweep."""
    sweep = _write_jobs(tmp_path / "sweep", {
        "0": _record(["stage=plan", "endpoint.variants.AllTraffic.instance_type=ml.m5.large", "autoscaling.max_capacity=2"],
                     cost=(83.95, 167.9)),
        "1": _record(["stage=plan", "endpoint.variants.AllTraffic.instance_type=ml.g4dn.xlarge", "autoscaling.max_capacity=2"],
                     cost=(750.0, 1500.0), verdict="fail", exit_code=1),
        "2": _record(["stage=plan", "endpoint.variants.AllTraffic.instance_type=ml.c5.xlarge", "autoscaling.max_capacity=4"],
                     cost=(148.92, 595.68)),
        "3": _record(["stage=plan", "endpoint.variants.AllTraffic.instance_type=ml.m5.large", "autoscaling.max_capacity=99"],
                     cost=None, verdict=None, exit_code=2,
                     error="config error: autoscaling.max_capacity: 99 must be <= 10"),
    })
    (sweep / CACHE_DIR_NAME).mkdir()  # the sweep's checkov cache holds no run.json
    (sweep / "4").mkdir()  # a job that crashed before writing run.json
    return sweep


# ---- job_overrides -----------------------------------------------------------------------------------

def test_job_overrides_expand_like_the_basic_sweeper():
    assert job_overrides(["a=1,2", "b=x,y"]) == [["a=1", "b=x"], ["a=1", "b=y"], ["a=2", "b=x"], ["a=2", "b=y"]]


def test_job_overrides_without_a_sweep_is_one_job_and_ranges_expand():
    assert job_overrides(["stage=check", "+tags.team=ml"]) == [["stage=check", "+tags.team=ml"]]
    assert job_overrides(["training.epochs=range(1,4)"]) == [[f"training.epochs={n}"] for n in (1, 2, 3)]


def test_checkov_cache_dir_is_none_outside_a_multirun():
    assert checkov_cache_dir() is None


# ---- summary_rows ------------------------------------------------------------------------------------

def test_rows_are_cheapest_first_with_errors_last(plan_sweep: Path):
    rows, _ = summary_rows(plan_sweep)
    assert [r["job"] for r in rows] == [0, 2, 1, 3]
    assert [r["monthly_max_usd"] for r in rows] == [167.9, 595.68, 1500.0, None]


def test_the_columns_are_the_keys_that_vary(plan_sweep: Path):
    rows, keys = summary_rows(plan_sweep)
    assert keys == ["endpoint.variants.AllTraffic.instance_type", "autoscaling.max_capacity"]
    assert all("stage" not in row for row in rows)
    cheapest = rows[0]
    assert cheapest == {
        "job": 0, "endpoint.variants.AllTraffic.instance_type": "ml.m5.large", "autoscaling.max_capacity": 2,
        "monthly_min_usd": 83.95, "monthly_max_usd": 167.9, "verdict": "pass",
        "critical": 0, "high": 0, "medium": 0, "low": 1,
        "top_finding": "SG-HARD-001 EndpointConfig: AWS-managed key", "exit_code": 0,
    }


def test_failing_and_erroring_rows_are_marked(plan_sweep: Path):
    rows, _ = summary_rows(plan_sweep)
    by_job = {r["job"]: r for r in rows}
    assert (by_job[1]["verdict"], by_job[1]["high"], by_job[1]["top_finding"], by_job[1]["exit_code"]) == (
        "fail", 1, TOP, 1)
    error = by_job[3]
    assert error["verdict"] == "error" and error["exit_code"] == 2
    assert error["top_finding"] == "config error: autoscaling.max_capacity: 99 must be <= 10"
    assert error["monthly_min_usd"] is None and [error[s] for s in ("critical", "high", "medium", "low")] == [0] * 4


def test_a_job_without_a_gate_is_judged_by_its_exit_code(tmp_path: Path):
    sweep = _write_jobs(tmp_path, {
        "0": _record(["stage=destroy", "name=a"], cost=None, verdict=None, exit_code=0),
        "1": _record(["stage=destroy", "name=b"], cost=None, verdict=None, exit_code=1),
    })
    rows, keys = summary_rows(sweep)
    assert keys == ["name"]
    assert {r["name"]: r["verdict"] for r in rows} == {"a": "pass", "b": "fail"}


def test_added_and_forced_keys_are_named_without_their_prefix(tmp_path: Path):
    sweep = _write_jobs(tmp_path, {
        "0": _record(["+tags.owner=ana", "++quiet=true"], cost=(1, 2)),
        "1": _record(["+tags.owner=bo", "++quiet=true"], cost=(1, 3)),
    })
    rows, keys = summary_rows(sweep)
    assert keys == ["tags.owner"]
    assert [r["tags.owner"] for r in rows] == ["ana", "bo"]


def test_numeric_training_metrics_become_columns(tmp_path: Path):
    metrics = {"best_valid_loss": 0.25, "test_accuracy": 0.97, "best_epoch": 3, "device": "cpu"}
    sweep = _write_jobs(tmp_path, {"0": _record(["training.learning_rate=0.01"], cost=(1, 1),
                                                training={"launcher": "local", "metrics": metrics})})
    [row] = summary_rows(sweep)[0]
    assert (row["best_valid_loss"], row["test_accuracy"], row["best_epoch"]) == (0.25, 0.97, 3)
    assert "device" not in row


def test_ties_in_cost_are_broken_by_min_cost(tmp_path: Path):
    sweep = _write_jobs(tmp_path, {
        "0": _record(["function.provisioned_concurrency=4"], cost=(30.0, 200.0)),
        "1": _record(["function.provisioned_concurrency=0"], cost=(10.0, 200.0)),
    })
    assert [r["job"] for r in summary_rows(sweep)[0]] == [1, 0]


def test_rows_of_equal_cost_keep_the_job_order(tmp_path: Path):
    sweep = _write_jobs(tmp_path, {str(n): _record([f"training.learning_rate={n}"], cost=(89.43, 257.33))
                                   for n in range(12)})
    assert [r["job"] for r in summary_rows(sweep)[0]] == list(range(12))


def test_an_empty_sweep_has_no_rows(tmp_path: Path):
    assert summary_rows(tmp_path) == ([], [])


# ---- sweep_exit_code ---------------------------------------------------------------------------------

def _row(verdict: str, exit_code: int | None = 0) -> dict[str, Any]:
    return {"verdict": verdict, "exit_code": exit_code}


@pytest.mark.parametrize("rows, code", [
    ([], 0),
    ([_row("pass"), _row("pass")], 0),
    ([_row("pass", None)], 0),
    ([_row("pass"), _row("fail", 1)], 1),
    # The gate passed but the job still failed (e.g. the smoke test): the sweep fails too.
    ([_row("pass", 1)], 1),
    ([_row("fail", 1), _row("error", 2), _row("pass")], 2),
])
def test_sweep_exit_code(rows, code):
    assert sweep_exit_code(rows) == code


def test_the_plan_sweep_exits_2_for_its_error(plan_sweep: Path):
    assert sweep_exit_code(summary_rows(plan_sweep)[0]) == 2


# ---- write_summary -----------------------------------------------------------------------------------

def test_write_summary_csv_and_json(plan_sweep: Path):
    rows, keys = summary_rows(plan_sweep)
    rows[0]["best_valid_loss"] = 0.5  # a column only one row has
    write_summary(plan_sweep, rows)
    assert json.loads((plan_sweep / "sweep_summary.json").read_text()) == rows
    with (plan_sweep / "sweep_summary.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        table = list(reader)
    assert reader.fieldnames == ["job", *keys, "monthly_min_usd", "monthly_max_usd", "verdict", "critical", "high",
                                 "medium", "low", "top_finding", "exit_code", "best_valid_loss"]
    assert [r["job"] for r in table] == ["0", "2", "1", "3"]
    assert table[0]["best_valid_loss"] == "0.5" and table[1]["best_valid_loss"] == ""
    assert table[2]["top_finding"] == TOP  # the whole message, commas included
    assert table[3]["monthly_max_usd"] == "" and table[3]["verdict"] == "error"


def test_write_summary_of_no_rows(tmp_path: Path):
    write_summary(tmp_path, [])
    assert json.loads((tmp_path / "sweep_summary.json").read_text()) == []
    assert (tmp_path / "sweep_summary.csv").exists()


# ---- best_by_validation_loss -------------------------------------------------------------------------

def test_best_by_validation_loss_is_the_lowest():
    rows = [{"job": 0, "best_valid_loss": 0.4}, {"job": 1, "best_valid_loss": 0.0}, {"job": 2, "valid_loss": 0.2}]
    best = best_by_validation_loss(rows)
    assert best is not None and best["job"] == 1


def test_best_valid_loss_comes_before_the_last_epochs_loss():
    rows = [{"job": 0, "best_valid_loss": 0.3, "valid_loss": 0.1}, {"job": 1, "validation_loss": 0.2}]
    best = best_by_validation_loss(rows)
    assert best is not None and best["job"] == 1


def test_no_trained_row_has_no_best():
    assert best_by_validation_loss([{"job": 0, "monthly_max_usd": 1.0}, {"job": 1, "valid_loss": "n/a"}]) is None
    assert best_by_validation_loss([]) is None


# ---- print_summary ----------------------------------------------------------------------------------

def _printed(rows: list[dict[str, Any]], keys: list[str], sweep_dir: Path) -> str:
    console = Console(record=True, width=200, highlight=False)
    print_summary(console, rows, keys, sweep_dir)
    return console.export_text()


def _table_row(text: str, job: int) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(f"│ {job} "))
    return [cell.strip() for cell in line.strip("│").split("│")]


def test_print_summary_one_row_per_job_and_the_count(plan_sweep: Path):
    rows, keys = summary_rows(plan_sweep)
    text = _printed(rows, keys, plan_sweep)
    assert "sweep: 4 combinations, cheapest first" in text
    assert _table_row(text, 0) == ["0", "ml.m5.large", "2", "83.95", "167.90", "pass", "0/0/0/1", ""]
    # A failing row shows its rule and resource; the CSV and JSON keep the whole message.
    assert _table_row(text, 1) == ["1", "ml.g4dn.xlarge", "2", "750.00", "1,500.00", "fail", "0/1/0/1",
                                   "SG-COST-002 EndpointConfig"]
    assert _table_row(text, 3)[3:6] == ["", "", "error"]
    assert f"2 pass, 2 fail; {plan_sweep / 'sweep_summary.csv'} and sweep_summary.json written" in text
    assert "valid loss" not in text and "best by validation loss" not in text


def test_print_summary_of_a_train_sweep_names_the_best_row(tmp_path: Path):
    rows = [
        {"job": 0, "training.learning_rate": "0.01", "monthly_min_usd": 1.0, "monthly_max_usd": 2.0, "verdict": "pass",
         "critical": 0, "high": 0, "medium": 0, "low": 0, "top_finding": "", "exit_code": 0, "best_valid_loss": 0.5},
        {"job": 1, "training.learning_rate": "0.001", "monthly_min_usd": 1.0, "monthly_max_usd": 2.0, "verdict": "pass",
         "critical": 0, "high": 0, "medium": 0, "low": 0, "top_finding": "", "exit_code": 0, "best_valid_loss": 0.25},
    ]
    text = _printed(rows, ["training.learning_rate"], tmp_path)
    assert "valid loss" in text
    assert _table_row(text, 1)[:3] == ["1", "0.001", "0.2500"]
    assert "best by validation loss: job 1 (0.2500): training.learning_rate=0.001" in text


def test_print_summary_without_rows(tmp_path: Path):
    assert _printed([], [], tmp_path).strip() == "sweep: no job wrote a run.json"


# ---- the Hydra callback ------------------------------------------------------------------------------

def test_on_multirun_end_writes_the_summary_and_sets_the_exit_code(plan_sweep: Path, capsys):
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(plan_sweep)}}})
    with pytest.raises(RunExit) as exited:
        SweepSummary().on_multirun_end(config)
    assert exited.value.code == 2
    assert len(json.loads((plan_sweep / "sweep_summary.json").read_text())) == 4
    assert "sweep: 4 combinations" in capsys.readouterr().out


def test_on_multirun_end_of_a_passing_sweep_does_not_exit(tmp_path: Path):
    sweep = _write_jobs(tmp_path, {"0": _record(["a=1"], cost=(1, 2)), "1": _record(["a=2"], cost=(1, 2))})
    SweepSummary().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    assert [r["verdict"] for r in json.loads((sweep / "sweep_summary.json").read_text())] == ["pass", "pass"]


@pytest.fixture
def warmed(monkeypatch) -> list[tuple[list[dict[str, Any]], Path, float]]:
    """Record the one checkov batch instead of running checkov."""
    calls: list[tuple[list[dict[str, Any]], Path, float]] = []

    def start_warm_cache(templates, cache_dir, timeout_s, **_):
        calls.append((list(templates), Path(cache_dir), timeout_s))
        return dict  # what finishing the batch returns: no scans

    monkeypatch.setattr(checkov_runner, "start_warm_cache", start_warm_cache)
    return calls


def test_the_batch_holds_every_valid_job_once(tmp_path: Path, warmed):
    # function.provisioned_concurrency=9 is over the reserved 5: that job reports its own config error.
    jobs = check_jobs(job_overrides(["stage=check", "autoscaling.max_capacity=2,3", "function.provisioned_concurrency=1,9"]))
    batch = start_checkov_batch(jobs, tmp_path / CACHE_DIR_NAME)
    assert batch is not None and batch.templates == 2
    finish_checkov_batch(batch, Console(record=True, width=200))
    [(templates, cache_dir, timeout_s)] = warmed
    assert cache_dir == tmp_path / CACHE_DIR_NAME and timeout_s >= 600
    capacities = sorted(t["Resources"]["ScalableTarget"]["Properties"]["MaxCapacity"] for t in templates)
    assert capacities == [2, 3]
    assert all("checkov_params" in t["Metadata"]["sagegate"] for t in templates)


def test_no_batch_when_no_job_runs_checkov(tmp_path: Path, warmed):
    jobs = check_jobs(job_overrides(["policy.checkov.enabled=false", "autoscaling.max_capacity=2,3"]))
    assert start_checkov_batch(jobs, tmp_path / CACHE_DIR_NAME) is None and warmed == []


def _batch_sweep(tmp_path: Path, sweeper: str | None = None) -> DictConfig:
    hydra: dict[str, Any] = {"sweep": {"dir": str(tmp_path)},
                             "overrides": {"task": ["stage=check", "autoscaling.max_capacity=2,3"]}}
    if sweeper is not None:
        hydra["sweeper"] = {"_target_": sweeper}
    return OmegaConf.create({"hydra": hydra})


def test_on_multirun_start_reports_the_batch(tmp_path: Path, warmed, capsys):
    SweepSummary().on_multirun_start(_batch_sweep(tmp_path))
    assert "checkov: 2 templates scanned once for the whole sweep" in capsys.readouterr().out
    assert warmed[0][1] == tmp_path / CACHE_DIR_NAME


def test_with_sagegates_sweeper_the_batch_is_finished_before_the_first_job(tmp_path: Path, monkeypatch, capsys):
    """on_multirun_start hands the batch to checkov and returns; the sweeper, once set up, calls
    before_jobs, which waits for the answer; the jobs start after it."""
    finished: list[str] = []

    def start_warm_cache(templates, cache_dir, timeout_s, **_):
        return lambda: finished.append("finished") or {}

    monkeypatch.setattr(checkov_runner, "start_warm_cache", start_warm_cache)
    summary = SweepSummary()
    summary.on_multirun_start(_batch_sweep(tmp_path, DEFERRING_SWEEPER))
    assert finished == [] and "scanned once" not in capsys.readouterr().out
    summary.before_jobs(config=_batch_sweep(tmp_path, DEFERRING_SWEEPER))
    assert finished == ["finished"]
    assert "checkov: 2 templates scanned once for the whole sweep" in capsys.readouterr().out
    summary.before_jobs(config=_batch_sweep(tmp_path, DEFERRING_SWEEPER))  # once only
    assert finished == ["finished"]


def test_the_sweeper_calls_before_jobs_on_the_callbacks_that_have_it():
    calls: list[Any] = []

    class Callbacks:
        callbacks = [object(), type("WithBefore", (), {"before_jobs": lambda self, config: calls.append(config)})()]

    sweeper_ = sweeper_plugin.PrevalidatedSweeper(max_batch_size=None)
    sweeper_.hydra_context = HydraContext(config_loader=None, callbacks=Callbacks())  # type: ignore[arg-type]
    sweeper_.config = OmegaConf.create({"a": 1})
    sweeper_._before_jobs()
    assert calls == [sweeper_.config]


def test_a_failed_batch_leaves_each_job_to_scan_alone(tmp_path: Path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("checkov is not installed")

    monkeypatch.setattr(checkov_runner, "start_warm_cache", broken)
    SweepSummary().on_multirun_start(_batch_sweep(tmp_path))  # does not raise
    out = " ".join(capsys.readouterr().out.split())  # the console wraps at the terminal's width
    assert "checkov batch for the sweep failed, jobs will scan one by one: checkov is not installed" in out


def test_a_batch_whose_answer_fails_leaves_each_job_to_scan_alone(tmp_path: Path, monkeypatch, capsys):
    def start_warm_cache(*args, **kwargs):
        def finish():
            raise RuntimeError("checkov timed out after 600 s")
        return finish

    monkeypatch.setattr(checkov_runner, "start_warm_cache", start_warm_cache)
    summary = SweepSummary()
    summary.on_multirun_start(_batch_sweep(tmp_path, DEFERRING_SWEEPER))
    summary.before_jobs(config=_batch_sweep(tmp_path, DEFERRING_SWEEPER))  # does not raise
    out = " ".join(capsys.readouterr().out.split())
    assert "checkov batch for the sweep failed, jobs will scan one by one: checkov timed out after 600 s" in out


# ---- checked before the first job; typed values; this sweep's jobs only ------------------------------

def _sweep_config(sweep_dir: Path, task: list[str]) -> Any:
    return OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}, "overrides": {"task": task}}})


def test_check_jobs_lists_every_invalid_job_with_its_key():
    jobs = check_jobs(job_overrides(["stage=check", "endpoint=nosuch,realtime", "function.provisioned_concurrency=1,9"]))
    assert [(j.num, j.error is None) for j in jobs] == [(0, False), (1, False), (2, True), (3, False)]
    assert jobs[0].error is not None and jobs[0].error.startswith("config error: endpoint: ")
    assert "Could not find 'endpoint/nosuch'" in jobs[0].error and "Config search path" not in jobs[0].error
    assert jobs[3].error is not None and jobs[3].error.startswith("config error: function.provisioned_concurrency: ")
    assert jobs[2].settings is not None and jobs[2].stack is not None


def test_a_key_typo_is_a_job_error_naming_it():
    [job] = check_jobs([["stage=check", "autoscaling.max_capacityy=3"]])
    assert job.error is not None and "autoscaling.max_capacityy" in job.error


def test_an_invalid_job_stops_the_sweep_before_anything_runs(tmp_path: Path, warmed, capsys):
    sweep = tmp_path / "sweep"
    config = _sweep_config(sweep, ["stage=deploy", "function.provisioned_concurrency=1,9", "endpoint=realtime,nosuch"])
    with pytest.raises(RunExit) as exited:
        SweepSummary().on_multirun_start(config)
    assert exited.value.code == 2
    assert warmed == []  # not even checkov ran
    out = " ".join(capsys.readouterr().out.split())
    assert "sweep not started: 3 of 4 jobs have an invalid config; no job ran" in out
    assert "job 1 (stage=deploy function.provisioned_concurrency=1 endpoint=nosuch): config error: endpoint:" in out
    assert "job 2 (stage=deploy function.provisioned_concurrency=9 endpoint=realtime): config error: " \
           "function.provisioned_concurrency:" in out
    assert "job 3 " in out
    rows = json.loads((sweep / "sweep_summary.json").read_text())
    assert {r["job"]: r["verdict"] for r in rows} == {0: "not run", 1: "error", 2: "error", 3: "error"}
    assert sorted(p.name for p in sweep.iterdir()) == ["sweep_summary.csv", "sweep_summary.json"]


def test_a_reused_sweep_dir_is_refused(tmp_path: Path, warmed, capsys):
    _write_jobs(tmp_path, {"0": _record(["a=1"], cost=(1, 2))})
    assert reused_sweep_dir(tmp_path) == ["0"]
    with pytest.raises(RunExit) as exited:
        SweepSummary().on_multirun_start(_sweep_config(tmp_path, ["stage=check"]))
    assert exited.value.code == 2
    out = " ".join(capsys.readouterr().out.split())
    assert f"hydra.sweep.dir={tmp_path} already holds a sweep (0)" in out
    assert warmed == []


def test_a_fresh_or_empty_sweep_dir_is_fine(tmp_path: Path):
    assert reused_sweep_dir(tmp_path) == [] and reused_sweep_dir(tmp_path / "new") == []
    (tmp_path / ".hydra").mkdir()  # not a sweep's
    assert reused_sweep_dir(tmp_path) == []


def test_swept_values_keep_their_types(tmp_path: Path):
    sweep = _write_jobs(tmp_path, {
        "0": _record(["autoscaling.max_capacity=2", "quiet=true", "training.learning_rate=0.01", "name='7'",
                      "image=null"], cost=(1, 2)),
        "1": _record(["autoscaling.max_capacity=3", "quiet=false", "training.learning_rate=1e-3", "name=b",
                      "image=x.png"], cost=(1, 3)),
    })
    rows, keys = summary_rows(sweep)
    write_summary(sweep, rows)
    stored = json.loads((sweep / "sweep_summary.json").read_text())
    assert [{k: r[k] for k in keys} for r in stored] == [
        {"autoscaling.max_capacity": 2, "quiet": True, "training.learning_rate": 0.01, "name": "7", "image": None},
        {"autoscaling.max_capacity": 3, "quiet": False, "training.learning_rate": 0.001, "name": "b", "image": "x.png"},
    ]
    assert _table_row(_printed(rows, keys, sweep), 0)[1:6] == ["2", "true", "0.01", "7", "null"]


def test_only_this_sweeps_jobs_are_rows_and_a_missing_run_json_is_an_error(tmp_path: Path):
    sweep = _write_jobs(tmp_path, {"0": _record(["a=1"], cost=(1, 2)), "7": _record(["a=9"], cost=(1, 2))})
    rows, _ = summary_rows(sweep, [["a=1"], ["a=2"]])
    assert [(r["job"], r["verdict"]) for r in rows] == [(0, "pass"), (1, "error")]
    assert rows[1]["a"] == 2 and "wrote no run.json" in rows[1]["top_finding"]
    assert sweep_exit_code(rows) == 2


def test_a_job_that_raised_is_an_error_row_with_its_traceback_kept(tmp_path: Path):
    try:
        raise KeyError("boom")
    except KeyError as exc:
        record_failure(tmp_path / "0", ["a=1"], exc)
    record_failure(tmp_path / "1", ["a=2"], RuntimeError("late"))
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "run.json").write_text(json.dumps(_record(["a=3"], cost=None, verdict=None, exit_code=2,
                                                                error="error: RuntimeError: own")))
    record_failure(tmp_path / "2", ["a=3"], RuntimeError("ignored"))  # the job's own record stays
    assert "KeyError: 'boom'" in (tmp_path / "0" / "traceback.txt").read_text()
    rows, _ = summary_rows(tmp_path, [["a=1"], ["a=2"], ["a=3"]])
    by_job = {r["job"]: r for r in rows}
    assert by_job[0]["verdict"] == "error" and by_job[0]["top_finding"].startswith("error: KeyError: 'boom'")
    assert by_job[1]["top_finding"].startswith("error: RuntimeError: late")
    assert by_job[2]["top_finding"] == "error: RuntimeError: own"


def test_on_multirun_end_summarises_this_sweeps_jobs(tmp_path: Path, capsys):
    sweep = _write_jobs(tmp_path, {"0": _record(["a=1"], cost=(1, 2))})
    with pytest.raises(RunExit) as exited:
        SweepSummary().on_multirun_end(_sweep_config(sweep, ["a=1,2"]))
    assert exited.value.code == 2
    assert [r["verdict"] for r in json.loads((sweep / "sweep_summary.json").read_text())] == ["pass", "error"]
    assert "1 pass, 1 fail" in capsys.readouterr().out


def test_untrusted_text_is_not_console_markup(tmp_path: Path):
    sweep = _write_jobs(tmp_path, {
        "0": _record(["a='[bold]'"], cost=None, verdict=None, exit_code=2, error="enum value set [ml.t2.medium]"),
        "1": _record(["a=y"], cost=(1, 2)),
    })
    rows, keys = summary_rows(sweep)
    assert _table_row(_printed(rows, keys, sweep), 0)[1] == "[bold]"
    assert _table_row(_printed(rows, keys, sweep), 0)[-1] == "enum value set [ml.t2.medium]"
