"""What every SG-AWS rule shares: a row of AWS's rule table (runner/core/aws_rules.py) checked
on the stack's resource whose create request the row's operation is.

The CloudFormation properties of these types are the API's members, so a resource's properties
are read as its create request. What AWS would look up besides the request (the role's
permissions, the models an endpoint config names) comes from the stack itself; what the stack
cannot tell (a managed policy's statements) is unknown here and left to the target, which checks
it when the request is sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from policies.rules.base import Context, Outcome, Rule
from runner.core import aws_rules
from runner.stack.model import Resource, Stack

# The resource whose create request each operation is.
RESOURCE_TYPES = {
    "sagemaker:CreateNotebookInstance": "AWS::SageMaker::NotebookInstance",
    "sagemaker:CreateEndpointConfig": "AWS::SageMaker::EndpointConfig",
    "lambda:CreateFunction": "AWS::Lambda::Function",
}


class StackWorld:
    """What the rules look up, answered from the stack (None where only the target can tell)."""

    def __init__(self, stack: Stack) -> None:
        self.roles = {str(r.properties.get("RoleName")): r for r in stack.find("AWS::IAM::Role")}
        self.models = {str(r.properties.get("ModelName")): r.properties for r in stack.find("AWS::SageMaker::Model")}

    def role_of(self, role_arn: str) -> Resource | None:
        return self.roles.get(role_arn.rsplit("/", 1)[-1])

    def role_allows(self, role_arn: str, action: str) -> bool | None:
        role = self.role_of(role_arn)
        if role is None:
            return None
        inline = [p["PolicyDocument"] for p in role.properties.get("Policies", [])]
        if aws_rules.policy_documents_allow(inline, action):
            return True
        # A managed policy's statements are not in the stack: only the target can tell.
        return None if role.properties.get("ManagedPolicyArns") else False

    def model(self, name: str) -> Mapping[str, Any] | None:
        return self.models.get(name)

    def vpc_of(self, resource_id: str) -> str | None:
        return None


class AwsRequestRule(Rule):
    """A row of the table; a subclass names its row (``row = aws_rules.rule("SG-AWS-NNN")``) and
    takes its id, title, config key and remediation from it."""

    row: ClassVar[aws_rules.AwsRule]
    severity = "critical"  # AWS refuses the request: nothing about it is a matter of policy

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if "row" in vars(cls):
            cls.id, cls.title, cls.config_key, cls.remediation = (
                cls.row.id, cls.row.title, cls.row.config_key, cls.row.remediation)
        super().__init_subclass__(**kwargs)

    def check(self, ctx: Context) -> Iterator[Outcome]:
        world = ctx.memo.setdefault("aws-world", StackWorld(ctx.stack))
        operation = self.row.operation
        for resource in ctx.stack.find(RESOURCE_TYPES[operation]):
            problem = self.row.problem(resource.properties, world)
            if problem is None:
                yield self.outcome(resource.logical_id)
                continue
            # A role that lacks a permission: point at that role's scopes.
            role = world.role_of(str(resource.properties.get("Role", "")))
            key = f"{role.config_key}.scopes" if role is not None and role.config_key else None
            yield self.outcome(resource.logical_id, f"{operation.split(':')[1]} would be refused "
                               f"({self.row.error_code}): {problem}", config_key=key)
