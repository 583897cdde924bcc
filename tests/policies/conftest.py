"""One real checkov run for the whole policy test session (a warm worker, ~3 s)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from policy_helpers import INSECURE, PRODUCTION, GateInputs, make

from policies.checkov.runner import CheckovScan, render_template, scan_templates, template_key


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
