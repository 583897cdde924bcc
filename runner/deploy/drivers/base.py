"""What every resource driver is: read live state, create, update, delete, and what counts as a change.

A driver never decides order or rollback (the executor does); it does record what it creates the
moment the creating call returns (``ctx.created``), so a failure one call later is rolled back too,
and how to put back what it changes *before* the changing call (``ctx.moved``): a call whose answer
is lost (the change happened, the client saw an error) is undone like one that returned. An undo
therefore restores a state, it does not replay a call: it reads first and changes only what differs.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.core.errors import UserError
from runner.core.names import STACK_TAG, ResourceNames
from runner.stack.model import physical_name
from runner.targets import Target

# A value that exists only once the resource does (e.g. a Lambda version number), in plans.
PENDING = "(known after apply)"


class ForeignResourceError(UserError):
    """A resource with this stack's name exists but is not tagged as this stack's."""


class WaitTimeout(UserError):
    """A resource did not reach the wanted state in time."""


@dataclass
class Live:
    """A resource as it exists: its identity (what delete needs), comparable state, and owner."""

    type: str
    name: str
    key: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)
    owner: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.type} {self.name}"


Undo = Callable[[], None]


class DriverContext:
    """What drivers need from a run: clients, the stack's name and names, and the journal."""

    def __init__(self, target: Target, stack_name: str, names: ResourceNames, progress: Callable[[str], None] | None = None,
                 on_created: Callable[[Live], None] | None = None, wait_timeout_s: float = 3600,
                 on_moved: Callable[[str, Undo], None] | None = None):
        self.target = target
        self.stack_name = stack_name
        self.names = names
        self._progress = progress
        self._on_created = on_created
        self._on_moved = on_moved
        self.wait_timeout_s = wait_timeout_s

    def client(self, service: str) -> Any:
        return self.target.client(service)

    def created(self, live: Live) -> None:
        if self._on_created:
            self._on_created(live)

    def moved(self, description: str, undo: Undo) -> None:
        """About to change an existing resource: ``undo`` restores what ``description`` says (it is
        recorded before the change, so it must be harmless when the change never happened)."""
        if self._on_moved:
            self._on_moved(description, undo)

    def progress(self, message: str) -> None:
        if self._progress:
            self._progress(message)

    def wait(self, what: str, check: Callable[[], bool], delay_s: float = 5.0, timeout_s: float | None = None) -> None:
        """Poll ``check`` until it is true, with a deadline; no sleep when it is true at once."""
        deadline = time.monotonic() + (timeout_s or self.wait_timeout_s)
        announced = False
        while not check():
            if time.monotonic() > deadline:
                raise WaitTimeout(f"timed out waiting for {what}")
            if not announced:
                self.progress(f"waiting for {what}")
                announced = True
            time.sleep(delay_s)


class Driver:
    """One resource kind. ``tagged``: ownership is checked on the resource's own tags."""

    type: str = ""
    tagged: bool = True
    # Properties whose change needs a new resource (delete + create under the same name).
    replace_on: frozenset[str] = frozenset()
    # The live resource's name is the one to show (e.g. a Lambda version's number).
    named_by_live: bool = False
    # Must be registered again when the endpoint it belongs to moves to a new config (AWS requires it).
    reregistered_on_endpoint_update: bool = False

    def name(self, props: dict[str, Any]) -> str | None:
        """The resource's name in plans and reports."""
        return physical_name(props)

    def describe(self, props: dict[str, Any]) -> str:
        """The values that matter for one resource of this kind, on a line or a few (plans)."""
        return ""

    def reconfigures_endpoint(self, details: list[str]) -> bool:
        """Whether an update with these changed properties moves an endpoint to a new config."""
        return False

    def read(self, ctx: DriverContext, props: dict[str, Any]) -> Live | None:
        raise NotImplementedError

    def read_named(self, ctx: DriverContext, name: str) -> Live | None:
        """The live resource of this kind called ``name`` (None when there is none)."""
        raise NotImplementedError

    def desired_state(self, props: dict[str, Any]) -> dict[str, Any]:
        """The desired properties in the shape ``read`` reports them."""
        return {k: v for k, v in props.items() if k != "Tags"} | {"Tags": tag_dict(props.get("Tags"))}

    def diff(self, props: dict[str, Any], live: Live) -> list[str]:
        desired = self.desired_state(props)
        return sorted(k for k in desired if normalise(desired[k]) != normalise(live.state.get(k)))

    def create(self, ctx: DriverContext, props: dict[str, Any]) -> Live:
        raise NotImplementedError

    def update(self, ctx: DriverContext, props: dict[str, Any], live: Live, details: list[str]) -> None:
        """Change ``live`` in place; what a rollback must put back is recorded with ``ctx.moved``."""
        raise NotImplementedError

    def delete(self, ctx: DriverContext, live: Live) -> None:
        raise NotImplementedError

    def discover(self, ctx: DriverContext) -> list[Live]:
        """Every resource of this kind that belongs to the stack (for the sweeper and destroy)."""
        return []

    def predecessor(self, ctx: DriverContext, props: dict[str, Any]) -> Live | None:
        """For content-addressed names: the live resource the desired one replaces."""
        return None


