"""The IAM analysis the least-privilege rules share (policies/rules/iam/_analysis.py): every role
and policy once per evaluation, each issue pointing at the config key it came from."""

from __future__ import annotations

from policy_helpers import make

from policies.rules.base import Context
from policies.rules.iam import _analysis
from policies.rules.iam._analysis import principal_issues, scope_keys
from policies.rules.registry import all_rules
from runner.stack.model import Resource

TWO_SCOPES = ('iam.roles.lambda_invoke.scopes=[{service:sagemaker,actions:[InvokeEndpoint],resources:[endpoint]},'
              '{service:s3,actions:[PutObject],resources:["*"]}]')


def context(*overrides: str) -> Context:
    i = make(*overrides)
    return Context(i.settings, i.stack, i.costs)


def test_every_role_is_a_principal_and_the_shipped_ones_are_clean():
    ctx = context()
    principals = principal_issues(ctx)
    assert [p.resource for p in principals] == [r.logical_id for r in ctx.stack.find("AWS::IAM::Role")]
    assert all(p.config_key.startswith("iam.roles.") and not p.issues for p in principals)


def test_an_issue_points_at_the_scope_it_came_from():
    ctx = context(TWO_SCOPES)
    assert scope_keys(ctx, "lambda_invoke") == {"Sagemaker0": "iam.roles.lambda_invoke.scopes[0]",
                                                "S31": "iam.roles.lambda_invoke.scopes[1]"}
    [principal] = [p for p in principal_issues(ctx) if p.resource == "RoleLambdaInvoke"]
    assert {(issue.rule_id, key) for issue, key in principal.issues} == {
        ("SG-IAM-003", "iam.roles.lambda_invoke.scopes[1]")}


def test_trust_expects_the_service_of_each_use():
    ctx = context("iam.roles.lambda_invoke.trust=sagemaker.amazonaws.com")
    [principal] = [p for p in principal_issues(ctx) if p.resource == "RoleLambdaInvoke"]
    assert [(i.rule_id, key) for i, key in principal.issues] == [("SG-IAM-007", "iam.roles.lambda_invoke.trust")]
    assert "expected lambda.amazonaws.com" in principal.issues[0][0].message


def test_policy_documents_are_principals_too():
    ctx = context()
    ctx.stack.resources.append(Resource("ExtraPolicy", "AWS::IAM::ManagedPolicy", {
        "PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*",
                                                                    "Resource": "*"}]}}))
    [extra] = [p for p in principal_issues(ctx) if p.resource == "ExtraPolicy"]
    assert extra.config_key == "iam" and "SG-IAM-001" in {i.rule_id for i, _ in extra.issues}


def test_the_stack_is_analysed_once_for_all_iam_rules(monkeypatch):
    calls = []
    real = _analysis.analyze_permissions
    monkeypatch.setattr(_analysis, "analyze_permissions", lambda docs: calls.append(1) or real(docs))
    ctx = context()
    for rule in all_rules():
        if rule.area == "IAM":
            list(rule.check(ctx))
    assert len(calls) == len(ctx.stack.find("AWS::IAM::Role"))
