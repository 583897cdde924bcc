"""A config's path as the capacity model sees it, and its simulated day priced (docs/capacity.md).

``simulate_config(settings)`` reads the traffic profile, the function, the endpoint's variant and
its autoscaling from validated settings, runs ``model.simulate`` and prices the day with the
plan's cost model (``runner.core.cost.usage_cost``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.capacity import service_time
from runner.capacity.autoscaling import ScalingPolicy
from runner.capacity.model import DayResult, PathParams, simulate
from runner.capacity.traffic import Arrivals, arrivals
from runner.core.cost import usage_cost
from runner.core.errors import ConfigError
from runner.core.settings import Settings

# The service time's CV when only simulate.service_ms is given for a model with no measured figure
# (the shipped ones run 0.05-0.4): simulate.service_cv sets it.
UNMEASURED_CV = 0.5
TRAFFIC_KEYS = ("rps", "mean_rps", "amplitude", "peak_hour", "cv", "burst_rps", "base_minutes", "burst_minutes",
                "steps", "path", "function", "scale")


@dataclass
class Simulation:
    """A simulated day: the model's result, what it was run with, and its cost."""

    day: DayResult
    params: PathParams
    instance_type: str
    service: service_time.ServiceTime
    traffic: Arrivals
    cost_usd_day: float
    cost_usd_month: float
    slo_met: bool | None

    def as_dict(self) -> dict[str, Any]:
        summary = {**{k: v for k, v in self.day.summary.items() if k != "lambda_gb_seconds_per_gb"},
                   "cost_usd_day": round(self.cost_usd_day, 4), "cost_usd_month": round(self.cost_usd_month, 2),
                   "slo_met": self.slo_met}
        for key in ("p50_ms", "p95_ms", "p99_ms", "instance_hours"):
            summary[key] = round(summary[key], 2)
        summary["error_rate"] = round(summary["error_rate"], 6)
        rows = [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}
                for row in self.day.minute_rows()]
        return {"summary": summary, "minutes": rows,
                "inputs": {"profile": self.traffic.profile, "cv_a": self.traffic.cv_a,
                           "instance_type": self.instance_type, "service_ms": self.params.service_ms,
                           "service_cv": self.params.service_cv, "service_source": self.service.source,
                           "workers": self.params.workers, "queue": self.params.queue,
                           "startup_s": self.params.scaling.startup_s},
                "scaling_events": [{"minute": m, "action": a, "from": f, "to": to} for m, a, f, to in self.day.events]}


def path_params(settings: Settings, measured: service_time.ServiceTime | None = None) -> tuple[PathParams, str,
                                                                                                service_time.ServiceTime]:
    """The model's parameters for the config: (params, instance type, service time used)."""
    endpoint, sim, a, f = settings.endpoint, settings.simulate, settings.autoscaling, settings.function
    if endpoint.kind == "serverless":
        raise ConfigError("endpoint: stage=simulate models instance-backed endpoints; a serverless endpoint has "
                          "no instances to simulate (endpoint=realtime)")
    if len(endpoint.variants) != 1:
        raise ConfigError(f"endpoint.variants: stage=simulate models one production variant, not "
                          f"{len(endpoint.variants)} (docs/capacity.md)")
    [variant] = endpoint.variants.values()
    instance_type = variant.instance_type
    base = measured or service_time.shipped(settings.model.arch, settings.data.image_size)
    if base is None and sim.service_ms is None:
        raise ConfigError(f"simulate.service_ms: no shipped service time for {settings.model.arch} at "
                          f"{settings.data.image_size} px; set simulate.service_ms (and simulate.service_cv), or "
                          "simulate.calibrate=true after stage=train to measure the artifact")
    service = (service_time.for_instance(instance_type, base) if base is not None
               else service_time.ServiceTime(0.0, UNMEASURED_CV, "simulate.service_ms"))
    if sim.service_ms is not None:
        service = service_time.ServiceTime(sim.service_ms, service.cv, "simulate.service_ms")
    if sim.service_cv is not None:
        service = service_time.ServiceTime(service.mean_ms, sim.service_cv, f"{service.source}, simulate.service_cv")
    low, high = variant.bounds(a)
    scaling = ScalingPolicy(
        min_capacity=low if a.enabled else variant.initial_instance_count,
        max_capacity=high if a.enabled else variant.initial_instance_count,
        target=a.target_value, scale_in_cooldown_s=a.scale_in_cooldown, scale_out_cooldown_s=a.scale_out_cooldown,
        alarm_high_minutes=sim.alarm_high_minutes, alarm_low_minutes=sim.alarm_low_minutes,
        scale_in_ratio=sim.scale_in_ratio, startup_s=sim.startup_s)
    params = PathParams(
        reserved=f.reserved_concurrency, provisioned=f.provisioned_concurrency,
        lambda_overhead_ms=sim.lambda_overhead_ms, cold_start_ms=sim.cold_start_ms,
        keep_warm_minutes=sim.keep_warm_minutes,
        workers=sim.workers or settings.pricing.vcpus[instance_type], queue=sim.queue,
        service_ms=service.mean_ms, service_cv=service.cv, scaling=scaling,
        initial_instances=variant.initial_instance_count)
    return params, instance_type, service


def traffic_of(settings: Settings) -> Arrivals:
    t = settings.traffic
    values = {key: getattr(t, key) for key in TRAFFIC_KEYS if getattr(t, key, None) is not None}
    return arrivals(t.profile, values, minutes=t.minutes, seed=t.seed)


def simulate_config(settings: Settings, measured: service_time.ServiceTime | None = None) -> Simulation:
    params, instance_type, service = path_params(settings, measured)
    traffic = traffic_of(settings)
    day = simulate(traffic.counts, traffic.cv_a, params)
    minutes = len(traffic.counts)
    memory_gb = settings.function.memory_size / 1024.0
    cost = usage_cost(
        instance_hours={instance_type: day.summary["instance_hours"]},
        lambda_requests=day.summary["requests"] - day.summary["throttled"],
        lambda_gb_seconds=day.summary["lambda_gb_seconds_per_gb"] * memory_gb,
        provisioned_gb_seconds=params.provisioned * memory_gb * minutes * 60.0,
        pricing=settings.pricing)
    day_cost = cost * 1440.0 / minutes if minutes else 0.0
    month = day_cost * settings.pricing.hours_per_month / 24.0
    slo = settings.slo
    met = None
    if slo.p99_ms is not None or slo.error_rate is not None:
        met = ((slo.p99_ms is None or day.summary["p99_ms"] <= slo.p99_ms)
               and (slo.error_rate is None or day.summary["error_rate"] <= slo.error_rate))
    return Simulation(day, params, instance_type, service, traffic, day_cost, month, met)
