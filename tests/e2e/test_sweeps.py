"""Hydra sweeps: one row per combination, one summary, the sweep's exit code."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from e2e_helpers import REPO, clean_env

pytestmark = pytest.mark.e2e


def test_plan_sweep_summarises_cost_and_verdict(run_main, tmp_path: Path) -> None:
    result = run_main("-m", "stage=plan", "endpoint.variants.AllTraffic.instance_type=ml.m5.large,ml.c5.xlarge,ml.g4dn.xlarge",
                      "autoscaling.max_capacity=2,4", "function.provisioned_concurrency=0,2",
                      f"hydra.sweep.dir={tmp_path}")
    # ml.g4dn.xlarge x 4 is over the endpoint budget: that row fails the gate, so the sweep does.
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    rows = json.loads((tmp_path / "sweep_summary.json").read_text())
    assert len(rows) == 12
    costs = [r["monthly_max_usd"] for r in rows]
    assert costs == sorted(costs)
    for row in rows:
        assert set(row) >= {"endpoint.variants.AllTraffic.instance_type", "autoscaling.max_capacity", "function.provisioned_concurrency",
                            "monthly_min_usd", "monthly_max_usd", "verdict", "high", "top_finding"}
    failing = [r for r in rows if r["verdict"] == "fail"]
    assert failing and all(r["endpoint.variants.AllTraffic.instance_type"] == "ml.g4dn.xlarge" for r in failing)
    assert all(r["top_finding"].startswith("SG-") for r in failing)
    m5 = next(r for r in rows if r["endpoint.variants.AllTraffic.instance_type"] == "ml.m5.large" and r["autoscaling.max_capacity"] == 4
              and r["function.provisioned_concurrency"] == 0)
    assert m5["monthly_max_usd"] == round(0.115 * 4 * 730, 2) and m5["verdict"] == "pass"
    with (tmp_path / "sweep_summary.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 12
    assert "sweep: 12 combinations" in result.stdout


def test_check_sweep_runs_checkov_once_and_passes(run_main, tmp_path: Path) -> None:
    result = run_main("-m", "stage=check", "autoscaling.max_capacity=2,3", "function.provisioned_concurrency=1,2",
                      f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "checkov: 4 templates scanned once for the whole sweep" in result.stdout
    # Each job took its checkov answer from the sweep's cache.
    assert len(list((tmp_path / ".checkov-cache").glob("*.json"))) == 4
    rows = json.loads((tmp_path / "sweep_summary.json").read_text())
    assert [r["verdict"] for r in rows] == ["pass"] * 4
    for job in range(4):
        report = json.loads((tmp_path / str(job) / "policy" / "report.json").read_text())
        assert report["checkov"]["ran"] is True


def test_bad_value_in_a_sweep_exits_2(run_main, tmp_path: Path) -> None:
    result = run_main("-m", "stage=check", "function.provisioned_concurrency=2,9", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 2
    rows = json.loads((tmp_path / "sweep_summary.json").read_text())
    error = next(r for r in rows if r["verdict"] == "error")
    assert "function.provisioned_concurrency" in error["top_finding"]


def test_train_sweep_reports_the_best_row_by_validation_loss(run_main, tmp_path: Path) -> None:
    result = run_main("-m", "stage=train", "training.epochs=1", "training.learning_rate=0.002,0.0001", "quiet=true",
                      f"workdir={tmp_path / 'work'}", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    rows = json.loads((tmp_path / "sweep" / "sweep_summary.json").read_text())
    assert len(rows) == 2 and all("best_valid_loss" in r for r in rows)
    best = min(rows, key=lambda r: r["best_valid_loss"])
    assert f"best by validation loss: job {best['job']}" in result.stdout


def test_an_invalid_job_stops_a_deploy_sweep_before_anything_runs(run_main, tmp_path: Path) -> None:
    sweep, work = tmp_path / "sweep", tmp_path / "work"
    result = run_main("-m", "stage=deploy", "function.provisioned_concurrency=1,9", "endpoint=realtime,nosuch",
                      f"workdir={work}", f"hydra.sweep.dir={sweep}")
    out = " ".join(result.stdout.split())
    assert result.returncode == 2, out[-3000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert "sweep not started: 3 of 4 jobs have an invalid config; no job ran" in out
    for job, key in ((1, "endpoint"), (2, "function.provisioned_concurrency"), (3, "endpoint")):
        assert f"job {job} (stage=deploy " in out and f"config error: {key}:" in out
    # Nothing ran: no job directory, no trained model, no emulator state, no data set.
    assert not work.exists()
    assert sorted(p.name for p in sweep.iterdir()) == ["sweep_summary.csv", "sweep_summary.json"]
    rows = json.loads((sweep / "sweep_summary.json").read_text())
    assert sorted((r["job"], r["verdict"]) for r in rows) == [(0, "not run"), (1, "error"), (2, "error"), (3, "error")]


def test_a_group_typo_exits_2_with_one_clean_message(run_main, tmp_path: Path) -> None:
    result = run_main("-m", "stage=check", "endpoint=nosuch,serverless", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    out = " ".join(result.stdout.split())
    assert "job 0 (stage=check endpoint=nosuch): config error: endpoint: In 'config': Could not find 'endpoint/nosuch'" in out
    assert (tmp_path / "sweep_summary.json").exists() and not (tmp_path / "1").exists()


def test_a_job_that_raises_is_an_error_row(run_main, tmp_path: Path) -> None:
    # A sitecustomize (loaded by the sweep and by every job process) makes one job's plan raise.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import runner.app.stages as stages\n"
        "plan = stages.STAGES['plan']\n"
        "def boom(context):\n"
        "    if context.settings.autoscaling.max_capacity == 3:\n"
        "        raise RuntimeError('late failure [x]')\n"
        "    return plan(context)\n"
        "stages.STAGES['plan'] = boom\n")
    env = clean_env(PYTHONPATH=os.pathsep.join([str(hook), str(REPO)]))
    sweep = tmp_path / "sweep"
    result = run_main("-m", "stage=plan", "autoscaling.max_capacity=2,3", f"hydra.sweep.dir={sweep}", env=env)
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert "sweep: 2 combinations" in result.stdout
    rows = {r["job"]: r for r in json.loads((sweep / "sweep_summary.json").read_text())}
    assert rows[0]["verdict"] == "pass" and rows[0]["autoscaling.max_capacity"] == 2
    assert rows[1]["verdict"] == "error"
    assert rows[1]["top_finding"].startswith("error: RuntimeError: late failure [x]")
    assert "RuntimeError: late failure [x]" in (sweep / "1" / "traceback.txt").read_text()
    with (sweep / "sweep_summary.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 2


def test_a_reused_sweep_dir_is_refused(run_main, tmp_path: Path) -> None:
    first = run_main("-m", "stage=plan", "function.provisioned_concurrency=0,1", f"hydra.sweep.dir={tmp_path}")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    before = (tmp_path / "sweep_summary.json").read_text()
    again = run_main("-m", "stage=plan", "function.provisioned_concurrency=2,3,4", f"hydra.sweep.dir={tmp_path}")
    assert again.returncode == 2
    assert "Traceback" not in again.stdout + again.stderr
    assert f"hydra.sweep.dir={tmp_path} already holds a sweep" in " ".join(again.stdout.split())
    assert (tmp_path / "sweep_summary.json").read_text() == before and not (tmp_path / "2").exists()
