"""One report, four forms: console table, JSON, SARIF 2.1.0, JUnit XML."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console

from policies.locate import CONF_DIR, ConfLocation, locate
from policies.model import SEVERITIES, SEVERITY_RANK, Finding, GateResult, at_least

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "sagegate"
TOOL_VERSION = "0.1.0"
TOOL_URI = "https://github.com/sagegate/sagegate"
# GitHub code scanning ranks security results by this property (0-10).
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}
STYLES = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def _level(severity: str, fail_on: str) -> str:
    if at_least(severity, fail_on):
        return "error"
    return "warning" if SEVERITY_RANK[severity] >= SEVERITY_RANK["medium"] else "note"


def _default_level(severity: str) -> str:
    return {"critical": "error", "high": "error", "medium": "warning"}.get(severity, "note")


# ---- JSON ------------------------------------------------------------------------------------------

def to_json(result: GateResult) -> dict[str, Any]:
    return {
        "tool": TOOL_NAME,
        "verdict": result.verdict,
        "exit_code": result.exit_code,
        "fail_on": result.fail_on,
        "template_sha256": result.template_sha256,
        "counts": result.counts,
        "suppressed": len(result.suppressed),
        "checkov": {"ran": result.checkov_ran},
        "cost": result.cost,
        "findings": [f.as_dict() for f in result.active],
        "suppressed_findings": [f.as_dict() for f in result.suppressed],
        "rules": [{"id": r.rule_id, "engine": r.engine, "severity": r.severity, "title": r.title,
                   "remediation": r.remediation} for r in result.rules.values()],
        "evaluated": len(result.evaluations),
    }


# ---- SARIF -----------------------------------------------------------------------------------------

def _fingerprint(finding: Finding) -> str:
    return hashlib.sha256(f"{finding.rule_id}|{finding.resource}|{finding.config_key}".encode()).hexdigest()[:32]


def to_sarif(result: GateResult, locator: Callable[[str], ConfLocation] | None = None,
             repo_root: Path = CONF_DIR.parent) -> dict[str, Any]:
    """SARIF 2.1.0: one rule entry per id, results located at the conf file and key."""
    locator = locator or (lambda key: locate(key))
    rule_ids = sorted(result.rules)
    index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
    rules = []
    for rule_id in rule_ids:
        info = result.rules[rule_id]
        entry: dict[str, Any] = {
            "id": rule_id,
            "name": "".join(w.capitalize() for w in info.title.replace("'", "").split()[:8]) or rule_id,
            "shortDescription": {"text": info.title or rule_id},
            "help": {"text": info.remediation or info.title or rule_id},
            "defaultConfiguration": {"level": _default_level(info.severity)},
            "properties": {"engine": info.engine, "severity": info.severity,
                           "security-severity": SECURITY_SEVERITY[info.severity],
                           "tags": ["security", info.engine]},
        }
        if info.help_uri:
            entry["helpUri"] = info.help_uri
        rules.append(entry)
    results = []
    for finding in result.active + result.suppressed:
        where = locator(finding.config_key) if finding.config_key else None
        location: dict[str, Any] = {"logicalLocations": [
            {"name": finding.resource, "kind": "resource"},
            *([{"fullyQualifiedName": finding.config_key, "kind": "member"}] if finding.config_key else []),
        ]}
        if where is not None:
            physical: dict[str, Any] = {"artifactLocation": {"uri": where.path, "uriBaseId": "%SRCROOT%"}}
            if where.line:
                physical["region"] = {"startLine": where.line}
            location["physicalLocation"] = physical
        entry = {
            "ruleId": finding.rule_id,
            "ruleIndex": index[finding.rule_id],
            "level": _level(finding.severity, result.fail_on),
            "message": {"text": f"{finding.resource}: {finding.message}"},
            "locations": [location],
            "partialFingerprints": {"sagegate/v1": _fingerprint(finding)},
            "properties": {"severity": finding.severity, "engine": finding.engine, "resource": finding.resource,
                           "configKey": finding.config_key, "remediation": finding.remediation},
        }
        if finding.suppressed:
            entry["suppressions"] = [{"kind": "external", "status": "accepted",
                                      "justification": finding.suppression_reason or ""}]
        results.append(entry)
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": TOOL_NAME, "version": TOOL_VERSION, "informationUri": TOOL_URI,
                                "rules": rules}},
            "invocations": [{"executionSuccessful": True, "exitCode": result.exit_code}],
            "originalUriBaseIds": {"%SRCROOT%": {"uri": repo_root.resolve().as_uri() + "/"}},
            "results": results,
            "columnKind": "unicodeCodePoints",
            "properties": {"verdict": result.verdict, "failOn": result.fail_on, "counts": result.counts},
        }],
    }


# ---- JUnit -----------------------------------------------------------------------------------------

def to_junit(result: GateResult) -> str:
    """One test case per rule x resource; a failure for each finding at or above fail_on, a
    skipped case for a suppressed one; findings below fail_on pass with their text in system-out."""
    by_case: dict[tuple[str, str], list[Finding]] = {}
    for finding in result.findings:
        by_case.setdefault((finding.rule_id, finding.resource), []).append(finding)
    cases: dict[tuple[str, str], str] = {}
    for evaluation in result.evaluations:
        cases.setdefault((evaluation.rule_id, evaluation.resource), evaluation.engine)
    for finding in result.findings:
        cases.setdefault((finding.rule_id, finding.resource), finding.engine)

    root = ET.Element("testsuites", name="sagegate policy gate")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for engine in ("sagegate", "checkov"):
        keys = sorted(k for k, e in cases.items() if e == engine)
        if not keys:
            continue
        suite = ET.SubElement(root, "testsuite", name=f"policy.{engine}")
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        for rule_id, resource in keys:
            info = result.rules.get(rule_id)
            case = ET.SubElement(suite, "testcase", classname=f"policy.{engine}.{rule_id}",
                                 name=f"{rule_id} {resource}" + (f" ({info.title})" if info and info.title else ""))
            counts["tests"] += 1
            findings = by_case.get((rule_id, resource), [])
            active = [f for f in findings if not f.suppressed]
            blocking = [f for f in active if at_least(f.severity, result.fail_on)]
            if blocking:
                counts["failures"] += 1
                failure = ET.SubElement(case, "failure", type=blocking[0].severity,
                                        message="; ".join(f.message for f in blocking)[:1000])
                failure.text = "\n".join(f"[{f.severity}] {f.message}\nconfig: {f.config_key}\nfix: {f.remediation}"
                                         for f in blocking)
            elif findings and not active:
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=f"suppressed: {findings[0].suppression_reason or ''}")
            elif active:
                out = ET.SubElement(case, "system-out")
                out.text = "\n".join(f"[{f.severity}, below fail_on={result.fail_on}] {f.message}" for f in active)
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("errors", "0")
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---- files and console ---------------------------------------------------------------------------------

def write_reports(result: GateResult, out_dir: Path,
                  locator: Callable[[str], ConfLocation] | None = None) -> dict[str, Path]:
    policy_dir = Path(out_dir) / "policy"
    policy_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": policy_dir / "report.json", "sarif": policy_dir / "report.sarif",
             "junit": policy_dir / "junit.xml"}
    paths["json"].write_text(json.dumps(to_json(result), indent=2) + "\n")
    paths["sarif"].write_text(json.dumps(to_sarif(result, locator), indent=2) + "\n")
    paths["junit"].write_text(to_junit(result))
    return paths


def counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{counts.get(s, 0)} {s}" for s in reversed(SEVERITIES))


def cost_text(cost: Mapping[str, Any] | None) -> str:
    if not cost:
        return ""
    parts = [f"endpoint ${cost['endpoint_monthly_min']:,.0f}-${cost['endpoint_monthly_max']:,.0f}/month"]
    if cost.get("training_job"):
        parts.append(f"training job <= ${cost['training_job']:,.2f}")
    if cost.get("tuning_job"):
        parts.append(f"tuning <= ${cost['tuning_job']:,.2f}")
    if cost.get("provisioned_concurrency_monthly"):
        parts.append(f"provisioned concurrency ${cost['provisioned_concurrency_monthly']:,.2f}/month")
    if cost.get("notebook_monthly"):
        parts.append(f"notebook ${cost['notebook_monthly']:,.2f}/month")
    return " · ".join(parts) + f" ({cost.get('price_snapshot', '')})"


def verdict_line(result: GateResult) -> str:
    word = "PASS" if result.verdict == "pass" else "FAIL"
    suppressed = f", {len(result.suppressed)} suppressed" if result.suppressed else ""
    checkov = "" if result.checkov_ran else " · checkov not run"
    line = f"policy gate {word}: {counts_text(result.counts)}{suppressed} (fail_on={result.fail_on}){checkov}"
    cost = cost_text(result.cost)
    return line + (f" · {cost}" if cost else "")


def print_console(console: Console, result: GateResult) -> None:
    from rich.table import Table

    active = result.active
    if active:
        table = Table(title="policy findings", show_lines=False, expand=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("rule", no_wrap=True)
        table.add_column("resource", overflow="fold", ratio=1)
        table.add_column("config key", overflow="fold", ratio=1)
        table.add_column("finding", overflow="fold", ratio=3)
        current = None
        for finding in active:
            if current is not None and finding.severity != current:
                table.add_section()
            current = finding.severity
            table.add_row(f"[{STYLES[finding.severity]}]{finding.severity}[/]", finding.rule_id, finding.resource,
                          finding.config_key, finding.message)
        console.print(table)
    for finding in result.blocking[:5]:
        console.print(f"  fix {finding.rule_id}: {finding.remediation}", soft_wrap=True, highlight=False)
    style = "bold green" if result.verdict == "pass" else "bold red"
    console.print(f"[{style}]{verdict_line(result)}[/]", soft_wrap=True, highlight=False)
