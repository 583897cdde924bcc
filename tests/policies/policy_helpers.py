"""Shared helpers: settings, stack and costs of a configuration composed exactly as main.py does,
and the passing/failing cases every rule's test module declares."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from policies.checkov.runner import CheckovScan
from policies.gate import GateResult, evaluate
from policies.model import Finding
from policies.rules.base import Rule
from policies.rules.registry import all_rules
from runner.app.compose import compose_settings
from runner.core.cost import CostSummary
from runner.core.settings import Settings
from runner.stack.build import build_stack
from runner.stack.model import Stack

# The insecure overrides the gate must refuse, with the rule ids they must raise.
WILDCARD_SCOPES = 'iam.roles.lambda_invoke.scopes=[{service:sagemaker,actions:["*"],resources:["*"]}]'
FULL_ACCESS = '+iam.roles.sagemaker_execution.managed_policy_arns=["arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"]'
HUGE_ENDPOINT = "endpoint.variants.AllTraffic.instance_type=ml.p3.2xlarge"  # $3.825/h, not in the hosting allow-list
PROVISIONED_OVER_BUDGET = ("function.reserved_concurrency=50", "function.provisioned_concurrency=40")
# Production with its training volume key dropped: the shipped preset asks for a KMS key on
# ml.g4dn.xlarge, which SageMaker rejects (SG-SAN-008; see test_policy_gate.py).
PRODUCTION = ("experiment=production", "training.volume_kms_key_id=null")
# A notebook without direct internet access needs a subnet and security groups (SG-AWS-001/002).
NOTEBOOK = ("notebook=t3_medium", "notebook.subnet_id=subnet-0123456789abcdef0",
            "notebook.security_group_ids=[sg-0123456789abcdef0]")
INSECURE = (HUGE_ENDPOINT, WILDCARD_SCOPES, FULL_ACCESS, "function.reserved_concurrency=500",
            *NOTEBOOK, "notebook.instance_type=ml.t3.xlarge")
# SageMaker training on its default ml.g4dn.xlarge: no KMS key on local instance storage.
SM = ("training=sagemaker", "training.volume_kms_key_id=null")
SARIF_SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@lru_cache(maxsize=64)
def _settings(overrides: tuple[str, ...]) -> Settings:
    return compose_settings(overrides)


@dataclass
class GateInputs:
    settings: Settings
    stack: Stack
    costs: CostSummary


def make(*overrides: str) -> GateInputs:
    """A fresh (mutable) settings/stack/costs triple for the overrides."""
    settings = copy.deepcopy(_settings(tuple(overrides)))
    stack = build_stack(settings)
    return GateInputs(settings, stack, stack.cost(settings.pricing))


def ids(findings) -> set[str]:
    """Rule ids of the unsuppressed findings."""
    return {f.rule_id for f in findings if not f.suppressed}


def by_rule(result, rule_id: str) -> list:
    return [f for f in result.active if f.rule_id == rule_id]


def failed(scan: CheckovScan) -> set[tuple[str, str]]:
    """(check id, resource) of every check checkov failed."""
    return {(f.rule_id, f.resource) for f in scan.findings}


# ---- one rule, one case ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """A configuration for one rule: config overrides as a user writes them and, where the schema
    cannot produce the bad shape (the rules are defence in depth on the stack that will be sent),
    an edit of the built stack. ``severity`` and ``resource`` are what a failing case must report."""

    overrides: tuple[str, ...] = ()
    mutate: Callable[[Stack], None] | None = None
    severity: str | None = None
    resource: str | None = None
    config_key: str | None = None
    note: str = ""

    def __str__(self) -> str:  # the test id
        return (self.note or "-".join(self.overrides) or "default")[:80]


def rule(rule_id: str) -> Rule:
    return next(r for r in all_rules() if r.id == rule_id)


def evaluate_case(rule_id: str, case: Case) -> GateResult:
    """The gate with one rule on the case's configuration."""
    inputs = make(*case.overrides)
    if case.mutate:
        case.mutate(inputs.stack)
    return evaluate(inputs.settings, inputs.stack, inputs.costs, rules=[rule(rule_id)])


def assert_fails(rule_id: str, case: Case) -> list[Finding]:
    result = evaluate_case(rule_id, case)
    mine = by_rule(result, rule_id)
    assert mine, f"{rule_id} did not fire on {case}"
    if case.severity:
        assert {f.severity for f in mine} == {case.severity}
    if case.resource:
        assert {f.resource for f in mine} == {case.resource}
    if case.config_key:
        assert {f.config_key for f in mine} == {case.config_key}
    assert all(f.message and f.remediation and f.config_key for f in mine)
    assert not [f for f in mine if f.message.startswith(f"rule {rule_id} raised")], mine
    return mine


def assert_passes(rule_id: str, case: Case) -> None:
    result = evaluate_case(rule_id, case)
    assert not [f for f in result.findings if f.rule_id == rule_id], [f.message for f in result.findings]
    # The rule looked at something: a pass is a checked resource, not a rule that never ran.
    assert any(e.rule_id == rule_id and e.passed for e in result.evaluations)


# ---- stack edits for shapes the schema never produces --------------------------------------------------

def job_request(stack: Stack, logical_id: str) -> dict:
    return next(j for j in stack.jobs if j.logical_id == logical_id).request


def role_policy(stack: Stack, logical_id: str) -> dict:
    return stack.resource(logical_id).properties["Policies"][0]["PolicyDocument"]


def widen_notebook_passrole(stack: Stack) -> None:
    """The notebook role's iam:PassRole on any role, for any service."""
    for statement in role_policy(stack, "RoleNotebook")["Statement"]:
        if "iam:PassRole" in statement["Action"]:
            statement["Resource"] = "*"
            statement.pop("Condition", None)
