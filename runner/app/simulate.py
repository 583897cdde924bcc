"""stage=simulate: a day of the traffic profile through the config's path (docs/capacity.md).

Writes simulation.json (summary, one entry per minute, inputs, scaling events), simulation.csv
(the minutes), simulation.png (traffic, instances, errors and p99 against the SLO) and prints a
summary. Exit 1 when an SLO is set and the day misses it."""

from __future__ import annotations

import csv
from pathlib import Path

from rich.table import Table

from runner.app.context import RunContext
from runner.capacity.path import Simulation, simulate_config
from runner.core.errors import EXIT_OK, EXIT_VIOLATIONS, UserError


def simulate_stage(context: RunContext) -> int:
    settings = context.settings
    measured = None
    if settings.simulate.calibrate:
        from runner.app.calibrate import calibrated

        artifact = Path(settings.workdir) / settings.name / "model.tar.gz"
        if not artifact.is_file():
            raise UserError(f"simulate.calibrate: no trained model at {artifact}; run stage=train first, or set "
                            "simulate.calibrate=false to use the shipped service time")
        with context.console.status("calibrating: the artifact's service time on the local endpoint server"):
            measured = calibrated(artifact, Path(settings.workdir), settings.data.image_size)
    simulation = simulate_config(settings, measured)
    record = simulation.as_dict()
    context.write_json("simulation.json", record)
    _write_csv(context.run_dir / "simulation.csv", record["minutes"])
    _plot(context.run_dir / "simulation.png", simulation, settings.slo.p99_ms)
    context.result["simulation"] = record["summary"]
    context.result["slo"] = {"p99_ms": settings.slo.p99_ms, "error_rate": settings.slo.error_rate}
    _print(context, simulation, record)
    return EXIT_VIOLATIONS if simulation.slo_met is False else EXIT_OK


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["t"])
        writer.writeheader()
        writer.writerows(rows)


def _plot(path: Path, simulation: Simulation, slo_p99_ms: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    m = simulation.day.minutes
    hours = m["t"] / 60.0
    figure, axes = plt.subplots(4, 1, figsize=(10, 9), sharex=True)
    axes[0].plot(hours, m["arrivals"], lw=0.8)
    axes[0].set_ylabel("requests / min")
    axes[1].step(hours, m["instances"], where="post", label="in service")
    axes[1].step(hours, m["billed"], where="post", ls="--", label="billed (starting too)")
    axes[1].set_ylabel("instances")
    axes[1].legend(loc="upper left", fontsize=8)
    axes[2].plot(hours, m["throttled"], lw=0.8, label="throttled (429)")
    axes[2].plot(hours, m["rejected"], lw=0.8, label="rejected (424)")
    axes[2].set_ylabel("errors / min")
    axes[2].legend(loc="upper left", fontsize=8)
    axes[3].plot(hours, m["p99_ms"], lw=0.8, label="p99")
    axes[3].plot(hours, m["p50_ms"], lw=0.8, label="p50")
    if slo_p99_ms is not None:
        axes[3].axhline(slo_p99_ms, color="red", ls=":", label=f"SLO p99 {slo_p99_ms:g} ms")
    axes[3].set_ylabel("latency ms")
    axes[3].set_xlabel("hour")
    axes[3].legend(loc="upper left", fontsize=8)
    figure.suptitle(f"{simulation.traffic.profile} traffic through {simulation.instance_type}")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _print(context: RunContext, simulation: Simulation, record: dict) -> None:
    s = record["summary"]
    table = Table(title=f"simulated {len(record['minutes'])} minutes of {simulation.traffic.profile} traffic",
                  show_header=False)
    table.add_row("requests", f"{s['requests']:,}")
    table.add_row("served / throttled / rejected", f"{s['served']:,} / {s['throttled']:,} / {s['rejected']:,}")
    table.add_row("error rate", f"{s['error_rate']:.4%}")
    table.add_row("latency p50 / p95 / p99", f"{s['p50_ms']:.0f} / {s['p95_ms']:.0f} / {s['p99_ms']:.0f} ms")
    table.add_row("instances (max) / instance-hours", f"{s['max_instances']} / {s['instance_hours']:.1f}")
    table.add_row("cost", f"${s['cost_usd_day']:.2f} a day, ${s['cost_usd_month']:.2f} a month")
    if s["slo_met"] is not None:
        table.add_row("SLO", "met" if s["slo_met"] else "MISSED")
    table.add_row("service time", f"{simulation.params.service_ms:g} ms (cv {simulation.params.service_cv:g}): "
                                  f"{simulation.service.source}")
    context.console.print(table)
    context.console.print(f"files: {context.run_dir / 'simulation.json'}, simulation.csv, simulation.png",
                          highlight=False, markup=False, soft_wrap=True)
