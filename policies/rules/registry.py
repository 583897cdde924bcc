"""Every native rule, collected from the area packages.

A rule registers itself by being declared (a ``Rule`` subclass with an ``id``) in a module of an
area package; modules whose name starts with ``_`` hold what an area's rules share. Each area
package names its ``CODE`` (the id's middle part) and ``NAME``; the areas' order here is the
report's order, and rules within an area come by id.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from functools import cache
from types import ModuleType

from policies.rules import aws, capacity, cost, hardening, iam, sanity
from policies.rules.base import Rule

AREAS: tuple[ModuleType, ...] = (aws, iam, cost, capacity, sanity, hardening)


class RuleRegistry:
    """Rules by id, in the order they were registered; an id registered twice is an error."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self._rules: dict[str, Rule] = {}
        for rule in rules:
            self.register(rule)

    def register(self, rule: Rule) -> Rule:
        other = self._rules.get(rule.id)
        if other is not None:
            raise ValueError(f"rule id {rule.id} is declared twice: by {type(other).__qualname__} "
                             f"and by {type(rule).__qualname__}")
        self._rules[rule.id] = rule
        return rule

    def rules(self) -> tuple[Rule, ...]:
        return tuple(self._rules.values())


def area_modules(area: ModuleType) -> list[ModuleType]:
    """The modules of an area package, by name."""
    found = pkgutil.iter_modules(area.__path__, area.__name__ + ".")
    return [importlib.import_module(info.name) for info in sorted(found, key=lambda info: info.name)]


def declared_in(module: ModuleType) -> list[type[Rule]]:
    """The rule classes a module declares (not the ones it imports, not the bases without an id)."""
    return [value for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, Rule) and value.__module__ == module.__name__
            and "id" in vars(value)]


def area_rules(area: ModuleType) -> list[Rule]:
    """One instance of every rule an area declares, by id; a rule whose id names another area
    is an error."""
    rules = [cls() for module in area_modules(area) for cls in declared_in(module)]
    for rule in rules:
        if rule.area != area.CODE:
            raise ValueError(f"rule {rule.id} ({type(rule).__qualname__}) is declared in {area.__name__}, "
                             f"the SG-{area.CODE}-NNN area")
    return sorted(rules, key=lambda rule: rule.id)


@cache
def all_rules() -> tuple[Rule, ...]:
    """Every native rule, in report order (the areas' order, then by id)."""
    registry = RuleRegistry()
    for area in AREAS:
        for rule in area_rules(area):
            registry.register(rule)
    return registry.rules()