def tag_dict(tags: Mapping[str, object] | Iterable[Mapping[str, object]] | None) -> dict[str, str]:
    """Tags as a dict, from either AWS form ({key: value} or [{"Key": k, "Value": v}])."""
    if not tags:
        return {}
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t["Key"]): str(t["Value"]) for t in tags}


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def owner_of(tags: Mapping[str, object] | Iterable[Mapping[str, object]] | None) -> str | None:
    return tag_dict(tags).get(STACK_TAG)


def normalise(value: Any) -> Any:
    """Compare JSON documents by content: ints and floats alike, strings holding JSON parsed."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("{"):
            try:
                return normalise(json.loads(stripped))
            except ValueError:
                return value
        return value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items() if v not in (None, {}, [])}
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    return value


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def aws_message(exc: Exception) -> str:
    """The message of AWS's error answer ('' for an exception that is not one)."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Message", ""))


def is_not_found(exc: Exception, *messages: str) -> bool:
    code = error_code(exc)
    if code in ("NoSuchEntity", "ResourceNotFoundException", "NotFound", "404", "NoSuchBucket",
                "ProvisionedConcurrencyConfigNotFoundException", "ObjectNotFound"):
        return True
    message = aws_message(exc).lower()
    return code in ("ValidationException", "ValidationError") and any(m in message for m in messages or ("could not find",))


# IAM is eventually consistent: a role created or changed a moment ago may not have reached the
# service yet, which answers meanwhile with an error that reads as permanent (docs/aws-rules.md):
PROPAGATION_MESSAGES = (
    "cannot be assumed",  # Lambda: "The role defined for the function cannot be assumed by Lambda."
    "could not assume role",  # SageMaker: "Could not assume role <arn>. Please ensure that the role exists ..."
    "not authorized to perform: sts:assumerole",
    # Lambda: "The provided execution role does not have permissions to call PutTraceSegments on XRAY"
    # (retried only while the role, as IAM reports it, does allow the call: see role_grants)
    "does not have permissions to call",
)
# How long a create or update keeps retrying those (0: not at all), and the longest pause between tries.
PROPAGATION_TIMEOUT_S = 90.0
PROPAGATION_DELAY_S = 3.0
_MISSING_PERMISSION = re.compile(r"does not have permissions to call (\w+) on (\w+)", re.IGNORECASE)


def still_propagating(ctx: DriverContext | None, exc: Exception, role_arn: str | None = None) -> bool:
    """Whether ``exc`` is a service's answer about a role that may not have propagated yet. A missing
    permission counts only when the role (as IAM itself reports it) allows the call: otherwise it is
    simply missing, and waiting would not help."""
    message = aws_message(exc)
    if not any(m in message.lower() for m in PROPAGATION_MESSAGES):
        return False
    missing = _MISSING_PERMISSION.search(message)
    if missing is None:
        return True
    if ctx is None or not role_arn:
        return False
    return role_grants(ctx, role_arn, f"{missing.group(2).lower()}:{missing.group(1)}")


def role_grants(ctx: DriverContext, role_arn: str, action: str) -> bool:
    """Whether the role's inline and attached policies, as IAM returns them, allow ``action`` (True
    when IAM cannot be read: the caller then retries within its bound, as for any propagation)."""
    from runner.core.aws_rules import policy_documents_allow

    iam = ctx.client("iam")
    name = role_arn.rsplit("/", 1)[-1]
    try:
        documents = [iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
                     for page in iam.get_paginator("list_role_policies").paginate(RoleName=name)
                     for policy in page["PolicyNames"]]
        for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
            for attached in page["AttachedPolicies"]:
                version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
                documents.append(iam.get_policy_version(PolicyArn=attached["PolicyArn"],
                                                        VersionId=version)["PolicyVersion"]["Document"])
    except Exception:  # no read access to IAM: cannot tell, so treat it as propagation
        return True
    return policy_documents_allow(documents, action)


def retry_while_propagating(ctx: DriverContext | None, what: str, call: Callable[[], Any], *,
                            role_arn: str | None = None, say: Callable[[str], None] | None = None,
                            timeout_s: float | None = None, delay_s: float | None = None) -> Any:
    """``call()``, retried while the service answers that a just-created or just-changed role cannot
    be used yet (``PROPAGATION_MESSAGES``), for at most ``timeout_s`` (``PROPAGATION_TIMEOUT_S``),
    pausing 1, 2, ... up to ``delay_s`` seconds between tries; each wait is shown (``ctx.progress``
    or ``say``). ``role_arn``: the role the request names (to tell a missing permission from a
    permission not yet propagated)."""
    timeout = PROPAGATION_TIMEOUT_S if timeout_s is None else timeout_s
    longest = PROPAGATION_DELAY_S if delay_s is None else delay_s
    deadline = time.monotonic() + timeout
    tries = 0
    while True:
        try:
            return call()
        except Exception as exc:
            if time.monotonic() >= deadline or not still_propagating(ctx, exc, role_arn):
                raise
            tries += 1
            pause = min(longest, float(tries), max(0.0, deadline - time.monotonic()))
            message = (f"{what}: {aws_message(exc)} — IAM changes take seconds to propagate; retrying in "
                       f"{pause:.1f}s (try {tries + 1}, up to {timeout:.0f}s)")
            if ctx is not None:
                ctx.progress(message)
            if say is not None:
                say(message)
            time.sleep(pause)
