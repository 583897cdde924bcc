"""SG-IAM-010: a role grants a permission that no feature of the parts it serves needs.

IAM Access Analyzer reports these as unused permissions: least privilege means the role holds the
needs of its parts (runner/stack/needs.py) and nothing more. A permission counts as used when some
need of the role's parts (configured or not: a role is shared by the parts its ``used_by`` names)
is one of its actions on one of its resources.
"""

from __future__ import annotations

from collections.abc import Iterator

from policies.rules.base import Context, Outcome, Rule
from policies.rules.iam.role_needs import role_documents
from runner.core import iam_eval


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


class UnusedPermissions(Rule):
    id = "SG-IAM-010"
    severity = "low"
    title = "Role grants a permission no feature needs"
    config_key = "iam.roles.<role>.scopes"
    remediation = "Remove the action or resource from the role's scopes, or declare the feature that needs it."

    def check(self, ctx: Context) -> Iterator[Outcome]:
        for key, (logical_id, documents, _managed) in role_documents(ctx).items():
            served = set(ctx.settings.iam.roles[key].used_by)
            needs = [n for n in ctx.stack.needs if n.part in served]
            unused = []
            for statement in iam_eval.statements(documents):
                if statement.get("Effect") != "Allow" or "Action" not in statement or "Resource" not in statement:
                    continue
                for action in _as_list(statement["Action"]):
                    for resource in _as_list(statement["Resource"]):
                        narrowed = {**statement, "Action": action, "Resource": resource}
                        if not any(iam_eval.statement_matches(narrowed, n.action, n.resource, n.context) for n in needs):
                            unused.append(f"{action} on {resource}")
            if unused:
                yield self.outcome(logical_id, f"role {key} grants what none of {', '.join(sorted(served))} needs: "
                                   + "; ".join(unused), config_key=f"iam.roles.{key}.scopes")
            else:
                yield self.outcome(logical_id, config_key=f"iam.roles.{key}.scopes")
