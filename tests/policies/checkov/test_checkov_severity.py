"""Severities and remediations for checkov's checks (policies/checkov/severity.py)."""

from __future__ import annotations

from policies.checkov.severity import CHECKS, DEFAULT_SEVERITY, POLICY_INDEX, remediation_for, severity_for
from policies.model import SEVERITIES


def test_curated_severities_are_known_severities():
    assert all(severity in SEVERITIES for severity, _ in CHECKS.values())
    assert DEFAULT_SEVERITY in SEVERITIES
    assert all(remediation for _, remediation in CHECKS.values())


def test_checkovs_own_severity_wins_when_it_has_one():
    assert severity_for("CKV_AWS_116", "HIGH") == "high"
    assert severity_for("CKV_AWS_116", "bogus") == CHECKS["CKV_AWS_116"][0]
    assert severity_for("CKV_AWS_116") == "low"


def test_an_unknown_check_is_never_silently_low():
    assert severity_for("CKV_AWS_99999") == DEFAULT_SEVERITY == "medium"


def test_remediation_for_known_and_unknown_checks():
    assert remediation_for("CKV_SG_001", "ignored") == CHECKS["CKV_SG_001"][1]
    text = remediation_for("CKV_AWS_99999", "Ensure something")
    assert text.startswith("Ensure something; see CKV_AWS_99999") and POLICY_INDEX in text
