"""The planner: the stack's desired resources against live state, as an ordered list of changes.

One change per resource in dependency order (create, update, replace, no-change), then the
sweeper's deletes of what the stack no longer declares. A plan makes no mutating call; the
executor (``runner.deploy.executor``) carries it out. What differs between resource kinds (their
names, what counts as a change) is the drivers' knowledge, not the planner's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from runner.core.names import STACK_TAG, ResourceNames
from runner.deploy.drivers import DRIVERS, KIND_ORDER, DriverContext, ForeignResourceError, Live, driver_for
from runner.deploy.drivers.base import PENDING, Undo
from runner.stack.model import Resource, Stack, get_att_targets
from runner.targets import Target

ACTIONS = ("create", "update", "replace", "no-change", "delete")


@dataclass
class Change:
    action: str  # create | update | replace | no-change | delete
    logical_id: str | None
    type: str
    name: str
    details: list[str] = field(default_factory=list)
    # For a content-hashed name: the live resource this one supersedes (deleted by the sweeper).
    replaces: str | None = None
    live: Live | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        text = f"{self.action} {self.type} {self.name}"
        if self.replaces:
            text += f" (replaces {self.replaces})"
        if self.details:
            text += f" [{', '.join(self.details)}]"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "logical_id": self.logical_id, "type": self.type, "name": self.name,
                "details": list(self.details), "replaces": self.replaces}


def ordered(resources: list[Resource]) -> list[Resource]:
    """Dependency order (stable: the stack's own order where dependencies allow)."""
    by_id = {r.logical_id: r for r in resources}
    done: set[str] = set()
    result: list[Resource] = []

    def visit(resource: Resource, path: tuple[str, ...]) -> None:
        if resource.logical_id in done:
            return
        if resource.logical_id in path:
            raise ValueError(f"dependency cycle: {' -> '.join(path + (resource.logical_id,))}")
        for dependency in resource.depends_on + sorted(get_att_targets(resource.properties)):
            if dependency in by_id:
                visit(by_id[dependency], path + (resource.logical_id,))
        done.add(resource.logical_id)
        result.append(resource)

    for resource in resources:
        visit(resource, ())
    return result


def resolve(value: Any, outputs: dict[str, dict[str, Any]]) -> Any:
    """Properties with each ``Fn::GetAtt`` replaced by the live value (or PENDING before it exists)."""
    if isinstance(value, dict):
        if set(value) == {"Fn::GetAtt"}:
            logical_id, attribute = value["Fn::GetAtt"]
            return outputs.get(logical_id, {}).get(attribute, PENDING)
        return {k: resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, outputs) for v in value]
    return copy.deepcopy(value)


def driver_context(target: Target, stack_name: str, names: ResourceNames, console: Console | None = None,
                   on_created: Callable[[Live], None] | None = None,
                   on_moved: Callable[[str, Undo], None] | None = None) -> DriverContext:
    def progress(message: str) -> None:
        if console is not None:
            console.print(f"    {message}", highlight=False, soft_wrap=True, markup=False)

    return DriverContext(target, stack_name, names, progress, on_created, on_moved=on_moved)


def _refuse_foreign(stack_name: str, resource_type: str, live: Live) -> None:
    owner = f"tagged {STACK_TAG}={live.owner}" if live.owner else f"not tagged {STACK_TAG}"
    raise ForeignResourceError(
        f"{resource_type} {live.name} already exists and is {owner}, not {STACK_TAG}={stack_name}: "
        "sagegate never updates or deletes a resource it does not own. Choose another stack name "
        f"(name=...) or remove that resource yourself.")


def plan_changes(stack: Stack, target: Target, *, sweep: bool = True) -> list[Change]:
    """Desired against live: one change per resource in dependency order, then the sweeper's deletes.

    ``sweep=False`` plans only the given resources (e.g. the roles a training job needs first).
    """
    ctx = driver_context(target, stack.name, stack.names)
    outputs: dict[str, dict[str, Any]] = {}
    changes: list[Change] = []
    endpoint_reconfigured = False
    desired_names: set[tuple[str, str]] = set()
    for resource in ordered(stack.resources):
        driver = driver_for(resource.type)
        props = resolve(resource.properties, outputs)
        name = driver.name(props) or resource.logical_id
        live = driver.read(ctx, props)
        if live is not None and driver.tagged and live.owner != stack.name:
            _refuse_foreign(stack.name, resource.type, live)
        if live is None:
            change = Change("create", resource.logical_id, resource.type, name)
            predecessor = driver.predecessor(ctx, props)
            if predecessor is not None:
                details = [d for d in driver.diff(props, predecessor) if d != "Tags"] or ["content"]
                change = Change("replace", resource.logical_id, resource.type, name, details,
                                replaces=predecessor.name, live=predecessor)
        else:
            details = driver.diff(props, live)
            if driver.named_by_live:
                name = live.name
            if driver.reregistered_on_endpoint_update and endpoint_reconfigured:
                action, details = "replace", details + ["re-registered around the endpoint update (AWS requires it)"]
            elif set(details) & driver.replace_on:
                action = "replace"
            else:
                action = "update" if details else "no-change"
            change = Change(action, resource.logical_id, resource.type, name, details, live=live)
            outputs[resource.logical_id] = dict(live.outputs)
        if change.action == "update" and driver.reconfigures_endpoint(change.details):
            endpoint_reconfigured = True
        desired_names.add((resource.type, name))
        changes.append(change)

    superseded = {(c.type, c.replaces) for c in changes if c.replaces}
    for cls in reversed(KIND_ORDER) if sweep else ():
        for live in DRIVERS[cls.type].discover(ctx):
            if (cls.type, live.name) not in desired_names and (cls.type, live.name) not in superseded:
                changes.append(Change("delete", None, cls.type, live.name, ["no longer in the stack"], live=live))
    return changes
