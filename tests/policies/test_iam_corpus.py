"""The analyser over a corpus of real-world IAM policies no one here wrote (tests/data/iam_corpus,
sources in its SOURCES.md): every escalation policy flagged, false alarms on at most 3 % of the
benign ones.

- flagged: an escalation-class issue, i.e. SG-IAM-006 (a privilege-escalation path, any severity:
  medium means the path runs through named resources) or SG-IAM-001 at critical (``*`` on ``*``).
- false alarm: an escalation-class issue at high or critical (what fails the gate at its default
  fail_on=high) on a benign policy. Other findings on benign policies (``Resource: *`` on write
  actions, ``s3:*``...) are least-privilege findings, not escalation alarms; their count is printed
  by scripts/iam_corpus_compare.py and given in docs/iam-analysis.md.
- named_target/: policies whose catalogued path goes through iam:PassRole or sts:AssumeRole on
  named roles only; whether they escalate depends on those roles, which the policy does not show.
  They are in neither figure.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policies.__main__ import issues_in
from policies.iam_analyzer import IamIssue

CORPUS = Path(__file__).resolve().parents[1] / "data" / "iam_corpus"
TARGET_FALSE_ALARM_RATE = 0.03  # issue 12's bar
# Measured: 2 of 117 (1.7 %). Both are paths the policies really open: `ec2:*` on `*` without a
# condition allows ec2-004 (a new launch template version for instances that run as a role); the
# MFA Deny of one of them covers StopInstances (ec2-002) but not the launch template. Paths through
# existing compute narrowed by a Condition or a name prefix are medium (as SG-IAM-003): the ec2:*
# example limited to one region and AWSControlTowerServiceRolePolicy's UpdateStack on
# AWSControlTower* stacks.
KNOWN_FALSE_ALARMS = {"aws-docs-ec2_require-mfa.json", "aws-docs-iam_multiple-services-console.json"}


def escalation_issues(path: Path) -> list[IamIssue]:
    return [i for _, i in issues_in(json.loads(path.read_text()))
            if i.rule_id == "SG-IAM-006" or (i.rule_id == "SG-IAM-001" and i.severity == "critical")]


def files(kind: str) -> list[Path]:
    return sorted((CORPUS / kind).glob("*.json"))


def test_corpus_is_there_with_its_sources():
    assert len(files("escalation")) >= 80 and len(files("benign")) >= 100
    sources = (CORPUS / "SOURCES.md").read_text()
    for kind in ("escalation", "benign", "named_target"):
        for path in files(kind):
            assert path.name in sources, f"{kind}/{path.name} has no source in SOURCES.md"


def test_every_escalation_is_flagged():
    missed = [p.name for p in files("escalation") if not escalation_issues(p)]
    assert missed == []


def test_false_alarms_on_benign_policies():
    benign = files("benign")
    alarms = {p.name for p in benign if any(i.severity in ("high", "critical") for i in escalation_issues(p))}
    assert alarms <= KNOWN_FALSE_ALARMS, alarms - KNOWN_FALSE_ALARMS
    assert len(alarms) <= TARGET_FALSE_ALARM_RATE * len(benign)


@pytest.mark.parametrize("name", ["iamvulnerable-fp1-allow-and-deny.json", "iamvulnerable-fp3-deny-iam.json",
                                  "iamvulnerable-fp4-nonExploitableResourceConstraint.json",
                                  "iamvulnerable-fp5-nonExploitableConditionConstraint.json"])
def test_iam_vulnerable_false_positive_cases_are_clean(name):
    """BishopFox's tool-testing cases built to trip analysers: no escalation issue at any severity."""
    assert escalation_issues(CORPUS / "benign" / name) == []
