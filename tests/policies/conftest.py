"""One real checkov run for the whole policy test session (a warm worker, ~3 s), and the gate's
reports on the insecure stack from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from policy_helpers import INSECURE, PRODUCTION, GateInputs, make
from rich.console import Console

import policies.gate as gate
from policies.checkov.runner import CheckovScan, render_template, scan_templates, store_cached, template_key
from policies.gate import run_gate


@dataclass
class Scanned:
    inputs: GateInputs
    template: dict[str, Any]
    scan: CheckovScan


@pytest.fixture(scope="session")
def checkov_scans() -> dict[str, Scanned]:
    cases = {"default": make(), "production": make(*PRODUCTION), "insecure": make(*INSECURE)}
    templates = {name: render_template(i.settings, i.stack) for name, i in cases.items()}
    scans = scan_templates({template_key(t): t for t in templates.values()}, timeout_s=300)
    return {name: Scanned(cases[name], templates[name], scans[template_key(templates[name])]) for name in cases}


@pytest.fixture
def insecure_reports(tmp_path: Path, checkov_scans, monkeypatch):
    """run_gate on the insecure stack with checkov's answer from a sweep cache (no process)."""
    scanned = checkov_scans["insecure"]
    cache = tmp_path / "cache"
    store_cached(cache, template_key(scanned.template), scanned.scan)

    def no_checkov(*args, **kwargs):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(gate, "scan_templates", no_checkov)
    i = scanned.inputs
    console = Console(record=True, width=160)
    result = run_gate(i.settings, i.stack, i.costs, tmp_path / "run", console, checkov_cache_dir=cache)
    return result, tmp_path / "run" / "policy", console.export_text()
