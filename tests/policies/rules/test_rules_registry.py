"""The registry (policies/rules/registry.py): every rule declared in an area, one per file, each
with its mirrored test module; ids unique, in report order; a rule id declared twice is an error."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from policies.rules import registry
from policies.rules.base import Rule
from policies.rules.registry import AREAS, RuleRegistry, all_rules, area_modules, declared_in

TESTS = Path(__file__).resolve().parent
# Rules whose every failing case settings validation rejects (see sanity/test_left_to_the_schema.py).
LEFT_TO_THE_SCHEMA = {"SG-SAN-004", "SG-SAN-005", "SG-SAN-007"}


def rule_modules():
    return [module for area in AREAS for module in area_modules(area)
            if not module.__name__.rsplit(".", 1)[1].startswith("_")]


def test_rule_ids_are_unique_and_declared():
    rules = all_rules()
    # One rule per rule module: none is lost by the collection.
    assert len({r.id for r in rules}) == len(rules) == len(rule_modules()) >= 39
    for rule in rules:
        assert rule.severity in ("info", "low", "medium", "high", "critical")
        assert rule.title and rule.remediation.endswith(".") and rule.config_key


def test_rules_come_in_report_order():
    order = [area.CODE for area in AREAS]
    ids = [r.id for r in all_rules()]
    assert ids == sorted(ids, key=lambda i: (order.index(i.split("-")[1]), i))
    assert order == ["AWS", "IAM", "COST", "CAP", "SAN", "HARD"]


def test_all_rules_is_computed_once():
    assert all_rules() is all_rules()


def test_one_rule_per_file_and_helpers_declare_none():
    for area in AREAS:
        for module in area_modules(area):
            declared = declared_in(module)
            helper = module.__name__.rsplit(".", 1)[1].startswith("_")
            assert len(declared) == (0 if helper else 1), (module.__name__, declared)


def test_every_rule_has_a_test_module_with_a_failing_and_a_passing_case():
    for module in rule_modules():
        [rule] = declared_in(module)
        area, name = module.__name__.split(".")[-2:]
        path = TESTS / area / f"test_{name}.py"
        assert path.is_file(), f"{rule.id} ({module.__name__}) has no test module {path}"
        assigned = {target.id: node.value for node in ast.parse(path.read_text()).body
                    if isinstance(node, ast.Assign) for target in node.targets if isinstance(target, ast.Name)}
        assert ast.literal_eval(assigned["RULE"]) == rule.id, path
        for cases in ("FAILING", "PASSING"):
            assert isinstance(assigned.get(cases), ast.List) and assigned[cases].elts, f"{path}: no {cases} case"


def test_rules_the_schema_covers_are_gone():
    assert LEFT_TO_THE_SCHEMA.isdisjoint(r.id for r in all_rules())


def test_an_id_registered_twice_is_an_error():
    first = all_rules()[0]
    twin = type("Twin", (type(first),), {})()
    registered = RuleRegistry([first])
    with pytest.raises(ValueError, match=f"rule id {first.id} is declared twice"):
        registered.register(twin)
    assert registered.rules() == (first,)


def test_a_rule_declared_in_another_area_is_an_error(monkeypatch):
    misplaced = type("Misplaced", (Rule,), {
        "id": "SG-COST-999", "severity": "low", "title": "t", "config_key": "k", "remediation": "r.",
        "check": lambda self, ctx: [], "__module__": "policies.rules.iam.misplaced"})
    module = type(registry)("policies.rules.iam.misplaced")
    module.Misplaced = misplaced
    monkeypatch.setattr(registry, "area_modules", lambda area: [module])
    with pytest.raises(ValueError, match="SG-COST-999 .* declared in policies.rules.iam"):
        registry.area_rules(registry.iam)


def test_imported_rules_are_not_declared_twice():
    """A module that imports another's rule class does not declare it again."""
    module = type(registry)("policies.rules.cost.example")
    module.Imported = type(all_rules()[0])
    assert declared_in(module) == []
