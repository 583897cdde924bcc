"""The one cost model: hourly and monthly costs from the dated price snapshot in conf/pricing/.

It reads CloudFormation-shaped resources and job requests (plain data), so the same function
prices the stack a plan or gate is about to create, what a driver reads back from a live
account, and every row of a sweep. Monthly figures assume a resource runs all month; a job's
figure is its bound (every instance for the whole maximum runtime).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from runner.core.settings import PricingSettings
from runner.core.variants import variant_of

SECONDS_PER_HOUR = 3600

Properties = Mapping[str, Any]


@dataclass(frozen=True)
class CostSummary:
    """Every figure in USD."""

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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Job:
    """A job as the cost model sees it: its kind, its exact API request, and its runtime bound
    when the request does not carry one (RunInstances has no MaxRuntimeInSeconds)."""

    kind: str  # local_training | training_job | tuning_job | ec2_run
    request: Properties
    max_runtime_s: int | None = None


def estimate(resources: Iterable[tuple[str, Properties]], jobs: Iterable[Job],
             pricing: PricingSettings) -> CostSummary:
    """The cost of (resource type, properties) pairs, desired or live, and of the jobs."""
    by_type: dict[str, list[Properties]] = {}
    for resource_type, props in resources:
        by_type.setdefault(resource_type, []).append(props or {})
    hours = pricing.hours_per_month

    low, initial, high = _endpoint_hourly(by_type, pricing)
    memory = next((f.get("MemorySize") or 128 for f in by_type.get("AWS::Lambda::Function", [])), 128)
    provisioned = sum(_provisioned(alias) for alias in by_type.get("AWS::Lambda::Alias", []))
    pc_monthly = provisioned * memory / 1024 * hours * SECONDS_PER_HOUR * pricing.lambda_.provisioned_gb_second
    notebook_monthly = sum(pricing.notebook.get(n.get("InstanceType", ""), 0.0) * hours
                           for n in by_type.get("AWS::SageMaker::NotebookInstance", []))
    training, spot, tuning = _jobs(jobs, pricing)

    fixed_monthly = pc_monthly + notebook_monthly
    return CostSummary(
        price_snapshot=f"{pricing.region} {pricing.as_of}",
        endpoint_hourly_min=round(low, 4),
        endpoint_hourly_initial=round(initial, 4),
        endpoint_hourly_max=round(high, 4),
        endpoint_monthly_min=_round(low * hours),
        endpoint_monthly_initial=_round(initial * hours),
        endpoint_monthly_max=_round(high * hours),
        provisioned_concurrency_monthly=_round(pc_monthly),
        notebook_monthly=_round(notebook_monthly),
        training_job=_round(training),
        training_job_spot=_round(spot) if spot is not None else None,
        tuning_job=_round(tuning),
        monthly_min=_round(low * hours + fixed_monthly),
        monthly_max=_round(high * hours + fixed_monthly),
    )


def _round(value: float) -> float:
    return round(value, 2)


def _endpoint_hourly(by_type: dict[str, list[Properties]], pricing: PricingSettings) -> tuple[float, float, float]:
    """Per variant: instances at its autoscaling bounds (its initial count without autoscaling);
    a serverless variant costs nothing idle and at most every concurrent slot busy."""
    bounds = {variant_of(str(t.get("ResourceId", ""))): t
              for t in by_type.get("AWS::ApplicationAutoScaling::ScalableTarget", [])}
    low = initial = high = 0.0
    for config in by_type.get("AWS::SageMaker::EndpointConfig", []):
        for variant in config.get("ProductionVariants") or []:
            serverless = variant.get("ServerlessConfig")
            if serverless:
                high += (serverless["MaxConcurrency"] * serverless["MemorySizeInMB"] / 1024 * SECONDS_PER_HOUR
                         * pricing.serverless.gb_second)
                continue
            rate = pricing.hosting.get(variant.get("InstanceType", ""), 0.0)
            count = variant.get("InitialInstanceCount") or 0
            scaling = bounds.get(variant.get("VariantName", ""), {})
            low += rate * scaling.get("MinCapacity", count)
            initial += rate * count
            high += rate * scaling.get("MaxCapacity", count)
    return low, initial, high


def _provisioned(alias: Properties) -> int:
    # A plan's alias carries ProvisionedConcurrencyConfig; a live one as the driver reads it.
    return int(alias.get("ProvisionedConcurrentExecutions")
               or (alias.get("ProvisionedConcurrencyConfig") or {}).get("ProvisionedConcurrentExecutions") or 0)


def _jobs(jobs: Iterable[Job], pricing: PricingSettings) -> tuple[float, float | None, float]:
    """(one training job, the same on managed spot or None, a tuning job): each at its bound."""
    training, spot, tuning = 0.0, None, 0.0
    for job in jobs:
        if job.kind == "ec2_run":
            rate = pricing.ec2.get(job.request["InstanceType"], 0.0)
            training = rate * job.request.get("MinCount", 1) * (job.max_runtime_s or 0) / SECONDS_PER_HOUR
        elif job.kind in ("training_job", "tuning_job"):
            definition = job.request.get("TrainingJobDefinition", job.request)
            resources = definition["ResourceConfig"]
            runtime = definition["StoppingCondition"]["MaxRuntimeInSeconds"]
            training = (pricing.training.get(resources["InstanceType"], 0.0) * resources["InstanceCount"]
                        * runtime / SECONDS_PER_HOUR)
            if definition.get("EnableManagedSpotTraining"):
                spot = training * (1 - pricing.spot_discount)
            if job.kind == "tuning_job":
                limits = job.request["HyperParameterTuningJobConfig"]["ResourceLimits"]
                tuning = training * limits["MaxNumberOfTrainingJobs"]
    return training, spot, tuning


def usage_cost(instance_hours: Mapping[str, float], lambda_requests: float, lambda_gb_seconds: float,
               provisioned_gb_seconds: float, pricing: PricingSettings) -> float:
    """The cost of measured or simulated use (stage=simulate): hosting instance-hours per type,
    Lambda requests and on-demand GB-seconds, provisioned concurrency's configured GB-seconds
    (Lambda bills a request on provisioned concurrency at a lower duration rate; counted here at
    the on-demand one, an upper bound)."""
    hosting = sum(hours * pricing.hosting[instance_type] for instance_type, hours in instance_hours.items())
    lam = pricing.lambda_
    return (hosting + lambda_requests / 1e6 * lam.requests_per_million + lambda_gb_seconds * lam.gb_second
            + provisioned_gb_seconds * lam.provisioned_gb_second)
