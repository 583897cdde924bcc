"""The records the gate shares (policies/model.py): severities (the schema's one list), the
threshold, and a result's views of its findings."""

from __future__ import annotations

import pytest

from policies import model
from policies.model import SEVERITIES, Finding, GateResult, at_least, most_severe
from runner.core import settings


def test_the_severities_are_the_schemas():
    assert model.SEVERITIES is settings.SEVERITIES
    assert SEVERITIES == ("info", "low", "medium", "high", "critical")


@pytest.mark.parametrize("severity, threshold, expected", [
    ("high", "high", True), ("critical", "high", True), ("medium", "high", False), ("info", "info", True),
])
def test_at_least(severity, threshold, expected):
    assert at_least(severity, threshold) is expected


def test_most_severe():
    assert most_severe("medium", "high") == "high"
    assert most_severe("critical", "high") == "critical"
    assert most_severe("low") == "low"


def finding(rule_id: str, severity: str, resource: str = "R", suppressed: bool = False) -> Finding:
    return Finding(rule_id, "sagegate", severity, resource, "k", "m", "r.", suppressed=suppressed)


def test_result_views():
    findings = [finding("SG-A-001", "low"), finding("SG-B-001", "critical"), finding("SG-C-001", "high"),
                finding("SG-D-001", "critical", suppressed=True)]
    result = GateResult(findings, "fail", {}, 1, fail_on="high")
    assert [f.rule_id for f in result.active] == ["SG-B-001", "SG-C-001", "SG-A-001"]
    assert [f.rule_id for f in result.blocking] == ["SG-B-001", "SG-C-001"]
    assert [f.rule_id for f in result.suppressed] == ["SG-D-001"]
    top = result.top_finding()
    assert top is not None and top.rule_id == "SG-B-001"
    assert GateResult([], "pass", {}, 0).top_finding() is None
    assert finding("SG-A-001", "low").as_dict()["rule_id"] == "SG-A-001"
