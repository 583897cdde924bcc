"""The warm checkov worker (policies/checkov/worker.py, run in checkov's environment): it agrees
with the checkov command, and reports checks that cannot decide or do not load."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from policy_helpers import failed

from policies.checkov.runner import (
    run_checkov_batch,
    run_checkov_cli,
    scan_templates,
)
from policies.model import GateError


def test_cli_run_agrees_with_the_warm_worker(checkov_scans):
    """The `checkov` command, as a user runs it, on the same template: same JSON, same answer."""
    scanned = checkov_scans["insecure"]
    cli = run_checkov_cli(scanned.template, timeout_s=300)
    assert failed(cli) == failed(scanned.scan)
    assert set(cli.passed) == set(scanned.scan.passed)


def test_a_check_that_cannot_decide_is_a_gate_error(checkov_scans):
    """Without its policy values the custom checks raise; checkov records UNKNOWN and drops it
    from its report. The worker sees it and the gate refuses to pass."""
    template = copy.deepcopy(checkov_scans["default"].template)
    del template["Metadata"]["sagegate"]
    with pytest.raises(GateError, match="UNKNOWN"):
        run_checkov_batch({"no-params": template}, timeout_s=300)


def test_custom_checks_that_do_not_load_are_a_gate_error(tmp_path: Path, checkov_scans):
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "__init__.py").write_text("")
    (checks / "broken.py").write_text("raise RuntimeError('broken check')\n")
    with pytest.raises(GateError, match="did not load"):
        scan_templates({"k": checkov_scans["default"].template}, timeout_s=300, checks_dir=checks)


def test_a_prestarted_worker_gives_the_same_answer(checkov_scans):
    """main.py starts the worker before the config is composed (policies/checkov/process.py); the
    gate's scan then goes to it, and its answer is the one a fresh worker gives."""
    from policies.checkov import process

    scanned = checkov_scans["insecure"]
    worker = process.prestart()
    assert worker is not None
    try:
        scans = scan_templates({"k": scanned.template}, timeout_s=300)
        assert process._prestarted is None  # taken by the scan
        assert worker.process.returncode == 0
    finally:
        process.discard_prestarted()
    assert failed(scans["k"]) == failed(scanned.scan)
    assert set(scans["k"].passed) == set(scanned.scan.passed)


def test_a_prestarted_worker_that_is_not_used_exits(checkov_scans):
    from policies.checkov import process

    worker = process.prestart()
    assert worker is not None
    process.discard_prestarted()
    assert worker.process.poll() is not None and not worker.tmp.exists()
    assert process.take_prestarted() is None


def test_a_prestarted_worker_whose_checks_do_not_load_is_a_gate_error(tmp_path: Path, checkov_scans):
    from policies.checkov import process

    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "__init__.py").write_text("")
    (checks / "broken.py").write_text("raise RuntimeError('broken check')\n")
    process.prestart(checks_dir=checks)
    try:
        with pytest.raises(GateError, match="did not load"):
            scan_templates({"k": checkov_scans["default"].template}, timeout_s=300, checks_dir=checks)
    finally:
        process.discard_prestarted()


@pytest.mark.parametrize(("argv", "gates"), [
    ([], True),  # stage=all
    (["stage=check"], True),
    (["stage=plan", "endpoint=production"], True),
    (["stage=train"], False),
    (["stage=check", "policy.checkov.enabled=false"], False),
    (["-m", "stage=check", "autoscaling.max_capacity=1,2"], True),  # the sweep's batch
    (["-m", "stage=check,train"], False),
    (["stage=check", "--cfg", "job"], False),
])
def test_which_runs_prestart_the_worker(argv, gates):
    from policies.checkov.process import will_gate

    assert will_gate(argv) is gates
