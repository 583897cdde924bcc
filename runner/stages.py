"""One function per stage. A stage never does the work of a later one."""

from __future__ import annotations

from collections.abc import Callable

from runner import cost, plan_view
from runner.cli import RunContext
from runner.stack import LOCAL_ACCOUNT, build_stack


def resolve_account(context: RunContext) -> str:
    from runner.targets import account_for

    return account_for(context.settings) if context.settings.target.kind == "aws" else LOCAL_ACCOUNT


def plan(context: RunContext) -> int:
    settings = context.settings
    stack = build_stack(settings, account=resolve_account(context))
    costs = cost.estimate(settings)
    context.write_json("plan.json", {**stack.to_plan(), "cost": costs.as_dict()})
    context.write_json("template.json", stack.template())
    plan_view.print_plan(context.console, stack, costs)
    context.console.print(f"plan.json and template.json written to {context.run_dir}")
    return 0


STAGES: dict[str, Callable[[RunContext], int]] = {
    "plan": plan,
}
