"""SG-CAP-001: the simulated day misses its SLO because Lambda throttles (429)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from policies.rules.capacity._simulated import THROTTLED, CapacityRule

if TYPE_CHECKING:
    from runner.capacity.path import Simulation


class ThrottledByReservedConcurrency(CapacityRule):
    id = "SG-CAP-001"
    severity = "high"
    title = "Simulated traffic throttled by the function's reserved concurrency"
    config_key = "function.reserved_concurrency"
    remediation = ("Raise function.reserved_concurrency (Lambda also caps a function at 10 invocations a second "
                   "per unit of it).")
    cause = THROTTLED

    def detail(self, simulation: Simulation) -> str:
        p = simulation.params
        return f"reserved concurrency {p.reserved} (at most {10 * p.reserved} invocations a second)"
