"""AWS::IAM::Role for each declared role that an active part uses (and the EC2 instance profile)."""

from __future__ import annotations

from typing import Any

from runner.stack import iam_policies
from runner.stack.model import Resource
from runner.stack.parts import StackParts


def _camel(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_"))


def build_roles(parts: StackParts) -> list[Resource]:
    settings, names = parts.settings, parts.names
    resources: list[Resource] = []
    for role_key, role in settings.iam.roles.items():
        if not parts.parts.intersection(role.used_by):
            continue
        logical_id = f"Role{_camel(role_key)}"
        parts.role_ids[role_key] = logical_id
        props: dict[str, Any] = {
            "RoleName": names.role_name(role_key),
            "Description": f"sagegate {settings.name}: {role_key} (used by {', '.join(role.used_by)})",
            "AssumeRolePolicyDocument": iam_policies.trust_policy(role.trust),
            "Policies": [{"PolicyName": f"{role_key}-scopes",
                          "PolicyDocument": iam_policies.role_policy(role_key, role, names,
                                                                     parts.dlc_repositories)}],
            "MaxSessionDuration": 3600,
            "Tags": parts.tags,
        }
        if role.managed_policy_arns:
            props["ManagedPolicyArns"] = list(role.managed_policy_arns)
        resources.append(Resource(logical_id, "AWS::IAM::Role", props, config_key=f"iam.roles.{role_key}"))
    return resources


def build_instance_profile(parts: StackParts) -> list[Resource]:
    """The EC2 training instance runs as its role through an instance profile of the same name."""
    if "ec2_training" not in parts.parts:
        return []
    role_key = parts.role_key_for("ec2_training")
    role_name = parts.names.role_name(role_key)
    return [Resource("InstanceProfileEc2Training", "AWS::IAM::InstanceProfile", {
        "InstanceProfileName": role_name,
        "Roles": [role_name],
    }, depends_on=[parts.role_ids[role_key]], config_key=f"iam.roles.{role_key}")]
