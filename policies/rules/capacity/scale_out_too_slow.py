"""SG-CAP-003: over the SLO while the alarm was still counting or new instances were starting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from policies.rules.capacity._simulated import TOO_SLOW, CapacityRule

if TYPE_CHECKING:
    from runner.capacity.path import Simulation


class ScaleOutTooSlow(CapacityRule):
    id = "SG-CAP-003"
    severity = "high"
    title = "Simulated scale-out too slow for the traffic"
    config_key = "autoscaling.min_capacity"
    remediation = ("Raise autoscaling.min_capacity (capacity ready before the peak) or lower "
                   "autoscaling.target_value; a scale-out takes the 3-minute alarm plus the instance's startup.")
    cause = TOO_SLOW

    def detail(self, simulation: Simulation) -> str:
        p = simulation.params.scaling
        return f"alarm {p.alarm_high_minutes} min + startup {p.startup_s:g} s, min capacity {p.min_capacity}"
