"""AWS::IAM::Role (trust, inline policies, managed policies, tags) and AWS::IAM::InstanceProfile."""

from __future__ import annotations

import json
from typing import Any

from runner.core.names import STACK_TAG
from runner.deploy.drivers.base import (
    Driver,
    DriverContext,
    Live,
    is_not_found,
    owner_of,
    tag_dict,
    tag_list,
)


def _actions(document: dict[str, Any]) -> list[str]:
    """One line per statement of a policy document: its actions and how many resources."""
    lines = []
    for statement in document.get("Statement", []):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = statement.get("Resource", [])
        count = 1 if isinstance(resources, str) else len(resources)
        lines.append(f"{', '.join(actions)} on {count} resource{'s' if count != 1 else ''}")
    return lines


class RoleDriver(Driver):
    type = "AWS::IAM::Role"

    def describe(self, props: dict[str, Any]) -> str:
        principal = props["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"]
        scopes = [line for policy in props.get("Policies", []) for line in _actions(policy["PolicyDocument"])]
        return "\n".join([f"trusted by {principal}", *scopes, *props.get("ManagedPolicyArns", [])])

    def desired_state(self, props: dict[str, Any]) -> dict[str, Any]:
        return {
            "AssumeRolePolicyDocument": props["AssumeRolePolicyDocument"],
            "Description": props.get("Description", ""),
            "MaxSessionDuration": props.get("MaxSessionDuration", 3600),
            "Policies": {p["PolicyName"]: p["PolicyDocument"] for p in props.get("Policies", [])},
            "ManagedPolicyArns": sorted(props.get("ManagedPolicyArns", [])),
            "Tags": tag_dict(props.get("Tags")),
        }

    def read(self, ctx: DriverContext, props: dict[str, Any]) -> Live | None:
        return self.read_named(ctx, props["RoleName"])

    def read_named(self, ctx: DriverContext, name: str) -> Live | None:
        iam = ctx.client("iam")
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except iam.exceptions.NoSuchEntityException:
            return None
        tags = iam.list_role_tags(RoleName=name).get("Tags", [])
        policies = {}
        for policy_name in _all(iam, "list_role_policies", "PolicyNames", RoleName=name):
            policies[policy_name] = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
        managed = sorted(p["PolicyArn"] for p in _all(iam, "list_attached_role_policies", "AttachedPolicies",
                                                      RoleName=name))
        state = {
            "AssumeRolePolicyDocument": _document(role.get("AssumeRolePolicyDocument")),
            "Description": role.get("Description", ""),
            "MaxSessionDuration": role.get("MaxSessionDuration", 3600),
            "Policies": {k: _document(v) for k, v in policies.items()},
            "ManagedPolicyArns": managed,
            "Tags": tag_dict(tags),
        }
        return Live(self.type, name, {"RoleName": name}, state, owner_of(tags), {"Arn": role["Arn"]})

    def create(self, ctx: DriverContext, props: dict[str, Any]) -> Live:
        iam = ctx.client("iam")
        name = props["RoleName"]
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
                               Description=props.get("Description", ""),
                               MaxSessionDuration=props.get("MaxSessionDuration", 3600),
                               Tags=props.get("Tags", []))["Role"]
        live = Live(self.type, name, {"RoleName": name}, owner=ctx.stack_name, outputs={"Arn": role["Arn"]})
        ctx.created(live)
        for policy in props.get("Policies", []):
            iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"],
                                PolicyDocument=json.dumps(policy["PolicyDocument"]))
        for arn in props.get("ManagedPolicyArns", []):
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        return live

    def update(self, ctx: DriverContext, props: dict[str, Any], live: Live, details: list[str]) -> None:
        iam = ctx.client("iam")
        name = props["RoleName"]
        desired = self.desired_state(props)
        if "AssumeRolePolicyDocument" in details:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]))
        if "Description" in details or "MaxSessionDuration" in details:
            iam.update_role(RoleName=name, Description=desired["Description"],
                            MaxSessionDuration=desired["MaxSessionDuration"])
        if "Policies" in details:
            for policy_name, document in desired["Policies"].items():
                if live.state["Policies"].get(policy_name) != document:
                    iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document))
            for policy_name in set(live.state["Policies"]) - set(desired["Policies"]):
                iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
        if "ManagedPolicyArns" in details:
            for arn in set(desired["ManagedPolicyArns"]) - set(live.state["ManagedPolicyArns"]):
                iam.attach_role_policy(RoleName=name, PolicyArn=arn)
            for arn in set(live.state["ManagedPolicyArns"]) - set(desired["ManagedPolicyArns"]):
                iam.detach_role_policy(RoleName=name, PolicyArn=arn)
        if "Tags" in details:
            _retag(iam, "role", name, desired["Tags"], live.state["Tags"])
        return None

    def delete(self, ctx: DriverContext, live: Live) -> None:
        iam = ctx.client("iam")
        name = live.key["RoleName"]
        try:
            for profile in _all(iam, "list_instance_profiles_for_role", "InstanceProfiles", RoleName=name):
                iam.remove_role_from_instance_profile(InstanceProfileName=profile["InstanceProfileName"], RoleName=name)
            for policy_name in _all(iam, "list_role_policies", "PolicyNames", RoleName=name):
                iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
            for policy in _all(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=name):
                iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
            iam.delete_role(RoleName=name)
        except iam.exceptions.NoSuchEntityException:
            pass

    def discover(self, ctx: DriverContext) -> list[Live]:
        iam = ctx.client("iam")
        found = []
        for role in _all(iam, "list_roles", "Roles"):
            if role["RoleName"].startswith(f"{ctx.stack_name}-"):
                live = self.read_named(ctx, role["RoleName"])
                if live and live.owner == ctx.stack_name:
                    found.append(live)
        return found


