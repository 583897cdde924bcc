"""The budget comparison the cost rules share (policies/rules/cost/_budget.py)."""

from __future__ import annotations

from policies.rules.cost._budget import over_budget


def test_within_budget_is_no_problem():
    assert over_budget("notebook monthly cost", 60.0, 60.0, "notebook_monthly") is None


def test_over_budget_names_the_amount_and_the_budget_key():
    assert over_budget("notebook monthly cost", 1234.5, 60.0, "notebook_monthly") == (
        "notebook monthly cost $1,234.50 exceeds policy.budgets_usd.notebook_monthly ($60.00)")
