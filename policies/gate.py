"""The policy gate: native rules and checkov, suppressions, one verdict, the reports.

``evaluate`` is pure and fast (no process, no file): the native rules on the stack plus whatever
checkov findings it is given. ``run_gate`` renders the template, gets checkov's answer (from a
sweep's cache or one warm checkov process), evaluates, writes ``policy/report.json``,
``policy/report.sarif`` and ``policy/junit.xml``, and prints the table and the verdict.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from policies.checkov.runner import (
    CheckovScan,
    load_cached,
    render_template,
    scan_templates,
    store_cached,
    template_key,
)
from policies.checkov.severity import POLICY_INDEX, remediation_for, severity_for
from policies.model import (
    EXIT_PASS,
    EXIT_VIOLATIONS,
    SEVERITIES,
    Evaluation,
    Finding,
    GateError,
    GateResult,
    RuleInfo,
    at_least,
    most_severe,
)
from policies.rules.base import Context, Outcome, Rule
from policies.rules.registry import all_rules
from runner.core.cost import CostSummary
from runner.core.settings import Settings
from runner.stack.model import Stack

__all__ = [
    "Finding", "GateError", "GateResult", "RuleInfo", "Evaluation", "evaluate", "run_gate", "template_key",
    "render_template", "POLICY_RULES",
]

# sagegate's custom checkov checks and the native rules they mirror on the template: when both
# fire on one resource, the report keeps the native finding (and says checkov agrees).
TWINS = {"CKV_SG_001": "SG-SAN-006", "CKV_SG_002": "SG-COST-001"}

POLICY_RULES = {
    "SG-POL-001": RuleInfo("SG-POL-001", "sagegate", "critical", "Suppression without a reason",
                           "Give every entry of policy.suppress a reason: why the finding does not apply here."),
    "SG-POL-002": RuleInfo("SG-POL-002", "sagegate", "low", "Suppression matches no finding",
                           "Remove the stale entry from policy.suppress (or fix its id/resource)."),
}

logger = logging.getLogger(__name__)


def _outcomes(rule: Rule, ctx: Context) -> list[Outcome]:
    """The rule's outcomes. A rule that raises has not decided: that is one violation of the rule
    (on the whole stack, at its severity or high, whichever is higher), never a pass nor a crash;
    the traceback goes to the debug log."""
    try:
        return list(rule.check(ctx))
    except Exception as exc:  # any bug in a rule must fail the gate, not the run
        logger.debug("rule %s raised", rule.id, exc_info=True)
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return [Outcome(ctx.stack.name, rule.config_key, f"rule {rule.id} raised {error} — treated as a violation",
                        most_severe(rule.severity, "high"))]


def _native(ctx: Context, rules: Sequence[Rule]) -> tuple[list[Finding], list[Evaluation], dict[str, RuleInfo]]:
    findings: list[Finding] = []
    evaluations: list[Evaluation] = []
    infos: dict[str, RuleInfo] = {}
    for rule in rules:
        infos[rule.id] = RuleInfo(rule.id, "sagegate", rule.severity, rule.title, rule.remediation)
        for outcome in _outcomes(rule, ctx):
            evaluations.append(Evaluation(rule.id, "sagegate", outcome.resource, outcome.passed))
            if outcome.message is not None:
                findings.append(Finding(
                    rule_id=rule.id, engine="sagegate", severity=outcome.severity or rule.severity,
                    resource=outcome.resource, config_key=outcome.config_key or rule.config_key,
                    message=outcome.message, remediation=rule.remediation, title=rule.title,
                ))
    return findings, evaluations, infos


def _apply_suppressions(settings: Settings, findings: list[Finding], checkov_ran: bool) -> list[Finding]:
    """Mark suppressed findings; return the findings about the suppressions themselves."""
    extra: list[Finding] = []
    for i, entry in enumerate(settings.policy.suppress):
        key = f"policy.suppress[{i}]"
        reason = (entry.reason or "").strip()
        if not reason:
            info = POLICY_RULES["SG-POL-001"]
            extra.append(Finding("SG-POL-001", "sagegate", info.severity, entry.id, key,
                                 f"suppression of {entry.id}" + (f" on {entry.resource}" if entry.resource else "")
                                 + " has no reason; it is not applied", info.remediation, title=info.title))
            continue
        matched = [f for f in findings if f.rule_id == entry.id and entry.resource in (None, f.resource)]
        for finding in matched:
            finding.suppressed = True
            finding.suppression_reason = reason
        from_checkov = entry.id.startswith("CKV")
        if not matched and (checkov_ran or not from_checkov):
            info = POLICY_RULES["SG-POL-002"]
            extra.append(Finding("SG-POL-002", "sagegate", info.severity, entry.id, key,
                                 f"suppression of {entry.id}" + (f" on {entry.resource}" if entry.resource else "")
                                 + " matches no finding", info.remediation, title=info.title))
    return extra


def evaluate(settings: Settings, stack: Stack, costs: CostSummary, checkov_findings: list[Finding] | None = None, *,
             checkov_passed: Iterable[tuple[str, str]] = (), checkov_titles: Mapping[str, str] | None = None,
             rules: Sequence[Rule] | None = None) -> GateResult:
    """Native rules (+ the given checkov findings), suppressions applied. ``checkov_findings``
    None means checkov did not run (its suppressions are then not reported as unused). ``rules``
    defaults to every registered rule (``policies.rules.registry.all_rules()``)."""
    ctx = Context(settings, stack, costs)
    findings, evaluations, infos = _native(ctx, all_rules() if rules is None else rules)
    config_keys = {r.logical_id: r.config_key for r in stack.resources}
    config_keys.update({j.logical_id: j.config_key for j in stack.jobs})
    native = {(f.rule_id, f.resource): f for f in findings}
    for finding in checkov_findings or []:
        twin = native.get((TWINS.get(finding.rule_id, ""), finding.resource))
        if twin is not None:
            twin.message += f" (checkov {finding.rule_id} agrees)"
            continue
        copy = Finding(**finding.as_dict())
        copy.config_key = copy.config_key or config_keys.get(copy.resource, "")
        findings.append(copy)
        evaluations.append(Evaluation(copy.rule_id, "checkov", copy.resource, False))
        if copy.rule_id not in infos:
            infos[copy.rule_id] = RuleInfo(copy.rule_id, "checkov", copy.severity, copy.title or copy.rule_id,
                                           copy.remediation, POLICY_INDEX)
    for check_id, resource in checkov_passed:
        twin = native.get((TWINS.get(check_id, ""), resource))
        if twin is not None:  # the engines disagree: keep the native finding, show checkov's pass
            twin.message += f" (checkov {check_id} passed it)"
        evaluations.append(Evaluation(check_id, "checkov", resource, True))
        title = (checkov_titles or {}).get(check_id, check_id)
        infos.setdefault(check_id, RuleInfo(check_id, "checkov", severity_for(check_id), title,
                                            remediation_for(check_id, title), POLICY_INDEX))
    extra = _apply_suppressions(settings, findings, checkov_findings is not None)
    findings.extend(extra)
    infos.update({f.rule_id: POLICY_RULES[f.rule_id] for f in extra})

    fail_on = settings.policy.fail_on
    active = [f for f in findings if not f.suppressed]
    counts = {severity: sum(1 for f in active if f.severity == severity) for severity in reversed(SEVERITIES)}
    failing = any(at_least(f.severity, fail_on) for f in active)
    return GateResult(
        findings=findings, verdict="fail" if failing else "pass", counts=counts,
        exit_code=EXIT_VIOLATIONS if failing else EXIT_PASS, fail_on=fail_on, rules=infos,
        evaluations=evaluations, checkov_ran=checkov_findings is not None,
        cost=costs.as_dict() if hasattr(costs, "as_dict") else None,
        simulation=_simulated_summary(ctx),
    )


def _simulated_summary(ctx: Context) -> dict[str, Any] | None:
    """The summary of the day the capacity rules simulated (policies/rules/capacity), if they did."""
    simulation = ctx.memo.get("capacity", (None,))[0]
    return None if simulation is None else simulation.as_dict()["summary"]


def checkov_scan(settings: Settings, stack: Stack, checkov_cache_dir: Path | None = None) -> CheckovScan:
    """checkov's answer for this stack: from the cache when a sweep already scanned it, else one
    warm checkov process (stored in the cache when there is one)."""
    template = render_template(settings, stack)
    key = template_key(template)
    if checkov_cache_dir is not None:
        cached = load_cached(checkov_cache_dir, template)
        if cached is not None:
            return cached
    scan = scan_templates({key: template}, settings.policy.checkov.timeout_s)[key]
    if checkov_cache_dir is not None:
        store_cached(checkov_cache_dir, key, scan)
    return scan


def _choices() -> Mapping[str, str] | None:
    try:
        from hydra.core.hydra_config import HydraConfig
    except ImportError:  # pragma: no cover - hydra is a dependency
        return None
    if not HydraConfig.initialized():
        return None
    return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if "/" not in k and "hydra" not in k}


def run_gate(settings: Settings, stack: Stack, costs: CostSummary, out_dir: Path, console: Console | None = None, *,
             checkov_cache_dir: Path | None = None, choices: Mapping[str, str] | None = None) -> GateResult:
    """The whole gate for one configuration. Raises ``GateError`` (exit 2) when checkov cannot
    give an answer; the error is written to ``policy/report.json`` too."""
    from policies.locate import locate
    from policies.report import print_console, write_reports

    scan: CheckovScan | None = None
    if settings.policy.checkov.enabled:
        try:
            scan = checkov_scan(settings, stack, checkov_cache_dir)
        except GateError as exc:
            _write_error(out_dir, exc)
            if console is not None:
                console.print(f"[bold red]policy gate ERROR:[/] {exc}", soft_wrap=True, highlight=False)
            raise
    result = evaluate(settings, stack, costs, scan.findings if scan else None,
                      checkov_passed=scan.passed if scan else (), checkov_titles=scan.titles if scan else None)
    result.template_sha256 = hashlib.sha256(stack.template_json()).hexdigest()
    chosen = choices if choices is not None else _choices()
    write_reports(result, out_dir, locator=lambda key: locate(key, chosen))
    if console is not None and not console.quiet:  # a sweep job's console is quiet: rich would render for nothing
        print_console(console, result)
    return result


def _write_error(out_dir: Path, exc: GateError) -> None:
    import json

    policy_dir = Path(out_dir) / "policy"
    policy_dir.mkdir(parents=True, exist_ok=True)
    (policy_dir / "report.json").write_text(json.dumps(
        {"tool": "sagegate", "verdict": "error", "exit_code": exc.exit_code, "error": str(exc)}, indent=2) + "\n")
