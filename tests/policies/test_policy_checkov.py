"""checkov from its own environment: real runs, parsed; every way it can fail is a gate error."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from policies.checkov.runner import (
    CHECKS_DIR,
    CheckovScan,
    load_cached,
    parse_checkov_report,
    run_checkov_batch,
    run_checkov_cli,
    scan_templates,
    store_cached,
    template_key,
    warm_cache,
)
from policies.gate import evaluate
from policies.model import GateError


def failed(scan: CheckovScan) -> set[tuple[str, str]]:
    return {(f.rule_id, f.resource) for f in scan.findings}


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


def test_custom_checks_catch_what_builtins_miss(checkov_scans):
    scan = checkov_scans["insecure"].scan
    found = failed(scan)
    # CKV_AWS_115 accepts any reserved concurrency; CKV_SG_001 bounds it by policy.max_reserved_concurrency.
    assert ("CKV_SG_001", "InvokeFunction") in found
    assert ("CKV_AWS_115", "InvokeFunction") not in found
    # Hosting and notebook instance types outside their allow-lists.
    assert {("CKV_SG_002", "EndpointConfig"), ("CKV_SG_002", "NotebookInstance")} <= found
    by_id = {f.rule_id: f for f in scan.findings}
    assert by_id["CKV_SG_001"].severity == "high" and by_id["CKV_SG_001"].engine == "checkov"
    assert "function.reserved_concurrency" in by_id["CKV_SG_001"].remediation


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


def test_custom_checks_fold_into_their_native_twins(checkov_scans):
    """Both engines found the allow-list and concurrency violations: one finding each, which says so."""
    scanned = checkov_scans["insecure"]
    i = scanned.inputs
    result = evaluate(i.settings, i.stack, i.costs, scanned.scan.findings, checkov_passed=scanned.scan.passed)
    assert not [f for f in result.findings if f.rule_id.startswith("CKV_SG_")]
    twin = next(f for f in result.active if (f.rule_id, f.resource) == ("SG-SAN-006", "InvokeFunction"))
    assert "checkov CKV_SG_001 agrees" in twin.message
    # When only checkov fires (the engines disagree), checkov's finding stands in the report.
    default = checkov_scans["default"].inputs
    ckv = next(f for f in scanned.scan.findings if (f.rule_id, f.resource) == ("CKV_SG_002", "EndpointConfig"))
    disagreeing = evaluate(default.settings, default.stack, default.costs, [ckv])
    assert [(f.rule_id, f.engine, f.config_key) for f in disagreeing.blocking] == [
        ("CKV_SG_002", "checkov", "endpoint")]


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


def test_custom_checks_ship_with_their_package_marker():
    assert (CHECKS_DIR / "__init__.py").is_file()


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
