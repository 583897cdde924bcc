"""IAM is eventually consistent on AWS; the local target makes it so too.

On AWS a new role, or a policy just put on a role, takes seconds to reach the services that use
it, and they answer meanwhile with errors that read as permanent (Lambda: "The role defined for
the function cannot be assumed by Lambda.", "The provided execution role does not have permissions
to call PutTraceSegments on XRAY"; SageMaker: "Could not assume role <arn>. Please ensure that the
role exists and allows principal 'sagemaker.amazonaws.com' to assume the role."). moto applies
every IAM change at once, so a deploy that forgets to wait works locally and fails on AWS.

``IamPropagation`` is the emulator's clock for that: ``GapFiller`` (runner/targets/moto_gaps.py)
hands it each role or role-policy change (CreateRole, PutRolePolicy, AttachRolePolicy,
UpdateAssumeRolePolicy, DeleteRolePolicy, DetachRolePolicy) with the role as it was just before,
and asks it, when a service is about to use a role, what the role looks like *as of now*: the role
before the earliest change younger than ``delay_s`` (None when that change created it), else the
role as moto holds it. The delay is fixed (no jitter), so a run is reproducible; 0 turns it off. A
change takes the delay in force when it is made (changing the delay later does not move it).
"""

from __future__ import annotations

import fnmatch
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

# The IAM calls that change what a role is or may do (IAM API reference).
ROLE_CHANGES = frozenset({"CreateRole", "PutRolePolicy", "AttachRolePolicy", "UpdateAssumeRolePolicy",
                          "DeleteRolePolicy", "DetachRolePolicy"})

# The environment variable an emulator reads its delay from when it is given none.
DELAY_ENV = "SAGEGATE_IAM_PROPAGATION_S"


@dataclass(frozen=True)
class RoleView:
    """What a service sees of a role: its trust policy and its permission policy documents."""

    trust: Any  # the AssumeRolePolicyDocument (a JSON text or a parsed document)
    documents: tuple[Any, ...] = ()  # inline and attached (default version) policy documents


@dataclass
class _Change:
    effective_at: float  # when the services see it (the delay is fixed when the change is made)
    before: RoleView | None  # None: the change created the role


@dataclass
class IamPropagation:
    """Role and role-policy changes per (account, role name), and what is effective as of now."""

    delay_s: float = 0.0
    clock: Callable[[], float] = time.monotonic
    _changes: dict[tuple[str, str], list[_Change]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, account: str, role_name: str, before: RoleView | None) -> None:
        """A change to the role has just been made; ``before`` is the role as it was (None: new)."""
        with self._lock:
            self._changes.setdefault((account, role_name), []).append(_Change(self.clock() + self.delay_s, before))

    def pending(self, account: str, role_name: str) -> bool:
        """Whether a change to the role has not reached the services yet."""
        return self._earliest_pending(account, role_name) is not None

    def view(self, account: str, role_name: str, current: Callable[[], RoleView | None]) -> RoleView | None:
        """The role as the services see it now (None: they do not know it); ``current`` reads the
        role as IAM holds it, which is what they see once every change has propagated."""
        change = self._earliest_pending(account, role_name)
        return change.before if change is not None else current()

    def reset(self) -> None:
        with self._lock:
            self._changes.clear()

    def _earliest_pending(self, account: str, role_name: str) -> _Change | None:
        now = self.clock()
        with self._lock:
            changes = self._changes.get((account, role_name), [])
            changes[:] = [c for c in changes if c.effective_at > now]  # the rest are effective
            return changes[0] if changes else None


def role_name_of(role: str) -> str:
    """A role's name from its ARN (arn:aws:iam::<account>:role/<path/>name) or from a name."""
    return role.rsplit("/", 1)[-1] if role.startswith("arn:") else role


def trusts(view: RoleView, service_principal: str) -> bool:
    """Whether the trust policy lets ``service_principal`` (e.g. lambda.amazonaws.com) call
    sts:AssumeRole, with no Deny of it (conditions are not evaluated)."""
    document = view.trust
    parsed = json.loads(unquote(document)) if isinstance(document, str) else (document or {})
    statements = parsed.get("Statement", [])
    allowed = False
    for statement in [statements] if isinstance(statements, dict) else statements:
        actions = statement.get("Action", [])
        if not any(fnmatch.fnmatchcase("sts:assumerole", str(a).lower())
                   for a in ([actions] if isinstance(actions, str) else actions)):
            continue
        if not _names_principal(statement.get("Principal"), service_principal):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _names_principal(principal: Any, service_principal: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    if principal.get("AWS") == "*":
        return True
    services = principal.get("Service", [])
    return service_principal in ([services] if isinstance(services, str) else list(_strings(services)))


def _strings(values: Iterable[Any]) -> Iterable[str]:
    return (str(v) for v in values)
