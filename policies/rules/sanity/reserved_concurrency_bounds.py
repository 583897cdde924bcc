"""SG-SAN-006: 1 <= reserved concurrency <= policy.max_reserved_concurrency, and the account keeps
its unreserved floor.

Template-level twin: CKV_SG_001 (checkov's CKV_AWS_115 accepts any value, 0 included).
"""

from __future__ import annotations

from policies.rules.base import Context, ResourceRule
from runner.core.settings import ACCOUNT_CONCURRENCY_LIMIT, UNRESERVED_FLOOR
from runner.stack.model import Resource


class ReservedConcurrencyBounds(ResourceRule):
    id = "SG-SAN-006"
    severity = "high"
    title = "Reserved concurrency outside its bounds"
    config_key = "function.reserved_concurrency"
    remediation = ("Keep 1 <= function.reserved_concurrency <= policy.max_reserved_concurrency (and below the "
                   "account's unreserved floor).")
    resource_type = "AWS::Lambda::Function"

    def problem(self, ctx: Context, resource: Resource) -> str | None:
        reserved = _int(resource.properties.get("ReservedConcurrentExecutions"))
        bound = ctx.settings.policy.max_reserved_concurrency
        if reserved is None or reserved < 1:
            return (f"reserved concurrency {reserved}: the function needs at least 1 (0 never runs; "
                    "unset is unbounded)")
        if reserved > ACCOUNT_CONCURRENCY_LIMIT - UNRESERVED_FLOOR:
            return (f"reserved concurrency {reserved} leaves less than the account's {UNRESERVED_FLOOR} "
                    f"unreserved executions (limit {ACCOUNT_CONCURRENCY_LIMIT})")
        if reserved > bound:
            return f"reserved concurrency {reserved} exceeds policy.max_reserved_concurrency ({bound})"
        return None


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
