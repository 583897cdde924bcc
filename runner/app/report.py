"""The run report at the end of the whole job: what was checked, trained, deployed and answered."""

from __future__ import annotations

from typing import Any

from rich.panel import Panel

from runner.app.context import RunContext


def _metric(metrics: dict[str, Any], *names: str) -> str:
    for name in names:
        if isinstance(metrics.get(name), int | float):
            return f"{metrics[name]:.4f}"
    return "n/a"


def report_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    gate, cost = result.get("gate") or {}, result.get("cost") or {}
    counts = gate.get("counts") or {}
    if gate:
        lines.append(f"gate       {gate['verdict'].upper()} (fail_on={gate['fail_on']}): "
                     + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("critical", "high", "medium", "low")))
    if cost:
        lines.append(f"cost       ${cost['monthly_min']:,.2f} to ${cost['monthly_max']:,.2f} per month "
                     f"(endpoint at min..max capacity + provisioned concurrency; prices {cost['price_snapshot']})")
    training = result.get("training") or {}
    if training:
        metrics = training.get("metrics") or {}
        lines.append(f"training   {training['launcher']}: test accuracy {_metric(metrics, 'test_accuracy')}, "
                     f"test loss {_metric(metrics, 'test_loss')}, artifact {training['artifact']}")
    deployed = result.get("deploy") or {}
    if deployed:
        concurrency = deployed.get("concurrency", {})
        variants = deployed.get("variants", [])
        named = len(variants) > 1
        lines.append(f"endpoint   {deployed['endpoint']}: " + "; ".join(_variant(v, named) for v in variants))
        lines.append(f"function   {deployed['function']}:{concurrency.get('alias')}: reserved concurrency "
                     f"{concurrency.get('reserved')}, provisioned {concurrency.get('provisioned')}")
        lines.append(f"apply      {len(deployed.get('created', []))} created, {len(deployed.get('updated', []))} "
                     f"updated, {len(deployed.get('deleted', []))} deleted")
    predictions = result.get("predictions") or []
    if predictions:
        right = sum(1 for p in predictions if p.get("label") is not None and p.get("label") == p.get("true_label"))
        labelled = sum(1 for p in predictions if p.get("true_label") is not None)
        shown = ", ".join(f"{p['image']} → {p.get('label')}" for p in predictions)
        lines.append(f"invoke     {shown}" + (f" ({right}/{labelled} correct)" if labelled else ""))
    return lines


def _variant(variant: dict[str, Any], named: bool) -> str:
    size = (f"{variant['InstanceType']} x {variant['InitialInstanceCount']}" if "InstanceType" in variant
            else "serverless")
    scaling = variant.get("autoscaling")
    return ((f"{variant['VariantName']} (weight {variant['InitialVariantWeight']:g}) " if named else "") + size
            + (f", autoscaling {scaling['min']}..{scaling['max']}" if scaling else ""))


def print_run_report(context: RunContext) -> None:
    lines = report_lines(context.result)
    lines.append(f"files      {context.run_dir}")
    context.console.print(Panel("\n".join(lines), title=f"sagegate run: {context.settings.name}", expand=False))
