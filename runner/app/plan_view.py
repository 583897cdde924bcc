"""Console rendering of a stack: what it declares and what it costs."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from runner.core.cost import CostSummary
from runner.stack.model import JobSpec, Resource, Stack


def _actions(document: dict[str, Any]) -> list[str]:
    lines = []
    for statement in document.get("Statement", []):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = statement.get("Resource", [])
        count = 1 if isinstance(resources, str) else len(resources)
        lines.append(f"{', '.join(actions)} on {count} resource{'s' if count != 1 else ''}")
    return lines


def describe(resource: Resource) -> str:
    """The values that matter for one resource, on one or a few lines."""
    p = resource.properties
    kind = resource.type
    if kind == "AWS::IAM::Role":
        principal = p["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"]
        scopes = [line for policy in p.get("Policies", []) for line in _actions(policy["PolicyDocument"])]
        return "\n".join([f"trusted by {principal}", *scopes, *p.get("ManagedPolicyArns", [])])
    if kind == "AWS::SageMaker::Model":
        return f"image {p['PrimaryContainer']['Image'].split('/')[-1]}\ndata {p['PrimaryContainer']['ModelDataUrl']}"
    if kind == "AWS::SageMaker::EndpointConfig":
        lines = []
        for v in p["ProductionVariants"]:
            if "ServerlessConfig" in v:
                sc = v["ServerlessConfig"]
                lines.append(f"{v['VariantName']}: serverless {sc['MemorySizeInMB']} MB, max concurrency {sc['MaxConcurrency']}")
            else:
                lines.append(f"{v['VariantName']}: {v['InstanceType']} x {v['InitialInstanceCount']}")
        lines.append(f"KMS {p.get('KmsKeyId', 'default')}")
        return "\n".join(lines)
    if kind == "AWS::SageMaker::Endpoint":
        return f"config {p['EndpointConfigName']}"
    if kind == "AWS::ApplicationAutoScaling::ScalableTarget":
        return f"{p['ResourceId']}\ncapacity {p['MinCapacity']}..{p['MaxCapacity']}"
    if kind == "AWS::ApplicationAutoScaling::ScalingPolicy":
        c = p["TargetTrackingScalingPolicyConfiguration"]
        return (f"target {c['TargetValue']:g} {c['PredefinedMetricSpecification']['PredefinedMetricType']}\n"
                f"cooldowns in {c['ScaleInCooldown']} s / out {c['ScaleOutCooldown']} s")
    if kind == "AWS::Lambda::Function":
        return (f"{p['Runtime']} {p['MemorySize']} MB timeout {p['Timeout']} s\n"
                f"reserved concurrency {p['ReservedConcurrentExecutions']}")
    if kind == "AWS::Lambda::Alias":
        pc = p.get("ProvisionedConcurrencyConfig", {}).get("ProvisionedConcurrentExecutions", 0)
        return f"alias {p['Name']}, provisioned concurrency {pc}"
    if kind == "AWS::Lambda::Version":
        return p["Description"]
    if kind == "AWS::SageMaker::NotebookInstance":
        return (f"{p['InstanceType']}, root {p['RootAccess']}, internet {p['DirectInternetAccess']}, "
                f"KMS {p.get('KmsKeyId', 'none')}")
    return ""


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
        return f"{r['InstanceType']}, IMDSv2 {r['MetadataOptions']['HttpTokens']}, terminate on shutdown"
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
        table.add_row(f"[{ACTION_STYLE.get(action, '')}]{action}[/]", change.get("logical_id") or "",
                      (change.get("type") or "").replace("AWS::", ""), change.get("name") or "", details)
    console.print(table)
    counts = {a: sum(1 for c in changes if c["action"] == a) for a in ACTION_STYLE}
    console.print("  " + ", ".join(f"{n} to {a}" if a != "no-change" else f"{n} unchanged"
                                   for a, n in counts.items() if n))
