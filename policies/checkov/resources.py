"""checkov's answer per resource, so a sweep scans each distinct resource once.

A sweep's templates share most of their resources (roles, function, model); what checkov says about
one resource depends on a known part of its template only:

- the resource's own body (and logical id);
- what it references, transitively (checkov renders ``Ref``, ``Fn::GetAtt``, ``Fn::Sub`` and
  ``DependsOn`` along the edges of its template graph: a referenced resource's values flow in);
- for graph checks with *connection* conditions (e.g. CKV2_AWS_75: a Lambda function and the
  Lambda URL that points at it), the resources connected to it whose type pairs with its own in
  such a check, in either direction, and again transitively;
- the template's other sections (Parameters, Conditions, Mappings, Metadata with the policy
  values sagegate's custom checks read, the format version, the description).

The **view** of a resource is the sha256 of all of that: its logical id, the id and body of every
resource in the closure of the resource under "references" and "is connected by a pairing type",
and the other sections. Two resources with the same view get the same results, by construction;
so a batch scans each distinct view once. ``plan_batch`` picks, job by job, the part of the job's
own template that holds the views not yet covered (a closed subset: every resource in it keeps
the same view, see ``_restricted``), ``assemble`` gives every template the results of its
resources' views. Templates with sections this does not model (Outputs, Transform, Rules, ...) or
results on something other than a resource make ``Unsupported``: the caller scans whole templates.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Sections a view models; any other makes the template Unsupported (scanned whole).
SECTIONS = ("AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Conditions", "Mappings",
            "Resources")
SUB_TOKEN = re.compile(r"\$\{([\w\.:]+)\}")  # checkov's Fn::Sub tokens (${Name} or ${Name.Attr})
ALL = "*"  # a connection pairing every resource type with every other


class Unsupported(Exception):
    """The template (or a result) falls outside what a view models: scan whole templates."""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def references(body: Any, ids: Iterable[str]) -> set[str]:
    """The logical ids (of ``ids``) that ``body`` refers to as checkov's graph does: ``Ref``,
    ``Fn::GetAtt`` (list or "Id.Attr"), ``Fn::Sub`` tokens (not its own variables), ``DependsOn``;
    any dict at any depth. A superset would only make views larger (still correct)."""
    known = set(ids)
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Ref" and isinstance(value, str) and value in known:
                    found.add(value)
                elif key == "Fn::GetAtt":
                    target = value[0] if isinstance(value, list) and value else (
                        value.split(".")[0] if isinstance(value, str) else None)
                    if isinstance(target, str) and target in known:
                        found.add(target)
                elif key == "Fn::Sub":
                    text, variables = (value[0], value[1] if len(value) > 1 else {}) if isinstance(value, list) and value \
                        else (value, {})
                    if isinstance(text, str):
                        for token in SUB_TOKEN.findall(text):
                            if not (isinstance(variables, dict) and token in variables):
                                name = token.split(".")[0]
                                if name in known:
                                    found.add(name)
                elif key == "DependsOn":
                    for target in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
                        if isinstance(target, str) and target in known:
                            found.add(target)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(body)
    return found


def _pairs(connection_types: Any) -> set[tuple[str, str]] | None:
    """The (type, type) pairs connection conditions join, both orders; None: every pair."""
    if connection_types == ALL:
        return None
    pairs: set[tuple[str, str]] = set()
    for a, b in connection_types:
        if ALL in (a, b):
            return None
        pairs |= {(a, b), (b, a)}
    return pairs


def _resources(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    unknown = sorted(set(template) - set(SECTIONS))
    if unknown:
        raise Unsupported(f"template sections {', '.join(unknown)}")
    resources = template.get("Resources") or {}
    if not isinstance(resources, dict) or not all(isinstance(b, dict) for b in resources.values()):
        raise Unsupported("Resources is not a mapping of resources")
    return resources


def _edges(resources: Mapping[str, dict[str, Any]],
           connection_types: Any) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(references of each resource, resources that reference it through a paired type)."""
    forward = {rid: references(body, resources) for rid, body in resources.items()}
    pairs = _pairs(connection_types)
    types = {rid: str(body.get("Type", "")) for rid, body in resources.items()}
    reverse: dict[str, set[str]] = {rid: set() for rid in resources}
    for origin, targets in forward.items():
        for target in targets:
            if pairs is None or (types[target], types[origin]) in pairs:
                reverse[target].add(origin)
    return forward, reverse


