"""The CLI (runner/app/cli.py): the one place where errors become exit codes, and run.json.

A single run raises ``RunExit`` with a non-zero code; a sweep job returns instead and prints one
line. ``run`` is called with the config ``python main.py OVERRIDES`` would see.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from runner.app import cli, stages
from runner.app.compose import CONF_DIR, compose_config
from runner.app.context import RunContext
from runner.app.invoke import SmokeTestFailed
from runner.core.errors import RunExit, UserError

NO_CHECKOV = "policy.checkov.enabled=false"
INSECURE = 'iam.roles.lambda_invoke.scopes=[{service:sagemaker,actions:["*"],resources:["*"]}]'
BAD_VALUE = "function.provisioned_concurrency=7"
BAD_VALUE_MESSAGE = "function.provisioned_concurrency: 7 must be <= function.reserved_concurrency (5)"


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch) -> Path:
    """Outside Hydra, the run directory is the working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _config(run_dir: Path, *overrides: str) -> DictConfig:
    return compose_config([NO_CHECKOV, f"workdir={run_dir / 'work'}", *overrides])


def _run(cfg: DictConfig) -> int:
    try:
        cli.run(cfg)
    except RunExit as exited:
        assert exited.code in (1, 2)
        return int(exited.code)
    return 0


def _record(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "run.json").read_text())


def _stage(monkeypatch, name: str, body) -> None:
    monkeypatch.setitem(stages.STAGES, name, body)


# ---- single runs -------------------------------------------------------------------------------------

def test_a_passing_check_writes_run_json_and_does_not_exit(run_dir: Path):
    assert _run(_config(run_dir, "stage=check", "name=cli-pass")) == 0
    record = _record(run_dir)
    assert {k: record[k] for k in ("stage", "overrides", "stack", "target", "exit_code")} == {
        "stage": "check", "overrides": [], "stack": "cli-pass", "target": "local", "exit_code": 0}
    assert record["gate"]["verdict"] == "pass" and record["cost"]["monthly_max"] > 0
    assert "error" not in record
    # The gate's files are in the same run directory.
    report = json.loads((run_dir / "policy" / "report.json").read_text())
    assert report["template_sha256"] == record["gate"]["template_sha256"]


def test_a_failing_gate_exits_1(run_dir: Path):
    assert _run(_config(run_dir, "stage=check", INSECURE)) == 1
    record = _record(run_dir)
    assert record["exit_code"] == 1 and record["gate"]["verdict"] == "fail"
    # The most severe finding: the wildcard scopes drop X-Ray, so Lambda would refuse the function.
    assert record["gate"]["top_finding"].startswith("SG-AWS-007 InvokeFunction: CreateFunction would be refused")
    assert "error" not in record


def test_a_config_error_exits_2_with_one_line_naming_the_key(run_dir: Path, capsys):
    assert _run(_config(run_dir, "stage=check", BAD_VALUE)) == 2
    out = capsys.readouterr().out
    assert out.splitlines() == [f"config error: {BAD_VALUE_MESSAGE}"]
    record = _record(run_dir)
    assert (record["stage"], record["error"], record["exit_code"]) == (
        "check", f"config error: {BAD_VALUE_MESSAGE}", 2)
    assert "stack" not in record and "gate" not in record
    assert not (run_dir / "template.json").exists()


def test_a_user_error_in_a_stage_exits_2_and_names_the_stack(run_dir: Path, capsys):
    assert _run(_config(run_dir, "stage=deploy", "name=cli-untrained")) == 2
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 1 and out.startswith("error: no trained model for stack 'cli-untrained'")
    record = _record(run_dir)
    assert (record["stack"], record["target"], record["exit_code"]) == ("cli-untrained", "local", 2)
    assert record["error"].startswith("error: no trained model") and "stage=train" in record["error"]


def test_what_a_stage_recorded_before_its_error_is_kept(run_dir: Path, monkeypatch):
    def gated_then_failed(context: RunContext) -> int:
        context.result["gate"] = {"verdict": "pass", "counts": {}}
        raise UserError("data.source: s3://nowhere cannot be read")

    _stage(monkeypatch, "train", gated_then_failed)
    assert _run(_config(run_dir, "stage=train")) == 2
    record = _record(run_dir)
    assert record["gate"] == {"verdict": "pass", "counts": {}}
    assert record["error"] == "error: data.source: s3://nowhere cannot be read"


