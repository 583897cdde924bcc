"""No import cycle among the project's modules, function-local imports included.

import-linter (``make test``) keeps the layers; its sibling contract does not see a cycle
between a package's ``__init__`` and one of its own modules, so this test looks at every
module-to-module edge with grimp, the graph import-linter itself builds.
"""

from __future__ import annotations

import grimp

PACKAGES = ("runner", "policies", "handlers", "training", "hydra_plugins")
# hydra_plugins is a namespace that other distributions (the joblib launcher) add to.
THEIRS = ("hydra_plugins.hydra_",)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_cycle_finder_finds_a_cycle_through_a_package_and_its_module():
    edges = {"a": {"a.b"}, "a.b": {"a"}, "c": {"a"}}
    assert _cycles(edges) == [["a", "a.b"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_project_has_no_import_cycle():
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    ours = {m for m in graph.modules if not m.startswith(THEIRS)}
    edges = {module: set(graph.find_modules_directly_imported_by(module)) & ours for module in ours}
    assert _cycles(edges) == []
