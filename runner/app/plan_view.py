"""Console rendering of a stack: what it declares and what it costs."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from runner.core.cost import CostSummary
from runner.deploy.drivers import DRIVERS
from runner.stack.ec2_image import describe_image
from runner.stack.model import JobSpec, Resource, Stack


def describe(resource: Resource) -> str:
    """The values that matter for one resource, on one or a few lines (its kind's driver knows which)."""
    driver = DRIVERS.get(resource.type)
    return driver.describe(resource.properties) if driver is not None else ""


def describe_job(job: JobSpec) -> str:
    r = job.request
    if job.kind == "local_training":
        hp = r["HyperParameters"]
        return f"local process x {r['InstanceCount']}: {hp['arch']} @{hp['image_size']} px, {hp['epochs']} epochs"
    if job.kind == "training_job":
        rc, sc = r["ResourceConfig"], r["StoppingCondition"]
        spot = " spot" if r.get("EnableManagedSpotTraining") else ""
        return f"{rc['InstanceType']} x {rc['InstanceCount']}{spot}, max {sc['MaxRuntimeInSeconds']} s"
    if job.kind == "tuning_job":
        cfg, d = r["HyperParameterTuningJobConfig"], r["TrainingJobDefinition"]
        limits = cfg["ResourceLimits"]
        return (f"{limits['MaxNumberOfTrainingJobs']} jobs, {limits['MaxParallelTrainingJobs']} parallel, "
                f"{d['ResourceConfig']['InstanceType']} x {d['ResourceConfig']['InstanceCount']}, "
                f"{cfg['HyperParameterTuningJobObjective']['Type']} {cfg['HyperParameterTuningJobObjective']['MetricName']}")
    if job.kind == "ec2_run":
        subnet = next((n["SubnetId"] for n in r.get("NetworkInterfaces", []) if n.get("SubnetId")), "no subnet")
        return (f"{r['InstanceType']}, IMDSv2 {r['MetadataOptions']['HttpTokens']}, terminate on shutdown, {subnet}\n"
                f"{describe_image(r['ImageId'], r['InstanceType'])}\n[dim]ImageId {r['ImageId']}[/]")
    return ""


def cost_lines(costs: CostSummary) -> list[str]:
    lines = [
        f"endpoint: ${costs.endpoint_monthly_min:,.2f}/month at min capacity, "
        f"${costs.endpoint_monthly_max:,.2f}/month at max (${costs.endpoint_hourly_max:.3f}/h)",
        f"provisioned concurrency: ${costs.provisioned_concurrency_monthly:,.2f}/month",
    ]
    if costs.notebook_monthly:
        lines.append(f"notebook: ${costs.notebook_monthly:,.2f}/month")
    if costs.training_job:
        spot = f" (spot ≈ ${costs.training_job_spot:,.2f})" if costs.training_job_spot is not None else ""
        lines.append(f"training job: at most ${costs.training_job:,.2f}{spot}")
    if costs.tuning_job:
        lines.append(f"tuning job: at most ${costs.tuning_job:,.2f}")
    lines.append(f"total: ${costs.monthly_min:,.2f} to ${costs.monthly_max:,.2f} per month "
                 f"(prices {costs.price_snapshot})")
    return lines


def print_plan(console: Console, stack: Stack, costs: CostSummary) -> None:
    table = Table(title=f"stack {stack.name} — {stack.region}, account {stack.account}", show_lines=True)
    table.add_column("resource")
    table.add_column("type")
    table.add_column("what matters")
    for resource in stack.resources:
        name = resource.physical_name
        label = resource.logical_id + (f"\n[dim]{name}[/]" if name else "")
        table.add_row(label, resource.type.replace("AWS::", ""), describe(resource))
    for job in stack.jobs:
        table.add_row(job.logical_id, job.api or "local", describe_job(job))
    console.print(table)
    for line in cost_lines(costs):
        console.print(f"  {line}")


ACTION_STYLE = {"create": "green", "update": "yellow", "replace": "magenta", "delete": "red", "no-change": "dim"}


def print_changes(console: Console, changes: list[dict[str, Any]], live: bool) -> None:
    """The diff against live state (or, on a fresh embedded emulator, everything to create)."""
    title = "changes against live state" if live else "changes (the embedded emulator starts empty)"
    table = Table(title=title)
    for column in ("action", "resource", "type", "name", "details"):
        table.add_column(column, overflow="fold")
    for change in changes:
        action = change["action"]
        details = ", ".join(change.get("details") or [])
        if change.get("replaces"):
            details = f"replaces {change['replaces']}" + (f"; {details}" if details else "")
        # Names and details are live state's text: Text cells, never markup.
        table.add_row(Text(action, style=ACTION_STYLE.get(action, "")), Text(change.get("logical_id") or ""),
                      Text((change.get("type") or "").replace("AWS::", "")), Text(change.get("name") or ""),
                      Text(details))
    console.print(table)
    counts = {a: sum(1 for c in changes if c["action"] == a) for a in ACTION_STYLE}
    console.print("  " + ", ".join(f"{n} to {a}" if a != "no-change" else f"{n} unchanged"
                                   for a, n in counts.items() if n))
