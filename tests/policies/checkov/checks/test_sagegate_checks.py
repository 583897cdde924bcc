"""sagegate's custom checkov checks (policies/checkov/checks/sagegate_checks.py): what they catch
that the built-in checks miss, and how the gate folds them into their native twins."""

from __future__ import annotations

from policy_helpers import failed

from policies.checkov.runner import (
    CHECKS_DIR,
)
from policies.gate import evaluate


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


def test_custom_checks_ship_with_their_package_marker():
    assert (CHECKS_DIR / "__init__.py").is_file()
