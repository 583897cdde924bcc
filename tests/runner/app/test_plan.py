"""`python main.py stage=plan` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _main(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_plan_writes_plan_and_template_without_network(tmp_path: Path) -> None:
    result = _main("stage=plan", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    template = json.loads((tmp_path / "run" / "template.json").read_text())
    assert plan["account"] == "123456789012"
    assert {r["logical_id"] for r in plan["resources"]} == set(template["Resources"])
    assert plan["cost"]["endpoint_monthly_max"] == round(0.115 * 3 * 730, 2)
    assert "ml.m5.large x 1" in result.stdout
    assert "capacity 1..3" in result.stdout
    assert "reserved concurrency 5" in result.stdout and "provisioned concurrency 2" in result.stdout


def test_bad_override_exits_2_with_one_line_naming_the_key(tmp_path: Path) -> None:
    result = _main("stage=plan", "function.provisioned_concurrency=7", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 2
    assert "function.provisioned_concurrency: 7 must be <= function.reserved_concurrency (5)" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "plan.json").exists()


def test_unknown_key_exits_2(tmp_path: Path) -> None:
    result = _main("stage=plan", "endpoint.colour=red", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 2
    assert "endpoint.colour" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
