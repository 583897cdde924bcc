"""The gate as the stages use it: verdicts, exit codes, suppressions, the three report files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from policy_helpers import HUGE_ENDPOINT, PROVISIONED_OVER_BUDGET, WILDCARD_SCOPES, make
from rich.console import Console

import policies.gate as gate
from policies.checkov.runner import store_cached, template_key
from policies.gate import evaluate, run_gate
from policies.model import Finding, GateError

SARIF_SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())


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
    i = make("experiment=production", "training.volume_kms_key_id=alias/aws/sagemaker")
    result = evaluate(i.settings, i.stack, i.costs)
    assert {f.rule_id for f in result.blocking} == {"SG-SAN-008"}


@pytest.mark.parametrize("overrides, expected", [
    ((WILDCARD_SCOPES,), {"SG-IAM-001", "SG-IAM-003"}),
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
    assert top is not None and top.severity == "high"
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


# ---- run_gate and the reports ------------------------------------------------------------------------------

@pytest.fixture
def insecure_reports(tmp_path: Path, checkov_scans, monkeypatch):
    """run_gate on the insecure stack with checkov's answer from a sweep cache (no process)."""
    scanned = checkov_scans["insecure"]
    cache = tmp_path / "cache"
    store_cached(cache, template_key(scanned.template), scanned.scan)

    def no_checkov(*args, **kwargs):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(gate, "scan_templates", no_checkov)
    i = scanned.inputs
    console = Console(record=True, width=160)
    result = run_gate(i.settings, i.stack, i.costs, tmp_path / "run", console, checkov_cache_dir=cache)
    return result, tmp_path / "run" / "policy", console.export_text()


def test_run_gate_writes_three_reports(insecure_reports):
    result, policy_dir, _ = insecure_reports
    assert sorted(p.name for p in policy_dir.iterdir()) == ["junit.xml", "report.json", "report.sarif"]
    report = json.loads((policy_dir / "report.json").read_text())
    assert report["verdict"] == "fail" and report["exit_code"] == 1 and report["checkov"]["ran"] is True
    assert report["counts"] == result.counts
    assert {f["rule_id"] for f in report["findings"]} >= {"SG-IAM-004", "SG-SAN-006", "CKV_AWS_111"}
    assert {f["rule_id"] for f in report["suppressed_findings"]} == {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"}
    assert report["cost"]["endpoint_monthly_max"] > 8000


def test_sarif_is_valid_2_1_0(insecure_reports):
    _, policy_dir, _ = insecure_reports
    sarif = json.loads((policy_dir / "report.sarif").read_text())
    jsonschema.validate(sarif, SARIF_SCHEMA)
    run = sarif["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert len(rule_ids) == len(set(rule_ids))  # one rule entry per id
    for entry in run["results"]:
        assert rule_ids[entry["ruleIndex"]] == entry["ruleId"]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert "network isolation" in rules["CKV_AWS_370"]["shortDescription"]["text"].lower()  # a passed check
    assert rules["SG-IAM-004"]["properties"]["security-severity"] == "8.0"
    suppressed = [r for r in run["results"] if r.get("suppressions")]
    assert {r["ruleId"] for r in suppressed} == {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"}
    assert all(r["suppressions"][0]["justification"] for r in suppressed)


def test_sarif_results_point_at_the_conf_file_and_key(insecure_reports):
    _, policy_dir, _ = insecure_reports
    results = json.loads((policy_dir / "report.sarif").read_text())["runs"][0]["results"]
    cost = next(r for r in results if r["ruleId"] == "SG-COST-002")
    physical = cost["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "conf/autoscaling/target_tracking.yaml"
    line = (Path(__file__).resolve().parents[2] / physical["artifactLocation"]["uri"]).read_text().splitlines()[
        physical["region"]["startLine"] - 1]
    assert line.startswith("max_capacity:")
    logical = {loc.get("fullyQualifiedName") for loc in cost["locations"][0]["logicalLocations"]}
    assert "autoscaling.max_capacity" in logical


def test_junit_has_a_case_per_rule_and_resource(insecure_reports):
    result, policy_dir, _ = insecure_reports
    root = ET.parse(policy_dir / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    names = [c.get("name").split(" (")[0] for c in cases]
    assert len(names) == len(set(names))
    failures = {c.get("name").split(" (")[0] for c in cases if c.find("failure") is not None}
    assert failures == {f"{f.rule_id} {f.resource}" for f in result.blocking}
    skipped = {c.get("name").split(" (")[0] for c in cases if c.find("skipped") is not None}
    assert "CKV_AWS_116 InvokeFunction" in skipped
    assert int(root.get("tests")) == len(cases) and int(root.get("failures")) == len(failures)
    assert "CKV_AWS_370 Model" in names  # passed checkov checks are test cases too


def test_console_shows_table_and_verdict(insecure_reports):
    result, _, text = insecure_reports
    assert "SG-IAM-004" in text and "CKV_SG_002" in text
    verdict = text.strip().splitlines()[-1]
    assert verdict.startswith("policy gate FAIL:") and "fail_on=high" in verdict and "endpoint $" in verdict
    assert f"{result.counts['high']} high" in verdict


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
