"""Sweeps that recommend (issue 14): with simulated days, every row shows SLO met, p99, errors and
the simulated month; the cheapest row meeting its SLO is marked, and each cheaper one says why it
does not. Rows from run.json records (runner.app.sweep.summary_rows), then one real sweep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from runner.app.sweep import print_summary, summary_rows, write_summary

REPO = Path(__file__).resolve().parents[3]
SLO = {"p99_ms": 200.0, "error_rate": 0.01}


def _simulated(instance_type: str, month: float, p99: float, errors: float) -> dict[str, Any]:
    met = p99 <= SLO["p99_ms"] and errors <= SLO["error_rate"]
    return {"stage": "simulate", "overrides": ["stage=simulate", f"endpoint.variants.AllTraffic.instance_type={instance_type}"],
            "exit_code": 0 if met else 1, "slo": SLO,
            "simulation": {"slo_met": met, "p99_ms": p99, "error_rate": errors, "cost_usd_month": month}}


def _sweep(tmp_path: Path, records: list[dict[str, Any]]) -> Path:
    for job, record in enumerate(records):
        (tmp_path / str(job)).mkdir()
        (tmp_path / str(job) / "run.json").write_text(json.dumps(record))
    return tmp_path


def test_the_cheapest_row_meeting_the_slo_is_recommended_and_cheaper_ones_say_why(tmp_path):
    sweep = _sweep(tmp_path, [_simulated("ml.m5.xlarge", 190.0, 40.0, 0.0),
                              _simulated("ml.t2.medium", 60.0, 950.0, 0.0),  # too slow
                              _simulated("ml.c5.large", 95.0, 80.0, 0.0),  # the one
                              _simulated("ml.m5.large", 80.0, 120.0, 0.2)])  # errors
    rows, keys = summary_rows(sweep)
    assert [r["job"] for r in rows] == [1, 3, 2, 0]  # cheapest simulated month first
    assert [r.get("recommended", False) for r in rows] == [False, False, True, False]
    console = Console(record=True, width=200)
    print_summary(console, rows, keys, sweep)
    text = console.export_text()
    assert "recommended (*): job 2 (endpoint.variants.AllTraffic.instance_type=ml.c5.large), $95.00 a month" in text
    assert "cheaper, but job 1 (endpoint.variants.AllTraffic.instance_type=ml.t2.medium): p99 950 ms > 200 ms" in text
    assert "cheaper, but job 3 (endpoint.variants.AllTraffic.instance_type=ml.m5.large): errors 20.00% > 1.00%" in text
    assert "job 0" not in text.split("recommended")[1]  # dearer rows are not explained
    write_summary(sweep, rows)
    saved = json.loads((sweep / "sweep_summary.json").read_text())
    assert [r["job"] for r in saved if r.get("recommended")] == [2]
    assert {"slo_met", "p99_ms", "error_rate", "simulated_monthly_usd", "slo_p99_ms", "slo_error_rate"} <= set(saved[0])


def test_when_no_row_meets_the_slo_none_is_recommended(tmp_path):
    sweep = _sweep(tmp_path, [_simulated("ml.t2.medium", 60.0, 950.0, 0.0), _simulated("ml.m5.large", 80.0, 120.0, 0.2)])
    rows, keys = summary_rows(sweep)
    assert not any(r.get("recommended") for r in rows)
    console = Console(record=True, width=200)
    print_summary(console, rows, keys, sweep)
    assert "recommended: none - no combination meets its SLO" in console.export_text()


@pytest.mark.e2e
def test_a_sweep_over_instance_type_max_capacity_and_target_on_the_diurnal_profile_recommends(tmp_path):
    """The issue's done-when: a sweep over instance type x max capacity x target value on the
    diurnal profile prints the recommendation."""
    sweep = tmp_path / "sweep"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "-m", "stage=simulate", "traffic=diurnal", "traffic.mean_rps=150.0",
         "endpoint.variants.AllTraffic.instance_type=ml.t2.medium,ml.c5.large", "autoscaling.max_capacity=1,3",
         "autoscaling.target_value=600.0,3000.0", "function.reserved_concurrency=300", "slo.p99_ms=28.0",
         "slo.error_rate=0.001", f"hydra.sweep.dir={sweep}", f"workdir={tmp_path / 'work'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    rows = json.loads((sweep / "sweep_summary.json").read_text())
    assert len(rows) == 8 and all(r["simulated_monthly_usd"] > 0 for r in rows)
    recommended = [r for r in rows if r.get("recommended")]
    assert len(recommended) == 1 and recommended[0]["slo_met"] is True
    cheaper = rows[: rows.index(recommended[0])]
    assert cheaper and all(r["slo_met"] is False for r in cheaper)  # a real choice was made
    assert f"recommended (*): job {recommended[0]['job']} " in result.stdout, result.stdout[-3000:]
    assert result.stdout.count("cheaper, but job ") == len(cheaper)
    assert result.returncode == 1  # some combinations miss the SLO
