"""Requests AWS accepts: every request is checked against the installed botocore service model
before it leaves sagegate.

botocore's own ParamValidator checks only required members, types, ``min`` and documents
(``VALIDATED_METADATA_ATTRS`` in botocore/validate.py); AWS also enforces ``max``, ``enum`` and
``pattern``, and moto (the local target) enforces almost none of them. So a request the emulator
takes can still be refused by AWS minutes into a deploy. This module applies every constraint
the model carries, locally and before any network call.

Patterns are Java regular expressions (``\\p{L}``, UTF-16 surrogate ranges) matched against the
whole value, as Java's ``Matcher.matches()`` does; the ``regex`` package knows the Unicode
classes and ``fullmatch`` gives the whole-value semantics whether or not the pattern has anchors.
Java's POSIX classes (``\\p{Alnum}``, ``\\p{Print}``) are ASCII-only in Java but Unicode in
``regex``: there this check is more permissive than AWS, never stricter.
"""

from __future__ import annotations

import datetime
import decimal
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import botocore.session
import regex
from botocore.exceptions import ClientError
from botocore.model import OperationModel, Shape
from botocore.utils import parse_to_aware_datetime

from runner.core.errors import UserError

if TYPE_CHECKING:
    from runner.stack.model import Stack

_SHOWN = 80  # characters of a value quoted in a message


@dataclass(frozen=True)
class Violation:
    path: str  # e.g. ProductionVariants[0].VariantName
    rule: str  # required | unknown | type | min | max | enum | pattern
    message: str


class RequestRejected(UserError, ClientError):
    """A request the service model says AWS would refuse; nothing was sent.

    It is also the ``ClientError`` AWS answers with (code ``ValidationException``), so code that
    handles AWS's refusals takes the same path on both targets; printed, it is one line."""

    def __init__(self, violations: list[Violation], operation: str = "") -> None:
        self.violations = list(violations)
        text = (f"request refused before sending ({len(self.violations)} problem(s)): "
                + "; ".join(v.message for v in self.violations))
        ClientError.__init__(self, {"Error": {"Code": "ValidationException", "Message": text}}, operation)
        self.args = (text,)

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> Any:
        return (type(self), (self.violations, self.operation_name))


@functools.cache
def _service_model(service: str) -> Any:
    # Loading a model parses megabytes of JSON (sagemaker): once per service per process.
    return botocore.session.get_session().get_service_model(service)


@functools.cache
def _compiled(pattern: str) -> regex.Pattern[str] | None:
    # Java strings are UTF-16: a range of surrogate pairs (\uD800\uDC00-\uDBFF\uDFFF) means the
    # supplementary code points; Python strings hold those as single code points.
    java = regex.sub(r"\\u(D[89AB][0-9A-F]{2})\\u(D[C-F][0-9A-F]{2})",
                     lambda m: "\\U%08X" % (0x10000 + ((int(m[1], 16) - 0xD800) << 10) + int(m[2], 16) - 0xDC00),
                     pattern, flags=regex.IGNORECASE)
    try:
        return regex.compile(java)
    except regex.error:
        # Not a reason to block a request; the tests assert every pattern of the services
        # sagegate calls compiles, so this only happens for services it does not use.
        return None


def validate_request(service: str, operation: str, params: dict[str, Any]) -> list[Violation]:
    """Every way ``params`` breaks the installed model of ``service``'s ``operation`` (empty: valid)."""
    return validate_operation(_service_model(service).operation_model(operation), params)


def check_job_requests(stack: Stack) -> None:
    """The stack's job requests (CreateTrainingJob, RunInstances, ...) are sent as they are: raise
    ``RequestRejected`` (exit 2), before anything runs, for one the service model says AWS would refuse."""
    for job in stack.jobs:
        if not job.api:
            continue
        service, _, operation = str(job.api).partition(":")
        violations = validate_request(service, operation, job.request)
        if violations:
            raise RequestRejected(violations, operation)


def validate_operation(model: OperationModel, params: dict[str, Any]) -> list[Violation]:
    found: list[Violation] = []
    if model.input_shape is not None:
        _Walk(model.name, found).check(params, model.input_shape, "")
    elif params:
        found.append(Violation("", "unknown", f"{model.name}: takes no parameters, got {_show(params)}"))
    return found


def reject_invalid(params: dict[str, Any], model: OperationModel, **_: Any) -> None:
    """botocore ``before-parameter-build`` handler: raise before the request is built."""
    violations = validate_operation(model, params)
    if violations:
        raise RequestRejected(violations, model.name)


