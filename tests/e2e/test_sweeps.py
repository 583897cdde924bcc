"""Hydra sweeps: one row per combination, one summary, the sweep's exit code."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

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
    m5 = next(r for r in rows if r["endpoint.variants.AllTraffic.instance_type"] == "ml.m5.large" and r["autoscaling.max_capacity"] == "4"
              and r["function.provisioned_concurrency"] == "0")
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
