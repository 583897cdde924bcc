"""checkov from its own environment (policies/checkov/runner.py): real runs, parsed; every way it
can fail is a gate error; the sweep cache."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from policy_helpers import failed

from policies.checkov.runner import (
    load_cached,
    parse_checkov_report,
    scan_templates,
    store_cached,
    template_key,
    warm_cache,
)
from policies.gate import evaluate
from policies.model import GateError


def test_default_template_fails_only_the_known_noise(checkov_scans):
    """Built-in checks ran (many passed) and only the suppressed-with-a-reason noise failed."""
    scan = checkov_scans["default"].scan
    assert failed(scan) == {("CKV_AWS_116", "InvokeFunction"), ("CKV_AWS_117", "InvokeFunction"),
                            ("CKV_AWS_173", "InvokeFunction")}
    passed = set(scan.passed)
    assert ("CKV_SG_001", "InvokeFunction") in passed
    assert ("CKV_SG_002", "EndpointConfig") in passed
    assert ("CKV_AWS_370", "Model") in passed  # the model's network isolation
    assert scan.checkov_version.startswith("3.")


def test_checkov_never_expands_managed_policies_but_the_gate_does(checkov_scans):
    """FACTS: a role with AmazonSageMakerFullAccess passes every checkov IAM check."""
    scanned = checkov_scans["insecure"]
    assert not any(f.resource == "RoleSagemakerExecution" for f in scanned.scan.findings)
    i = scanned.inputs
    result = evaluate(i.settings, i.stack, i.costs, scanned.scan.findings, checkov_passed=scanned.scan.passed)
    assert any(f.rule_id == "SG-IAM-004" and f.resource == "RoleSagemakerExecution" for f in result.active)


def test_default_and_production_pass_with_checkov(checkov_scans):
    for name in ("default", "production"):
        scanned = checkov_scans[name]
        i = scanned.inputs
        result = evaluate(i.settings, i.stack, i.costs, scanned.scan.findings, checkov_passed=scanned.scan.passed)
        assert result.verdict == "pass", (name, [(f.rule_id, f.severity) for f in result.blocking])
        assert result.exit_code == 0
        # The DLQ/VPC/env-encryption noise is suppressed with the reasons from the policy config.
        assert {f.rule_id for f in result.suppressed} == {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"}
        assert all(f.suppression_reason for f in result.suppressed)


def test_insecure_overrides_fail_with_the_right_ids(checkov_scans):
    scanned = checkov_scans["insecure"]
    i = scanned.inputs
    result = evaluate(i.settings, i.stack, i.costs, scanned.scan.findings, checkov_passed=scanned.scan.passed)
    assert result.exit_code == 1 and result.verdict == "fail"
    blocking = {(f.rule_id, f.resource) for f in result.blocking}
    assert {("SG-IAM-001", "RoleLambdaInvoke"), ("SG-IAM-004", "RoleSagemakerExecution"),
            ("SG-COST-002", "Endpoint"), ("SG-SAN-006", "InvokeFunction"), ("SG-COST-001", "EndpointConfig"),
            ("SG-COST-001", "NotebookInstance")} <= blocking


def test_missing_checkov_is_a_gate_error(tmp_path: Path, checkov_scans):
    with pytest.raises(GateError, match="not installed"):
        scan_templates({"k": checkov_scans["default"].template}, timeout_s=60, venv=tmp_path / "nowhere")


def test_missing_custom_check_directory_is_a_gate_error(tmp_path: Path, checkov_scans):
    with pytest.raises(GateError, match="custom checkov checks missing"):
        scan_templates({"k": checkov_scans["default"].template}, timeout_s=60, checks_dir=tmp_path)


def test_timeout_is_a_gate_error(checkov_scans):
    with pytest.raises(GateError, match="timed out"):
        scan_templates({"k": checkov_scans["default"].template}, timeout_s=0.05)


def test_report_with_parse_errors_is_a_gate_error():
    report = {"check_type": "cloudformation", "results": {"failed_checks": [], "passed_checks": [],
                                                           "parsing_errors": ["/t.json"]},
              "summary": {"parsing_errors": 1}}
    with pytest.raises(GateError, match="could not parse"):
        parse_checkov_report(report)


def test_template_key_is_canonical(checkov_scans):
    template = checkov_scans["default"].template
    reordered = dict(reversed(list(template.items())))
    assert template_key(reordered) == template_key(template)
    changed = copy.deepcopy(template)
    changed["Metadata"]["sagegate"]["checkov_params"]["max_reserved_concurrency"] = 7
    assert template_key(changed) != template_key(template)  # policy values are part of the key


def test_cache_round_trip_and_warm_cache_skips_cached(tmp_path: Path, checkov_scans):
    scanned = checkov_scans["insecure"]
    store_cached(tmp_path, template_key(scanned.template), scanned.scan)
    loaded = load_cached(tmp_path, scanned.template)
    assert loaded is not None and failed(loaded) == failed(scanned.scan)
    assert loaded.findings[0].engine == "checkov"
    # Everything already cached: no checkov process is started (it would fail on this venv).
    assert warm_cache([scanned.template], tmp_path, timeout_s=60) == {}
