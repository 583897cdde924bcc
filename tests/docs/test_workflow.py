"""The example CI workflow is valid, does what docs/ci.md says, and runs commands that exist."""

from __future__ import annotations

import re
import shlex
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from docs_helpers import REPO_ROOT, Ran, run_command

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "policy-gate.yml"
MAKEFILE = REPO_ROOT / "Makefile"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    jobs = workflow["jobs"]
    assert list(jobs) == ["gate"]
    return jobs["gate"]["steps"]


def _step(steps: list[dict[str, Any]], uses_prefix: str) -> dict[str, Any]:
    found = [s for s in steps if str(s.get("uses", "")).startswith(uses_prefix)]
    assert len(found) == 1, f"one step uses {uses_prefix}"
    return found[0]


def _run_lines(steps: list[dict[str, Any]]) -> list[list[str]]:
    lines = []
    for step in steps:
        for line in str(step.get("run", "")).splitlines():
            if line.strip() and not line.strip().startswith("#"):
                lines.append(shlex.split(line, comments=True))
    return lines


def _gate_command(steps: list[dict[str, Any]]) -> list[str]:
    gates = [argv for argv in _run_lines(steps) if "main.py" in argv]
    assert len(gates) == 1, "one step runs main.py"
    return gates[0]


def _run_dir_of(argv: list[str]) -> str:
    dirs = [a.split("=", 1)[1] for a in argv if a.startswith("hydra.run.dir=")]
    assert len(dirs) == 1, "the gate pins hydra.run.dir so its reports are at known paths"
    return dirs[0]


def _make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):(?!=)", MAKEFILE.read_text(), flags=re.MULTILINE))


def test_it_is_valid_yaml_and_runs_on_pull_requests(workflow: dict[str, Any]) -> None:
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    assert workflow["permissions"]["security-events"] == "write"


def test_it_sets_up_python_of_the_project(steps: list[dict[str, Any]]) -> None:
    _step(steps, "actions/checkout@")
    setup = _step(steps, "actions/setup-python@")
    requires = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    version = str(setup["with"]["python-version"])
    assert f">={version}" in requires.replace(" ", ""), f"python-version {version} vs requires-python {requires}"


def test_the_set_up_is_the_readme_command(steps: list[dict[str, Any]]) -> None:
    make_lines = [argv for argv in _run_lines(steps) if argv[0] == "make"]
    assert make_lines, "the environments are built with make, as the README's commands do"
    targets = _make_targets()
    for argv in make_lines:
        assert argv[1] in targets, f"make {argv[1]}: no such target in the Makefile"
    # The target builds both environments the gate needs, and `make run` builds them the same way.
    assert re.search(r"^env: .*\$\(STAMP\).*\$\(CHECKOV_STAMP\)", MAKEFILE.read_text(), flags=re.MULTILINE)
    assert re.search(r"^run: env$", MAKEFILE.read_text(), flags=re.MULTILINE)


def test_the_gate_step_runs_main_py_stage_check(steps: list[dict[str, Any]]) -> None:
    from runner.core.settings import STAGES

    argv = _gate_command(steps)
    interpreter, script = argv[0], argv[1]
    assert interpreter == ".venv/bin/python" and re.search(r"^VENV := \.venv$", MAKEFILE.read_text(),
                                                           flags=re.MULTILINE), "the venv make builds"
    assert script == "main.py" and (REPO_ROOT / script).is_file()
    stages = [a.split("=", 1)[1] for a in argv if a.startswith("stage=")]
    assert stages == ["check"] and "check" in STAGES
    gate = next(s for s in steps if "main.py" in str(s.get("run", "")))
    assert not gate.get("continue-on-error"), "violations must fail the job"


def test_the_reports_are_uploaded_even_when_the_gate_fails(steps: list[dict[str, Any]]) -> None:
    run_dir = _run_dir_of(_gate_command(steps))
    sarif = _step(steps, "github/codeql-action/upload-sarif@")
    junit = _step(steps, "mikepenz/action-junit-report@")
    assert sarif["with"]["sarif_file"] == f"{run_dir}/policy/report.sarif"
    assert junit["with"]["report_paths"] == f"{run_dir}/policy/junit.xml"
    for step in (sarif, junit):
        assert "always()" in str(step.get("if", "")), f"{step['uses']} runs when the gate fails"
    order = [steps.index(s) for s in (next(s for s in steps if "main.py" in str(s.get("run", ""))), sarif, junit)]
    assert order == sorted(order)


def test_the_gate_command_writes_the_reports_the_workflow_uploads(steps: list[dict[str, Any]],
                                                                   tmp_path: Path) -> None:
    """Run the workflow's gate command (its interpreter and run directory swapped for the test's) and
    check that the files the upload steps name are there."""
    argv = _gate_command(steps)
    documented_dir = _run_dir_of(argv)
    run_dir = tmp_path / documented_dir
    command = [sys.executable, *[f"hydra.run.dir={run_dir}" if a.startswith("hydra.run.dir=") else a
                                 for a in argv[1:]], f"workdir={tmp_path / 'work'}"]
    ran: Ran = run_command(command, tmp_path)
    assert ran.returncode == 0, ran.explain()
    uploaded = [_step(steps, "github/codeql-action/upload-sarif@")["with"]["sarif_file"],
                _step(steps, "mikepenz/action-junit-report@")["with"]["report_paths"]]
    for path in uploaded:
        assert (tmp_path / path).is_file(), f"{path} is uploaded but the gate did not write it"
    assert (run_dir / "policy" / "report.sarif").read_text().lstrip().startswith("{")
    assert (run_dir / "policy" / "junit.xml").read_text().startswith("<?xml")
