"""The records every part of the gate shares: findings, rule outcomes, the gate's result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from runner.core.settings import SEVERITIES

__all__ = ["SEVERITIES", "SEVERITY_RANK", "EXIT_PASS", "EXIT_VIOLATIONS", "EXIT_GATE_ERROR", "GateError", "at_least",
           "most_severe", "Finding", "RuleInfo", "Evaluation", "GateResult"]

# The severities (the schema's list, policy.fail_on's choices), least severe first.
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

EXIT_PASS = 0
EXIT_VIOLATIONS = 1
EXIT_GATE_ERROR = 2


class GateError(Exception):
    """The gate could not decide (checkov missing, crashed, timed out, unparsable, UNKNOWN).

    Never a pass: the CLI exits 2.
    """

    exit_code = EXIT_GATE_ERROR


def at_least(severity: str, threshold: str) -> bool:
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[threshold]


def most_severe(*severities: str) -> str:
    """``most_severe("medium", "high")`` -> ``"high"``."""
    return max(severities, key=SEVERITY_RANK.__getitem__)


@dataclass
class Finding:
    rule_id: str
    engine: str  # "sagegate" | "checkov"
    severity: str  # info | low | medium | high | critical
    resource: str  # logical id (or job logical id, or file for scan-iam)
    config_key: str
    message: str
    remediation: str
    suppressed: bool = False
    suppression_reason: str | None = None
    title: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RuleInfo:
    """What a report says about a rule id: one entry per id (SARIF rules, JSON report)."""

    rule_id: str
    engine: str
    severity: str
    title: str
    remediation: str
    help_uri: str | None = None


@dataclass(frozen=True)
class Evaluation:
    """One rule applied to one resource (a JUnit test case); ``passed`` is False for a finding."""

    rule_id: str
    engine: str
    resource: str
    passed: bool


@dataclass
class GateResult:
    findings: list[Finding]
    verdict: str  # "pass" | "fail"
    counts: dict[str, int]  # by severity, unsuppressed
    exit_code: int  # 0 pass, 1 violations, 2 gate error
    fail_on: str = "high"
    rules: dict[str, RuleInfo] = field(default_factory=dict)
    evaluations: list[Evaluation] = field(default_factory=list)
    checkov_ran: bool = False
    cost: dict[str, Any] | None = None
    # sha256 of the exact template scanned (template.json's bytes): CI can prove that what was
    # deployed is what was gated.
    template_sha256: str | None = None
    # With an SLO set: the simulated day's summary the SG-CAP rules judged (docs/capacity.md).
    simulation: dict[str, Any] | None = None

    @property
    def active(self) -> list[Finding]:
        """Unsuppressed findings, most severe first."""
        return sorted((f for f in self.findings if not f.suppressed),
                      key=lambda f: (-SEVERITY_RANK[f.severity], f.rule_id, f.resource))

    @property
    def suppressed(self) -> list[Finding]:
        return [f for f in self.findings if f.suppressed]

    @property
    def blocking(self) -> list[Finding]:
        """Unsuppressed findings at or above ``fail_on``: the ones that stop the run."""
        return [f for f in self.active if at_least(f.severity, self.fail_on)]

    def top_finding(self) -> Finding | None:
        active = self.active
        return active[0] if active else None