class InstanceProfileDriver(Driver):
    type = "AWS::IAM::InstanceProfile"

    def describe(self, props: dict[str, Any]) -> str:
        return f"for EC2 instances, as role {', '.join(props['Roles'])}"

    def desired_state(self, props: dict[str, Any]) -> dict[str, Any]:
        return {"Roles": sorted(props.get("Roles", []))}

    def read(self, ctx: DriverContext, props: dict[str, Any]) -> Live | None:
        return self.read_named(ctx, props["InstanceProfileName"])

    def read_named(self, ctx: DriverContext, name: str) -> Live | None:
        iam = ctx.client("iam")
        try:
            profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        except iam.exceptions.NoSuchEntityException:
            return None
        tags = profile.get("Tags", [])
        state = {"Roles": sorted(r["RoleName"] for r in profile.get("Roles", []))}
        return Live(self.type, name, {"InstanceProfileName": name}, state, owner_of(tags), {"Arn": profile["Arn"]})

    def create(self, ctx: DriverContext, props: dict[str, Any]) -> Live:
        iam = ctx.client("iam")
        name = props["InstanceProfileName"]
        profile = iam.create_instance_profile(InstanceProfileName=name,
                                              Tags=[{"Key": STACK_TAG, "Value": ctx.stack_name}])["InstanceProfile"]
        live = Live(self.type, name, {"InstanceProfileName": name}, owner=ctx.stack_name,
                    outputs={"Arn": profile["Arn"]})
        ctx.created(live)
        for role in props.get("Roles", []):
            iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
        return live

    def update(self, ctx: DriverContext, props: dict[str, Any], live: Live, details: list[str]) -> None:
        iam = ctx.client("iam")
        name = props["InstanceProfileName"]
        for role in set(live.state["Roles"]) - set(props.get("Roles", [])):
            iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=role)
        for role in set(props.get("Roles", [])) - set(live.state["Roles"]):
            iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
        return None

    def delete(self, ctx: DriverContext, live: Live) -> None:
        iam = ctx.client("iam")
        name = live.key["InstanceProfileName"]
        try:
            profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
            for role in profile.get("Roles", []):
                iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=role["RoleName"])
            iam.delete_instance_profile(InstanceProfileName=name)
        except Exception as exc:
            if not is_not_found(exc):
                raise

    def discover(self, ctx: DriverContext) -> list[Live]:
        iam = ctx.client("iam")
        found = []
        for profile in _all(iam, "list_instance_profiles", "InstanceProfiles"):
            if profile["InstanceProfileName"].startswith(f"{ctx.stack_name}-"):
                live = self.read_named(ctx, profile["InstanceProfileName"])
                if live and live.owner == ctx.stack_name:
                    found.append(live)
        return found


def _document(value: Any) -> Any:
    if isinstance(value, str):
        from urllib.parse import unquote

        return json.loads(unquote(value))
    return value


def _all(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(key, []))
    return items


def _retag(iam: Any, kind: str, name: str, desired: dict[str, str], live: dict[str, str]) -> None:
    name_key = {"role": "RoleName"}[kind]
    removed = sorted(set(live) - set(desired))
    if removed:
        getattr(iam, f"untag_{kind}")(**{name_key: name}, TagKeys=removed)
    changed = {k: v for k, v in desired.items() if live.get(k) != v}
    if changed:
        getattr(iam, f"tag_{kind}")(**{name_key: name}, Tags=tag_list(changed))
