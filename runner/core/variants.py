"""The endpoint's production variants, resolved: each with its instance type, count, weight and
autoscaling bounds. The stack, the cost model and the plan all read variants from here."""

from __future__ import annotations

from dataclasses import dataclass

from runner.core.settings import Settings


@dataclass(frozen=True)
class Variant:
    name: str
    instance_type: str
    initial_instance_count: int
    weight: float
    # The autoscaling bounds of this variant (its initial count when autoscaling is off).
    min_capacity: int
    max_capacity: int


def production_variants(settings: Settings) -> list[Variant]:
    e, a = settings.endpoint, settings.autoscaling
    low = a.min_capacity if a.enabled else e.initial_instance_count
    high = a.max_capacity if a.enabled else e.initial_instance_count
    return [Variant(e.variant_name, e.instance_type, e.initial_instance_count, 1.0, low, high)]