def _closure(start: Iterable[str], forward: dict[str, set[str]], reverse: dict[str, set[str]]) -> set[str]:
    todo = list(start)
    closure = set(todo)
    while todo:
        node = todo.pop()
        for other in forward[node] | reverse[node]:
            if other not in closure:
                closure.add(other)
                todo.append(other)
    return closure


def views(template: Mapping[str, Any], connection_types: Any) -> dict[str, str]:
    """logical id -> view (see the module's docstring) for every resource of ``template``."""
    resources = _resources(template)
    context = _canonical({k: v for k, v in template.items() if k != "Resources"})
    bodies = {rid: _canonical(body) for rid, body in resources.items()}
    forward, reverse = _edges(resources, connection_types)
    result = {}
    for rid in resources:
        digest = hashlib.sha256()
        digest.update(_canonical([rid, context]).encode())
        for other in sorted(_closure([rid], forward, reverse)):
            digest.update(b"\0" + other.encode() + b"\0" + bodies[other].encode())
        result[rid] = digest.hexdigest()
    return result


def _restricted(template: Mapping[str, Any], keep: set[str]) -> dict[str, Any]:
    return {**template, "Resources": {rid: body for rid, body in template["Resources"].items() if rid in keep}}


@dataclass
class Batch:
    """What to scan for many templates, and how the results map back."""

    synthetic: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> part of a template
    template_views: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> logical id -> view
    covered_by: dict[str, tuple[str, str]] = field(default_factory=dict)  # view -> (synthetic name, logical id)

    @property
    def resources_scanned(self) -> int:
        return sum(len(t.get("Resources") or {}) for t in self.synthetic.values())


def plan_batch(templates: Mapping[str, Mapping[str, Any]], connection_types: Any) -> Batch:
    """The parts of ``templates`` that hold each distinct view once (or nearly: a part is a closed
    subset of one template, so a view it holds beside the ones it was cut for may repeat)."""
    batch = Batch()
    for key, template in templates.items():
        batch.template_views[key] = views(template, connection_types)
    for key, template in templates.items():
        own = batch.template_views[key]
        missing = {rid for rid, view in own.items() if view not in batch.covered_by}
        if not missing:
            continue
        # The closure of every missing resource within this template: each keeps its view there.
        keep = _closure(missing, *_edges(template["Resources"], connection_types))
        part = _restricted(template, keep)
        name = f"part-{len(batch.synthetic)}"
        part_views = views(part, connection_types)
        if any(part_views[rid] != own[rid] for rid in missing):  # cannot happen: a closed subset
            raise Unsupported("a resource's view changed in its part of the template")
        batch.synthetic[name] = part
        for rid, view in part_views.items():
            batch.covered_by.setdefault(view, (name, rid))
    return batch


def split_results(findings: list[Any], passed: list[tuple[str, str]],
                  resource_ids: Iterable[str]) -> dict[str, tuple[list[Any], list[tuple[str, str]]]]:
    """One scan's failed and passed checks per logical id; a result on anything else: Unsupported."""
    per: dict[str, tuple[list[Any], list[tuple[str, str]]]] = {rid: ([], []) for rid in resource_ids}
    for finding in findings:
        if finding.resource not in per:
            raise Unsupported(f"a result on {finding.resource}, not a resource")
        per[finding.resource][0].append(finding)
    for check_id, rid in passed:
        if rid not in per:
            raise Unsupported(f"a result on {rid}, not a resource")
        per[rid][1].append((check_id, rid))
    return per
