"""The budget comparison every cost-bound rule makes."""

from __future__ import annotations


def over_budget(what: str, amount: float, budget: float, budget_key: str) -> str | None:
    """The finding when ``amount`` exceeds ``policy.budgets_usd.<budget_key>``, else None."""
    if amount <= budget:
        return None
    return f"{what} ${amount:,.2f} exceeds policy.budgets_usd.{budget_key} (${budget:,.2f})"