def install(client: Any) -> None:
    """Check every request of ``client`` before it is sent (idempotent)."""
    # The event is "before-parameter-build.<service id>.<Operation>"; the handler receives the
    # client's own OperationModel, so no second model is loaded and the name needs no parsing.
    # Registered last at the root so it sees the params after botocore's own handlers (e.g. the
    # idempotency tokens it fills in) changed them: exactly what will be serialised.
    client.meta.events.register_last("before-parameter-build", reject_invalid,
                                     unique_id="sagegate-request-validation")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "..."


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


_TYPES: dict[str, tuple[type, ...]] = {
    "structure": (dict,), "map": (dict,), "list": (list, tuple), "string": (str,), "boolean": (bool,),
    "integer": (int,), "long": (int,), "float": (float, int, decimal.Decimal),
    "double": (float, int, decimal.Decimal),
}


@dataclass
class _Walk:
    operation: str
    found: list[Violation]

    def report(self, path: str, rule: str, value: Any, shape: Shape | None, what: str) -> None:
        # Sensitive members (passwords, environment values) are never quoted into logs.
        shown = "<sensitive>" if shape is not None and shape.metadata.get("sensitive") else _show(value)
        self.found.append(Violation(path, rule, f"{self.operation}: {path or '(request)'} {shown} {what}"))

    def check(self, value: Any, shape: Shape, path: str) -> None:
        kind = shape.type_name
        if not self.has_type(value, shape, kind, path):
            return
        meta = shape.metadata
        if kind == "structure":
            for name in shape.required_members:
                if name not in value:
                    self.found.append(Violation(_child(path, name), "required",
                                                f"{self.operation}: {_child(path, name)} is required"))
            members = shape.members
            for name, item in value.items():
                if name in members:
                    self.check(item, members[name], _child(path, name))
                else:
                    self.report(_child(path, name), "unknown", item, None,
                                f"is not a member of {shape.name} (members: {_show(', '.join(members))})")
        elif kind == "list":
            self.bounds(value, shape, path, len(value), "items")
            for i, item in enumerate(value):
                self.check(item, shape.member, f"{path}[{i}]")
        elif kind == "map":
            self.bounds(value, shape, path, len(value), "entries")
            for key, item in value.items():
                self.check(key, shape.key, f"{path}[{key!r}]")
                self.check(item, shape.value, f"{path}[{key!r}]")
        elif kind == "string":
            self.bounds(value, shape, path, len(value), "characters")
            if shape.enum and value not in shape.enum:
                listed = _show(", ".join(shape.enum))
                self.report(path, "enum", value, shape, f"is not one of {listed} ({len(shape.enum)} values)")
            compiled = _compiled(meta["pattern"]) if "pattern" in meta else None
            if compiled is not None and compiled.fullmatch(value) is None:
                self.report(path, "pattern", value, shape, f"does not match {meta['pattern']}")
        elif kind == "blob" and isinstance(value, bytes | bytearray | str):
            size = len(value.encode() if isinstance(value, str) else value)
            self.bounds(value, shape, path, size, "bytes")
        elif kind in ("integer", "long", "float", "double"):
            if "min" in meta and value < meta["min"]:
                self.report(path, "min", value, shape, f"is below the minimum {meta['min']}")
            if "max" in meta and value > meta["max"]:
                self.report(path, "max", value, shape, f"is above the maximum {meta['max']}")

    def has_type(self, value: Any, shape: Shape, kind: str, path: str) -> bool:
        if kind in _TYPES:
            # bool is an int to Python, but AWS refuses `true` where it expects a number.
            ok = isinstance(value, _TYPES[kind]) and (kind == "boolean" or not isinstance(value, bool))
        elif kind == "timestamp":
            ok = isinstance(value, datetime.datetime) or _parses_as_time(value)
        elif kind == "blob":
            ok = isinstance(value, bytes | bytearray | str) or hasattr(value, "read")
        else:  # document: any JSON value
            ok = True
        if not ok:
            self.report(path, "type", value, shape, f"is a {type(value).__name__}, expected {kind}")
        return ok

    def bounds(self, value: Any, shape: Shape, path: str, size: int, unit: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and size < low:
            self.report(path, "min", value, shape, f"has {size} {unit}, at least {low} allowed")
        if high is not None and size > high:
            self.report(path, "max", value, shape, f"has {size} {unit}, at most {high} allowed")


def _parses_as_time(value: Any) -> bool:
    # What botocore's serialisers accept: ISO-8601 strings and epoch numbers.
    if isinstance(value, bool):
        return False
    try:
        parse_to_aware_datetime(value)
        return True
    except (TypeError, ValueError, AttributeError):
        return False
