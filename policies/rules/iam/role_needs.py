"""SG-IAM-009: a role lacks a permission a configured feature needs at run time.

Each part of the stack declares the calls its service makes with the part's role
(runner/stack/needs.py, with the page that says so); AWS checks none of them when the role or
the resource is created, so a model whose role cannot read its artifact is created and fails
when the endpoint starts. The role's inline policies are evaluated as IAM would (runner/core/
iam_eval.py); a role with managed policies is judged by its inline ones only when they suffice.
"""

from __future__ import annotations

from collections.abc import Iterator

from policies.rules.base import Context, Outcome, Rule
from runner.core import iam_eval
from runner.stack.parts import active_parts


def role_documents(ctx: Context) -> dict[str, tuple[str, list[dict], bool]]:
    """Role key -> (logical id, inline policy documents, has managed policies), for the stack's roles."""
    found = {}
    for resource in ctx.stack.find("AWS::IAM::Role"):
        key = resource.config_key.rsplit(".", 1)[-1]
        documents = [p["PolicyDocument"] for p in resource.properties.get("Policies", [])]
        found[key] = (resource.logical_id, documents, bool(resource.properties.get("ManagedPolicyArns")))
    return found


class RoleNeeds(Rule):
    id = "SG-IAM-009"
    severity = "high"
    title = "Role lacks a permission a configured feature needs"
    config_key = "iam.roles.<role>.scopes"
    remediation = "Add the named action on the named resource to the role's scopes (the source page says why)."

    def check(self, ctx: Context) -> Iterator[Outcome]:
        active = active_parts(ctx.settings)
        for key, (logical_id, documents, managed) in role_documents(ctx).items():
            served = [part for part in ctx.settings.iam.roles[key].used_by if part in active]
            lacking = [n for n in ctx.stack.needs if n.part in served
                       and not iam_eval.allows(documents, n.action, n.resource, n.context)]
            if managed:  # a managed policy may grant them: only the target can tell
                lacking = []
            if not lacking:
                yield self.outcome(logical_id, config_key=f"iam.roles.{key}.scopes")
                continue
            for need in lacking:
                yield self.outcome(logical_id, f"role {key} lacks {need.action} on {need.resource}, which "
                                   f"{need.part} needs to {need.feature} ({need.source})",
                                   config_key=f"iam.roles.{key}.scopes")
