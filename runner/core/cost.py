"""Cost model: hourly and monthly costs from the dated price snapshot in conf/pricing/."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from runner.core.settings import PricingSettings, Settings

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class CostSummary:
    """Every figure in USD. Monthly figures assume the resource runs all month."""

    price_snapshot: str
    endpoint_hourly_min: float
    endpoint_hourly_initial: float
    endpoint_hourly_max: float
    endpoint_monthly_min: float
    endpoint_monthly_initial: float
    endpoint_monthly_max: float
    provisioned_concurrency_monthly: float
    notebook_monthly: float
    training_job: float
    training_job_spot: float | None
    tuning_job: float
    monthly_min: float
    monthly_max: float

    def as_dict(self) -> dict:
        return asdict(self)


def _round(value: float) -> float:
    return round(value, 2)


def estimate(settings: Settings) -> CostSummary:
    p = settings.pricing
    hours = p.hours_per_month
    e, a, f, t = settings.endpoint, settings.autoscaling, settings.function, settings.training

    if e.kind == "serverless":
        # No instances: idle costs nothing; the bound is every concurrent slot busy all month.
        memory_gb = e.serverless_memory_mb / 1024
        per_hour_busy = e.serverless_max_concurrency * memory_gb * SECONDS_PER_HOUR * p.serverless.gb_second
        hourly_min, hourly_initial, hourly_max = 0.0, 0.0, per_hour_busy
    else:
        rate = p.hosting[e.instance_type]
        low = a.min_capacity if a.enabled else e.initial_instance_count
        high = a.max_capacity if a.enabled else e.initial_instance_count
        hourly_min, hourly_initial, hourly_max = rate * low, rate * e.initial_instance_count, rate * high

    pc_monthly = (
        f.provisioned_concurrency * (f.memory_size / 1024) * hours * SECONDS_PER_HOUR
        * p.lambda_.provisioned_gb_second
    )
    notebook_monthly = p.notebook[settings.notebook.instance_type] * hours if settings.notebook.enabled else 0.0

    # A job's cost bound: every instance for the whole max runtime (MaxRuntimeInSeconds).
    if t.launcher == "local":
        training = 0.0
    else:
        table = p.ec2 if t.launcher == "ec2" else p.training
        training = table[t.instance_type] * t.instance_count * t.max_runtime / SECONDS_PER_HOUR
    spot = training * (1 - p.spot_discount) if t.use_spot else None
    tuning = training * settings.hpo.max_jobs if settings.hpo.enabled else 0.0

    fixed_monthly = pc_monthly + notebook_monthly
    return CostSummary(
        price_snapshot=f"{p.region} {p.as_of}",
        endpoint_hourly_min=round(hourly_min, 4),
        endpoint_hourly_initial=round(hourly_initial, 4),
        endpoint_hourly_max=round(hourly_max, 4),
        endpoint_monthly_min=_round(hourly_min * hours),
        endpoint_monthly_initial=_round(hourly_initial * hours),
        endpoint_monthly_max=_round(hourly_max * hours),
        provisioned_concurrency_monthly=_round(pc_monthly),
        notebook_monthly=_round(notebook_monthly),
        training_job=_round(training),
        training_job_spot=_round(spot) if spot is not None else None,
        tuning_job=_round(tuning),
        monthly_min=_round(hourly_min * hours + fixed_monthly),
        monthly_max=_round(hourly_max * hours + fixed_monthly),
    )


def resources_monthly_range(resources: list[tuple[str, dict]], pricing: PricingSettings) -> tuple[float, float]:
    """Monthly cost (min, max capacity) of CloudFormation-shaped resources, desired or live.

    The plan uses it to show what a change does to the bill: the same arithmetic as ``estimate``,
    applied to what is deployed (read back by the drivers) and to what would be.
    """
    by_type: dict[str, list[dict]] = {}
    for resource_type, props in resources:
        by_type.setdefault(resource_type, []).append(props or {})
    hours = pricing.hours_per_month
    low = high = 0.0
    scaling = by_type.get("AWS::ApplicationAutoScaling::ScalableTarget", [{}])[0]
    for config in by_type.get("AWS::SageMaker::EndpointConfig", []):
        for variant in config.get("ProductionVariants") or []:
            if "ServerlessConfig" in variant and variant["ServerlessConfig"]:
                sc = variant["ServerlessConfig"]
                high += (sc["MaxConcurrency"] * sc["MemorySizeInMB"] / 1024 * SECONDS_PER_HOUR
                         * pricing.serverless.gb_second * hours)
                continue
            rate = pricing.hosting.get(variant.get("InstanceType", ""), 0.0)
            count = variant.get("InitialInstanceCount") or 0
            low += rate * scaling.get("MinCapacity", count) * hours
            high += rate * scaling.get("MaxCapacity", count) * hours
    memory = next((f.get("MemorySize") or 128 for f in by_type.get("AWS::Lambda::Function", [])), 128)
    for alias in by_type.get("AWS::Lambda::Alias", []):
        provisioned = (alias.get("ProvisionedConcurrentExecutions")
                       or (alias.get("ProvisionedConcurrencyConfig") or {}).get("ProvisionedConcurrentExecutions") or 0)
        monthly = provisioned * memory / 1024 * hours * SECONDS_PER_HOUR * pricing.lambda_.provisioned_gb_second
        low, high = low + monthly, high + monthly
    for notebook in by_type.get("AWS::SageMaker::NotebookInstance", []):
        monthly = pricing.notebook.get(notebook.get("InstanceType", ""), 0.0) * hours
        low, high = low + monthly, high + monthly
    return _round(low), _round(high)
