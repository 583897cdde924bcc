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
    """``endpoint.variants`` in their configured order, each with its autoscaling bounds."""
    variants = []
    for name, v in settings.endpoint.variants.items():
        low, high = v.bounds(settings.autoscaling)
        variants.append(Variant(name, v.instance_type, v.initial_instance_count, float(v.weight), low, high))
    return variants


def variant_of(resource_id: str) -> str:
    """The variant a scalable target scales: ``endpoint/<endpoint>/variant/<variant>`` (Application
    Auto Scaling's ResourceId for SageMaker)."""
    return resource_id.rpartition("/variant/")[2]
