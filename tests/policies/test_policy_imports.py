"""The policies package's imports: a rule module never reaches the registry that collects it, and
only the core, capacity and stack layers of runner/ (plus training.metrics) are read from the rest
of the project (the SG-CAP rules simulate a day with runner.capacity). (No cycle anywhere, function-local imports included: tests/test_import_graph.py.)"""

from __future__ import annotations

import grimp
import pytest

ALLOWED_OUTSIDE = ("runner.core", "runner.capacity", "runner.stack", "training.metrics")


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("policies", "runner", "training", include_external_packages=False)


def test_rules_import_the_base_never_the_registry(graph):
    importers = graph.find_modules_that_directly_import("policies.rules.registry")
    assert not [m for m in importers if m.startswith("policies.rules")]
    assert not [m for m in graph.find_modules_directly_imported_by("policies.rules.base")
                if m.startswith("policies.rules")]


def test_policies_read_only_the_core_and_the_stack(graph):
    outside = {(importer, imported)
               for importer in graph.modules if importer.startswith("policies")
               for imported in graph.find_modules_directly_imported_by(importer)
               if not imported.startswith("policies")}
    assert outside, "the rules read settings and the stack"
    assert [pair for pair in sorted(outside) if not pair[1].startswith(ALLOWED_OUTSIDE)] == []
