"""The report's four forms (policies/report.py): SARIF 2.1.0 (valid, located at the conf file and
key), JUnit XML (a case per rule and resource), the console table and verdict line, JSON."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
from policy_helpers import SARIF_SCHEMA


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
