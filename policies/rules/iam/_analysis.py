"""The IAM analysis the least-privilege rules share: every role and policy of the stack through
the analyser, once per evaluation, each issue pointing at the config key it came from."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from policies.iam_analyzer import (
    IamIssue,
    analyze_managed_policies,
    analyze_permissions,
    analyze_trust_policy,
)
from policies.rules.base import Context, Outcome, Rule
from runner.stack.model import Resource

# Which service assumes a role, by the part of the stack that uses it.
TRUST_BY_USE = {
    "training": "sagemaker.amazonaws.com",
    "endpoint": "sagemaker.amazonaws.com",
    "notebook": "sagemaker.amazonaws.com",
    "function": "lambda.amazonaws.com",
    "ec2_training": "ec2.amazonaws.com",
}
POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
MEMO_KEY = "iam"


@dataclass(frozen=True)
class PrincipalIssues:
    resource: str
    config_key: str
    issues: list[tuple[IamIssue, str]]  # (issue, config key it points at)


def _role_key(resource: Resource) -> str | None:
    prefix = "iam.roles."
    return resource.config_key[len(prefix):] if resource.config_key.startswith(prefix) else None


def scope_keys(ctx: Context, role_key: str | None) -> dict[str, str]:
    """Statement Sid -> the scope it was expanded from (runner/stack/iam_policies.py names them so)."""
    role = ctx.settings.iam.roles.get(role_key) if role_key else None
    if role is None:
        return {}
    return {f"{scope.service.capitalize()}{i}".replace("-", ""): f"iam.roles.{role_key}.scopes[{i}]"
            for i, scope in enumerate(role.scopes)}


def _role_issues(ctx: Context, resource: Resource) -> PrincipalIssues:
    props = resource.properties
    role_key = _role_key(resource)
    base = resource.config_key or f"iam.roles.{role_key}"
    sids = scope_keys(ctx, role_key)
    issues: list[tuple[IamIssue, str]] = []
    documents = [p["PolicyDocument"] for p in props.get("Policies", []) if "PolicyDocument" in p]
    for issue in analyze_permissions(documents):
        issues.append((issue, sids.get(issue.statement or "", f"{base}.scopes")))
    role = ctx.settings.iam.roles.get(role_key) if role_key else None
    expected = {TRUST_BY_USE[u] for u in role.used_by if u in TRUST_BY_USE} if role else None
    if "AssumeRolePolicyDocument" in props:
        for issue in analyze_trust_policy(props["AssumeRolePolicyDocument"], expected):
            issues.append((issue, f"{base}.trust"))
    for issue in analyze_managed_policies(props.get("ManagedPolicyArns", [])):
        issues.append((issue, f"{base}.managed_policy_arns"))
    return PrincipalIssues(resource.logical_id, base, issues)


def principal_issues(ctx: Context) -> list[PrincipalIssues]:
    """Every role and policy document of the stack with its issues (analysed once per context)."""
    memo = ctx.memo.get(MEMO_KEY)
    if memo is not None:
        return memo
    out = []
    for resource in ctx.stack.resources:
        if resource.type == "AWS::IAM::Role":
            out.append(_role_issues(ctx, resource))
        elif resource.type in POLICY_TYPES:
            document = resource.properties.get("PolicyDocument", {})
            base = resource.config_key or "iam"
            out.append(PrincipalIssues(resource.logical_id, base,
                                       [(issue, base) for issue in analyze_permissions([document])]))
    ctx.memo[MEMO_KEY] = out
    return out


class AnalyserRule(Rule):
    """A least-privilege rule: the analyser's issues carrying this rule's id, per principal."""

    def check(self, ctx: Context) -> Iterator[Outcome]:
        for principal in principal_issues(ctx):
            mine = [(issue, key) for issue, key in principal.issues if issue.rule_id == self.id]
            if not mine:
                yield self.outcome(principal.resource, config_key=principal.config_key)
            for issue, key in mine:
                yield self.outcome(principal.resource, issue.message, config_key=key, severity=issue.severity)