@pytest.mark.parametrize("error, message", [
    (ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "CreateRole"),
     "error: An error occurred (AccessDenied) when calling the CreateRole operation: not allowed"),
    (NoCredentialsError(), "error: Unable to locate credentials"),
])
def test_an_aws_refusal_is_the_users_to_fix(run_dir: Path, monkeypatch, capsys, error: Exception, message: str):
    def refused(context: RunContext) -> int:
        raise error

    _stage(monkeypatch, "destroy", refused)
    assert _run(_config(run_dir, "stage=destroy")) == 2
    assert capsys.readouterr().out.splitlines() == [message]
    assert _record(run_dir)["error"] == message


def test_an_error_with_its_own_exit_code_keeps_it(run_dir: Path, monkeypatch):
    def smoke_test_failed(context: RunContext) -> int:
        raise SmokeTestFailed("invoke: the function answered 500 for 0/a.png: {}")

    _stage(monkeypatch, "invoke", smoke_test_failed)
    assert _run(_config(run_dir, "stage=invoke")) == 1
    assert _record(run_dir)["exit_code"] == 1


def test_the_stage_named_in_the_config_runs(run_dir: Path, monkeypatch):
    ran: list[str] = []
    for name in stages.STAGES:
        _stage(monkeypatch, name, lambda context, name=name: ran.append(name) or 0)
    assert _run(_config(run_dir, "stage=plan")) == 0
    assert ran == ["plan"]


def test_a_bug_is_a_traceback_not_an_exit_code(run_dir: Path, monkeypatch):
    def bug(context: RunContext) -> int:
        raise KeyError("predictions")

    _stage(monkeypatch, "check", bug)
    with pytest.raises(KeyError):
        cli.run(_config(run_dir, "stage=check"))


# ---- sweep jobs --------------------------------------------------------------------------------------

@pytest.fixture
def sweep_job(tmp_path: Path) -> Iterator:
    """Run ``cli.run`` as job 0 of a Hydra multirun whose job directory is tmp_path/0."""
    job_dir = tmp_path / "0"

    def configure(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = compose(config_name="config", overrides=[NO_CHECKOV, f"workdir={tmp_path / 'work'}", *overrides],
                          return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.mode = RunMode.MULTIRUN
            cfg.hydra.runtime.output_dir = str(job_dir)
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        return cfg

    try:
        yield configure, job_dir
    finally:
        HydraConfig.instance().cfg = None


def test_a_failing_sweep_job_returns_and_prints_one_line(sweep_job, capsys):
    configure, job_dir = sweep_job
    cfg = configure("stage=check", INSECURE)
    cli.run(cfg)  # no RunExit: the sweep's summary sets the exit code
    record = _record(job_dir)
    assert record["exit_code"] == 1
    assert record["overrides"] == [NO_CHECKOV, f"workdir={job_dir.parent / 'work'}", "stage=check", INSECURE]
    cost = record["cost"]
    [line] = capsys.readouterr().out.splitlines()
    assert line == (f"  {' '.join(record['overrides'])}: fail ${cost['monthly_min']:,.2f}..${cost['monthly_max']:,.2f}"
                    f"/month — {record['gate']['top_finding']}")


def test_a_passing_sweep_job_prints_its_cost(sweep_job, capsys):
    configure, job_dir = sweep_job
    cli.run(configure("stage=check"))
    [line] = capsys.readouterr().out.splitlines()
    assert line.endswith(": pass ${:,.2f}..${:,.2f}/month".format(
        _record(job_dir)["cost"]["monthly_min"], _record(job_dir)["cost"]["monthly_max"]))


def test_a_sweep_job_with_a_bad_value_reports_the_error(sweep_job, capsys):
    configure, job_dir = sweep_job
    cli.run(configure("stage=check", BAD_VALUE))
    assert _record(job_dir)["exit_code"] == 2
    [line] = capsys.readouterr().out.splitlines()
    assert line.endswith(f"stage=check {BAD_VALUE}: error — config error: {BAD_VALUE_MESSAGE}")
