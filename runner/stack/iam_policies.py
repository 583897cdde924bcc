"""IAM policy documents: declared scopes expanded into statements with exact ARNs.

A scope names resources as things of this stack (``endpoint``, ``artifacts``, ``role:<key>``…);
``ResourceNames`` knows what each of them is called in this account and region, so the
expanded policy never contains a wildcard that the user did not write.
"""

from __future__ import annotations

from runner.core.names import ResourceNames
from runner.core.settings import RoleSettings, Scope


def trust_policy(service_principal: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service_principal}, "Action": "sts:AssumeRole"}
        ],
    }


def scope_statement(scope: Scope, names: ResourceNames, sid: str, dlc_repositories: tuple[str, ...]) -> dict:
    resources: list[str] = []
    for reference in scope.resources:
        for arn in names.arn(reference, dlc_repositories):
            if arn not in resources:
                resources.append(arn)
    statement: dict = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": [f"{scope.service}:{action}" for action in scope.actions],
        "Resource": resources if len(resources) > 1 else resources[0],
    }
    if scope.conditions:
        statement["Condition"] = {op: dict(values) for op, values in scope.conditions.items()}
    return statement


def role_policy(role_key: str, role: RoleSettings, names: ResourceNames, dlc_repositories: tuple[str, ...]) -> dict:
    """The inline policy document of one declared role."""
    statements = []
    for i, scope in enumerate(role.scopes):
        sid = f"{scope.service.capitalize()}{i}".replace("-", "")
        statements.append(scope_statement(scope, names, sid, dlc_repositories))
    return {"Version": "2012-10-17", "Statement": statements}
