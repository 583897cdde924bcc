"""SG-CAP-002: the model server's queue overflows (503 -> 424) while autoscaling had room."""

from __future__ import annotations

from typing import TYPE_CHECKING

from policies.rules.capacity._simulated import OVERFLOW, CapacityRule

if TYPE_CHECKING:
    from runner.capacity.path import Simulation


class QueueOverflow(CapacityRule):
    id = "SG-CAP-002"
    severity = "high"
    title = "Simulated requests rejected or slow while the endpoint had room to scale"
    config_key = "autoscaling.target_value"
    remediation = ("Lower autoscaling.target_value so scaling starts before the instances saturate, or choose "
                   "a larger instance type.")
    cause = OVERFLOW

    def detail(self, simulation: Simulation) -> str:
        p = simulation.params
        return (f"{p.workers} workers x {p.service_ms:g} ms per instance serve about "
                f"{p.workers * 60000 / p.service_ms:.0f} requests a minute; target {p.scaling.target:g}")
