"""The gate as the stages use it (policies/gate.py): verdicts, exit codes, suppressions, a rule
that raises, the three report files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from policy_helpers import (
    HUGE_ENDPOINT,
    PROVISIONED_OVER_BUDGET,
    SARIF_SCHEMA,
    WILDCARD_SCOPES,
    by_rule,
    make,
)
from rich.console import Console

import policies.gate as gate
from policies.gate import evaluate, run_gate
from policies.model import Finding, GateError
from policies.report import write_reports
from policies.rules.base import Context, Outcome, Rule
from policies.rules.registry import RuleRegistry, all_rules


def checkov_finding(rule_id="CKV_AWS_116", resource="InvokeFunction", severity="low") -> Finding:
    return Finding(rule_id, "checkov", severity, resource, "", "a checkov check", "fix it", title="a checkov check")


# ---- verdicts and exit codes -------------------------------------------------------------------------

def test_default_config_passes():
    i = make()
    result = evaluate(i.settings, i.stack, i.costs)
    assert (result.verdict, result.exit_code) == ("pass", 0)
    assert result.counts == {"critical": 0, "high": 0, "medium": 0, "low": 1, "info": 0}


def test_production_preset_passes_as_shipped():
    i = make("experiment=production")
    assert evaluate(i.settings, i.stack, i.costs).verdict == "pass"


def test_a_volume_key_on_local_instance_storage_fails_production():
    # A key ARN: VolumeKmsKeyId takes no alias (the settings refuse alias/aws/sagemaker there), and a
    # customer key also needs kms:Encrypt on the training role (SG-IAM-009).
    i = make("experiment=production",
             "training.volume_kms_key_id=arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    result = evaluate(i.settings, i.stack, i.costs)
    assert {f.rule_id for f in result.blocking} == {"SG-SAN-008", "SG-IAM-009"}


@pytest.mark.parametrize("overrides, expected", [
    # The wildcard scopes replace the function role's own, X-Ray's included: Lambda would refuse it,
    # and the function could write no logs (SG-IAM-009); sagemaker:* on * opens notebooks' roles
    # (pathfinding.cloud sagemaker-004/005: SG-IAM-006).
    ((WILDCARD_SCOPES,), {"SG-IAM-001", "SG-IAM-003", "SG-AWS-007", "SG-IAM-009", "SG-IAM-006"}),
    (('+iam.roles.lambda_invoke.managed_policy_arns=["arn:aws:iam::aws:policy/AWSLambda_FullAccess"]',),
     {"SG-IAM-004"}),
    ((HUGE_ENDPOINT,), {"SG-COST-001", "SG-COST-002"}),
    (PROVISIONED_OVER_BUDGET, {"SG-COST-005"}),
])
def test_insecure_overrides_fail_with_the_right_ids(overrides, expected):
    i = make(*overrides)
    result = evaluate(i.settings, i.stack, i.costs)
    assert result.exit_code == 1
    assert {f.rule_id for f in result.blocking} == expected


def test_fail_on_is_the_threshold():
    """A medium finding passes the default gate and fails the strict one."""
    lenient = make("endpoint=serverless")
    strict = make("endpoint=serverless", "policy=strict")
    assert evaluate(lenient.settings, lenient.stack, lenient.costs).verdict == "pass"
    result = evaluate(strict.settings, strict.stack, strict.costs)
    assert result.verdict == "fail" and [f.rule_id for f in result.blocking] == ["SG-SAN-001"]


def test_top_finding_is_the_most_severe():
    i = make(WILDCARD_SCOPES, "endpoint.kms_key_id=null")
    top = evaluate(i.settings, i.stack, i.costs).top_finding()
    # A request AWS would refuse (critical) comes before the wildcard's high IAM findings.
    assert top is not None and (top.severity, top.rule_id) == ("critical", "SG-AWS-007")
    clean = make(f"endpoint.kms_key_id={'arn:aws:kms:us-east-1:123456789012:key/k'}")
    assert evaluate(clean.settings, clean.stack, clean.costs).top_finding() is None


def test_evaluate_is_pure():
    i = make()
    given = [checkov_finding()]
    first = evaluate(i.settings, i.stack, i.costs, given)
    second = evaluate(i.settings, i.stack, i.costs, given)
    assert [f.as_dict() for f in first.findings] == [f.as_dict() for f in second.findings]
    assert given[0].suppressed is False and given[0].config_key == ""  # the caller's records are untouched


def test_checkov_findings_get_the_resource_config_key():
    i = make()
    result = evaluate(i.settings, i.stack, i.costs, [checkov_finding("CKV_AWS_999", "InvokeFunction", "high")])
    finding = next(f for f in result.findings if f.rule_id == "CKV_AWS_999")
    assert finding.config_key == "function" and result.exit_code == 1


# ---- suppressions ----------------------------------------------------------------------------------------

def test_suppression_needs_a_reason():
    i = make("endpoint.kms_key_id=null", "policy.suppress=[{id:SG-HARD-001}]")
    result = evaluate(i.settings, i.stack, i.costs)
    assert [f.rule_id for f in result.active if f.rule_id.startswith("SG-")] == ["SG-POL-001", "SG-HARD-001"]
    assert result.active[0].severity == "critical" and result.exit_code == 1


def test_suppression_with_a_reason_and_resource():
    i = make("training=sagemaker", "training.instance_type=ml.m5.xlarge", "training.network_isolation=false",
             "policy.suppress=[{id:SG-HARD-009,resource:TrainingJob,reason:'the job downloads pip packages'}]")
    result = evaluate(i.settings, i.stack, i.costs)
    suppressed = [f for f in result.suppressed if f.rule_id == "SG-HARD-009"]
    assert suppressed and suppressed[0].suppression_reason == "the job downloads pip packages"
    assert "SG-HARD-009" not in {f.rule_id for f in result.active}


def test_suppression_for_another_resource_does_not_apply():
    i = make("training=sagemaker", "training.instance_type=ml.m5.xlarge", "training.network_isolation=false",
             "policy.suppress=[{id:SG-HARD-009,resource:Ec2TrainingRun,reason:not this one}]")
    result = evaluate(i.settings, i.stack, i.costs)
    assert "SG-HARD-009" in {f.rule_id for f in result.active}
    assert "SG-POL-002" in {f.rule_id for f in result.active}


def test_unused_suppressions_are_reported_once_the_engine_ran():
    i = make()
    # checkov did not run: its suppressions cannot be judged.
    assert "SG-POL-002" not in {f.rule_id for f in evaluate(i.settings, i.stack, i.costs).findings}
    # checkov ran and reported nothing: CKV_AWS_116/117/173 suppressions are stale.
    stale = [f for f in evaluate(i.settings, i.stack, i.costs, []).active if f.rule_id == "SG-POL-002"]
    assert {f.resource for f in stale} == {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"}
    assert {f.severity for f in stale} == {"low"}


# ---- a rule that raises ------------------------------------------------------------------------------------

class Raises(Rule):
    """A rule with a bug: it looks at one resource, then fails."""

    id = "SG-TEST-001"
    severity = "medium"
    title = "A rule that raises"
    config_key = "endpoint.variants.AllTraffic.instance_type"
    remediation = "Fix the rule."

    def check(self, ctx: Context):
        yield self.outcome("EndpointConfig")
        raise ValueError("no ProductionVariants")


class RaisesCritical(Raises):
    id = "SG-TEST-002"
    severity = "critical"

    def check(self, ctx: Context):
        raise KeyError("Policies")


def with_rules(*extra: Rule):
    """Every registered rule, and the extra ones registered after them."""
    registry = RuleRegistry(all_rules())
    for rule in extra:
        registry.register(rule)
    return registry.rules()


def test_a_rule_that_raises_is_a_violation_of_that_rule(tmp_path: Path):
    i = make()
    result = evaluate(i.settings, i.stack, i.costs, rules=with_rules(Raises()))
    assert (result.verdict, result.exit_code) == ("fail", 1)  # the default config passes without it
    [finding] = by_rule(result, "SG-TEST-001")
    assert finding.message == "rule SG-TEST-001 raised ValueError: no ProductionVariants — treated as a violation"
    assert finding.severity == "high"  # its own severity (medium) or high, whichever is higher
    assert (finding.resource, finding.config_key, finding.title) == (i.settings.name, "endpoint.variants.AllTraffic.instance_type",
                                                                    "A rule that raises")
    # What it yielded before raising is not a pass: one failed evaluation, for the whole stack.
    assert [(e.resource, e.passed) for e in result.evaluations if e.rule_id == "SG-TEST-001"] == [
        (i.settings.name, False)]
    # Every other rule still ran, as it does without the broken one.
    alone = evaluate(i.settings, i.stack, i.costs)
    assert [e for e in result.evaluations if e.rule_id != "SG-TEST-001"] == alone.evaluations

    paths = write_reports(result, tmp_path)
    report = json.loads(paths["json"].read_text())
    assert report["exit_code"] == 1
    assert [f["rule_id"] for f in report["findings"] if "raised" in f["message"]] == ["SG-TEST-001"]
    assert {"id": "SG-TEST-001", "engine": "sagegate", "severity": "medium", "title": "A rule that raises",
            "remediation": "Fix the rule."} in report["rules"]
    sarif = json.loads(paths["sarif"].read_text())
    jsonschema.validate(sarif, SARIF_SCHEMA)
    assert any(r["ruleId"] == "SG-TEST-001" and r["level"] == "error" for r in sarif["runs"][0]["results"])
    junit = ET.parse(paths["junit"]).getroot()
    failure = next(c for c in junit.iter("testcase") if c.get("name").startswith("SG-TEST-001 ")).find("failure")
    assert failure is not None and "rule SG-TEST-001 raised ValueError" in failure.get("message")


def test_a_critical_rule_that_raises_stays_critical():
    i = make()
    result = evaluate(i.settings, i.stack, i.costs, rules=[RaisesCritical()])
    [finding] = result.active
    assert (finding.rule_id, finding.severity) == ("SG-TEST-002", "critical")
    assert finding.message == "rule SG-TEST-002 raised KeyError: 'Policies' — treated as a violation"


def test_a_rule_that_raises_is_judged_by_fail_on_like_any_high_finding():
    strict, lenient = make("policy=strict"), make("policy.fail_on=critical")
    assert evaluate(strict.settings, strict.stack, strict.costs, rules=[Raises()]).exit_code == 1
    result = evaluate(lenient.settings, lenient.stack, lenient.costs, rules=[Raises()])
    assert result.exit_code == 0 and [f.severity for f in result.active] == ["high"]


def test_run_gate_reports_a_rule_that_raises_without_a_traceback(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(gate, "all_rules", lambda: with_rules(Raises()))
    i = make("policy.checkov.enabled=false")
    console = Console(record=True, width=200)
    result = run_gate(i.settings, i.stack, i.costs, tmp_path, console)
    assert result.exit_code == 1
    text = console.export_text()
    assert "SG-TEST-001" in text and "Traceback" not in text
    report = json.loads((tmp_path / "policy" / "report.json").read_text())
    assert report["verdict"] == "fail" and "SG-TEST-001" in {f["rule_id"] for f in report["findings"]}


def test_a_rule_that_passes_after_all_is_not_reported():
    class Fine(Rule):
        id = "SG-TEST-003"
        severity = "low"
        title = "A rule that passes"
        config_key = "endpoint"
        remediation = "Nothing."

        def check(self, ctx: Context):
            return [Outcome("Endpoint", "endpoint")]

    i = make()
    result = evaluate(i.settings, i.stack, i.costs, rules=[Fine()])
    assert result.exit_code == 0 and not result.findings


# ---- run_gate and the reports ------------------------------------------------------------------------------

def test_run_gate_writes_three_reports(insecure_reports):
    result, policy_dir, _ = insecure_reports
    assert sorted(p.name for p in policy_dir.iterdir()) == ["junit.xml", "report.json", "report.sarif"]
    report = json.loads((policy_dir / "report.json").read_text())
    assert report["verdict"] == "fail" and report["exit_code"] == 1 and report["checkov"]["ran"] is True
    assert report["counts"] == result.counts
    assert {f["rule_id"] for f in report["findings"]} >= {"SG-IAM-004", "SG-SAN-006", "CKV_AWS_111"}
    assert {f["rule_id"] for f in report["suppressed_findings"]} == {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"}
    assert report["cost"]["endpoint_monthly_max"] > 8000


def test_run_gate_without_checkov(tmp_path: Path):
    i = make("policy.checkov.enabled=false")
    result = run_gate(i.settings, i.stack, i.costs, tmp_path)
    assert result.exit_code == 0 and result.checkov_ran is False
    report = json.loads((tmp_path / "policy" / "report.json").read_text())
    assert report["checkov"]["ran"] is False
    jsonschema.validate(json.loads((tmp_path / "policy" / "report.sarif").read_text()), SARIF_SCHEMA)


def test_run_gate_error_is_never_a_pass(tmp_path: Path, monkeypatch):
    def crashed(*args, **kwargs):
        raise GateError("checkov crashed (exit -9) without a report")

    monkeypatch.setattr(gate, "scan_templates", crashed)
    i = make()
    with pytest.raises(GateError) as raised:
        run_gate(i.settings, i.stack, i.costs, tmp_path)
    assert raised.value.exit_code == 2
    report = json.loads((tmp_path / "policy" / "report.json").read_text())
    assert report["verdict"] == "error" and "crashed" in report["error"]


def test_evaluate_starts_no_process_and_reads_no_file(monkeypatch):
    """The native engine is pure: a sweep can run it once per job for free."""
    import builtins
    import subprocess

    i = make()
    touched = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda *a, **k: touched.append(a[0]) or real_open(*a, **k))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: touched.append(a[0]))
    evaluate(i.settings, i.stack, i.costs)
    assert touched == []
