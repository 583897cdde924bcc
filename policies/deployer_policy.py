"""The deployer's own policy: what the identity that runs sagegate (a CI role) must be allowed, nothing more.

The statements are the grants runner/stack/deployer_calls.py declares for one stack (the calls the
deploy, its reads, the sweeper and destroy make, on this stack's ARNs), each checked against the
IAM catalogue (policies/iam_catalog.py): every action exists and takes every resource of its
statement (an ARN of one of its resource types, or "*" only for an action that has none), and
every condition key is one the action supports or a global one.
"""

from __future__ import annotations

from typing import Any

from policies.iam_catalog import Catalog, load_catalog
from runner.stack.deployer_calls import Grant, deployer_grants
from runner.stack.model import Stack

VERSION = "2012-10-17"


def statement(grant: Grant) -> dict[str, Any]:
    result: dict[str, Any] = {"Sid": grant.sid, "Effect": "Allow", "Action": sorted(set(grant.actions)),
                              "Resource": list(grant.resources) if len(grant.resources) > 1 else grant.resources[0]}
    if grant.condition:
        result["Condition"] = grant.condition
    return result


def document(grants: list[Grant]) -> dict[str, Any]:
    sids = [g.sid for g in grants]
    duplicated = sorted({s for s in sids if sids.count(s) > 1})
    if duplicated:
        raise ValueError(f"deployer grants share a Sid: {', '.join(duplicated)}")
    return {"Version": VERSION, "Statement": [statement(g) for g in grants]}


def deployer_policy(stack: Stack, *, delete_artifacts: bool = False) -> dict[str, Any]:
    """The policy document for the identity that deploys and destroys ``stack``."""
    return document(deployer_grants(stack, delete_artifacts=delete_artifacts))


def problems(policy: dict[str, Any], catalog: Catalog | None = None) -> list[str]:
    """What the IAM catalogue says is wrong with the policy's statements ([] when nothing)."""
    catalog = catalog or load_catalog()
    found = []
    for entry in policy["Statement"]:
        resources = entry["Resource"] if isinstance(entry["Resource"], list) else [entry["Resource"]]
        keys = {key for operator in entry.get("Condition", {}).values() for key in operator}
        for action in entry["Action"]:
            info = catalog.get(action)
            if info is None:
                found.append(f"{entry['Sid']}: {action} is not in the IAM catalogue")
                continue
            for resource in resources:
                if not info.takes(resource):
                    kinds = ", ".join(rt.name for rt in info.resource_types) or '"*" only'
                    found.append(f"{entry['Sid']}: {action} does not take {resource} (it takes {kinds})")
            supported = set(info.condition_keys) | {k for rt in info.resource_types for k in rt.condition_keys}
            for key in keys:
                if not key.startswith("aws:") and key not in supported:
                    found.append(f"{entry['Sid']}: {action} does not support the condition key {key}")
    return found
