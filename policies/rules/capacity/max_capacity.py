"""SG-CAP-004: over the SLO at autoscaling's maximum capacity."""

from __future__ import annotations

from typing import TYPE_CHECKING

from policies.rules.capacity._simulated import AT_MAX, CapacityRule

if TYPE_CHECKING:
    from runner.capacity.path import Simulation


class MaxCapacityTooLow(CapacityRule):
    id = "SG-CAP-004"
    severity = "high"
    title = "Simulated traffic needs more than the maximum capacity"
    config_key = "autoscaling.max_capacity"
    remediation = "Raise autoscaling.max_capacity or choose a larger instance type."
    cause = AT_MAX

    def detail(self, simulation: Simulation) -> str:
        return f"max capacity {simulation.params.scaling.max_capacity} x {simulation.instance_type}"
