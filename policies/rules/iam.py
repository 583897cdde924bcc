"""Least privilege: the stack's roles through the IAM analyser (policies/iam_analyzer.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from policies.iam_analyzer import (
    IAM_RULES,
    IamIssue,
    analyze_managed_policies,
    analyze_permissions,
    analyze_trust_policy,
)
from policies.rules import Context, Outcome, Rule
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


@dataclass(frozen=True)
class PrincipalIssues:
    resource: str
    config_key: str
    issues: list[tuple[IamIssue, str]]  # (issue, config key it points at)


def _role_key(resource: Resource) -> str | None:
    prefix = "iam.roles."
    return resource.config_key[len(prefix):] if resource.config_key.startswith(prefix) else None


def _scope_keys(ctx: Context, role_key: str | None) -> dict[str, str]:
    """Statement Sid -> the scope it was expanded from (runner/iam.py names them so)."""
    role = ctx.settings.iam.roles.get(role_key) if role_key else None
    if role is None:
        return {}
    return {f"{scope.service.capitalize()}{i}".replace("-", ""): f"iam.roles.{role_key}.scopes[{i}]"
            for i, scope in enumerate(role.scopes)}


def _analyse(ctx: Context) -> list[PrincipalIssues]:
    memo = ctx.memo.get("iam")
    if memo is not None:
        return memo
    out = []
    for resource in ctx.stack.resources:
        if resource.type == "AWS::IAM::Role":
            props = resource.properties
            role_key = _role_key(resource)
            base = resource.config_key or f"iam.roles.{role_key}"
            sids = _scope_keys(ctx, role_key)
            issues: list[tuple[IamIssue, str]] = []
            documents = [p["PolicyDocument"] for p in props.get("Policies", []) if "PolicyDocument" in p]
            for issue in analyze_permissions(documents):
                key = sids.get(issue.statement or "", f"{base}.scopes")
                issues.append((issue, key))
            role = ctx.settings.iam.roles.get(role_key) if role_key else None
            expected = {TRUST_BY_USE[u] for u in role.used_by if u in TRUST_BY_USE} if role else None
            if "AssumeRolePolicyDocument" in props:
                for issue in analyze_trust_policy(props["AssumeRolePolicyDocument"], expected):
                    issues.append((issue, f"{base}.trust"))
            for issue in analyze_managed_policies(props.get("ManagedPolicyArns", [])):
                issues.append((issue, f"{base}.managed_policy_arns"))
            out.append(PrincipalIssues(resource.logical_id, base, issues))
        elif resource.type in POLICY_TYPES:
            document = resource.properties.get("PolicyDocument", {})
            base = resource.config_key or "iam"
            out.append(PrincipalIssues(resource.logical_id, base,
                                       [(issue, base) for issue in analyze_permissions([document])]))
    ctx.memo["iam"] = out
    return out


def _check_for(rule_id: str) -> Callable[[Context], Iterable[Outcome]]:
    def check(ctx: Context) -> Iterable[Outcome]:
        for principal in _analyse(ctx):
            mine = [(issue, key) for issue, key in principal.issues if issue.rule_id == rule_id]
            if not mine:
                yield Outcome(principal.resource, principal.config_key)
            for issue, key in mine:
                yield Outcome(principal.resource, key, issue.message, issue.severity)

    check.__name__ = f"check_{rule_id.replace('-', '_').lower()}"
    return check


_CONFIG_KEYS = {
    "SG-IAM-004": "iam.roles.<role>.managed_policy_arns",
    "SG-IAM-007": "iam.roles.<role>.trust",
}

RULES = tuple(
    Rule(meta.rule_id, meta.severity, meta.title, _CONFIG_KEYS.get(meta.rule_id, "iam.roles.<role>.scopes"),
         meta.remediation, _check_for(meta.rule_id))
    for meta in IAM_RULES.values()
)
