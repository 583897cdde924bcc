"""Whether identity policies allow one request: AWS's evaluation for a single principal.

An explicit Deny wins; otherwise some Allow must match the action (``Action`` / ``NotAction``, case
-insensitive, ``*`` and ``?`` wildcards), the resource (``Resource`` / ``NotResource``, wildcards,
case-sensitive as ARNs are) and every condition, evaluated against the request's context keys
(IAM User Guide, "Policy evaluation logic" and "IAM JSON policy elements: Condition operators").
Policy variables (``${aws:username}``) are replaced by the request's values of those keys; a
variable the request does not carry makes the statement match nothing, as in AWS.

Supported operators: String(Not)Equals(IgnoreCase), String(Not)Like, Arn(Not)Equals, Arn(Not)Like,
Bool, Null, each with ``IfExists``; an operator this module does not know makes its statement
match nothing (never more permissive than AWS).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(documents: Iterable[Any]) -> list[dict[str, Any]]:
    """Every statement of the documents (JSON text, URL-encoded as IAM returns it, or dicts)."""
    found: list[dict[str, Any]] = []
    for document in documents:
        parsed = json.loads(unquote(document)) if isinstance(document, str) else document
        found.extend(_as_list(parsed.get("Statement", [])))
    return found


def _substitute(pattern: str, context: Mapping[str, Any]) -> str | None:
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        key = match.group(1)
        if key in ("*", "?"):  # ${*} ${?}: the literal characters (a one-character class for fnmatch)
            return f"[{key}]"
        if key == "$":
            return key
        if key not in context:
            missing = True
            return ""
        return str(context[key])

    result = _VARIABLE.sub(value, pattern)
    return None if missing else result


def _like(value: str, pattern: str, context: Mapping[str, Any], ignore_case: bool = False) -> bool:
    resolved = _substitute(pattern, context)
    if resolved is None:
        return False
    if ignore_case:
        return fnmatch.fnmatchcase(value.lower(), resolved.lower())
    return fnmatch.fnmatchcase(value, resolved)


def _matches_any(value: str, patterns: Any, context: Mapping[str, Any], ignore_case: bool) -> bool:
    return any(_like(value, str(p), context, ignore_case) for p in _as_list(patterns))


def action_matches(action: str, patterns: Any) -> bool:
    """Whether ``action`` is one of an Action element's patterns (case-insensitive, wildcards)."""
    return _matches_any(action, patterns, {}, True)


def _condition_holds(operator: str, key: str, wanted: Any, context: Mapping[str, Any]) -> bool:
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if base == "Null":
        present = key in context
        return all((str(w).lower() == "true") != present for w in _as_list(wanted))
    if key not in context:
        return if_exists or base.startswith(("StringNot", "ArnNot"))
    values = [str(v) for v in _as_list(context[key])]
    wanted_values = [str(w) for w in _as_list(wanted)]

    def equals(value: str, ignore_case: bool = False) -> bool:
        resolved = [_substitute(w, context) for w in wanted_values]
        if ignore_case:
            return value.lower() in [r.lower() for r in resolved if r is not None]
        return value in resolved

    checks = {
        "StringEquals": lambda v: equals(v),
        "StringEqualsIgnoreCase": lambda v: equals(v, True),
        "StringLike": lambda v: _matches_any(v, wanted_values, context, False),
        "ArnEquals": lambda v: equals(v),
        "ArnLike": lambda v: _matches_any(v, wanted_values, context, False),
        "Bool": lambda v: v.lower() in [w.lower() for w in wanted_values],
    }
    negations = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
                 "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}
    if base in checks:
        return any(checks[base](v) for v in values)
    if base in negations:
        return not any(checks[negations[base]](v) for v in values)
    return False  # an operator not evaluated here: the statement matches nothing


def _conditions_hold(condition: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    return all(_condition_holds(operator, key, wanted, context)
               for operator, keys in condition.items() for key, wanted in keys.items())


def statement_matches(statement: Mapping[str, Any], action: str, resource: str,
                      context: Mapping[str, Any] | None = None) -> bool:
    """Whether the statement applies to the request (its effect aside)."""
    context = context or {}
    if "Action" in statement:
        if not action_matches(action, statement["Action"]):
            return False
    elif action_matches(action, statement.get("NotAction", [])):
        return False
    if "Resource" in statement:
        if not _matches_any(resource, statement["Resource"], context, False):
            return False
    elif _matches_any(resource, statement.get("NotResource", []), context, False):
        return False
    return _conditions_hold(statement.get("Condition", {}), context)


def allows(documents: Iterable[Any], action: str, resource: str, context: Mapping[str, Any] | None = None) -> bool:
    """Whether the policies allow ``action`` on ``resource`` in ``context``, with no Deny of it."""
    found = statements(documents)
    if any(s.get("Effect") == "Deny" and statement_matches(s, action, resource, context) for s in found):
        return False
    return any(s.get("Effect") == "Allow" and statement_matches(s, action, resource, context) for s in found)
