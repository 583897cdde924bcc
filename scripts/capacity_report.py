"""The capacity results of docs/capacity.md, recomputed: what the default config and the 2023
reference preset hold, where they break, what they cost, and what the simulator recommends
instead for two traffic profiles.

    .venv/bin/python scripts/capacity_report.py          # prints the markdown section (≈ 1 min)

Every figure comes from ``runner.capacity.path.simulate_config`` on composed settings, exactly as
``python main.py stage=simulate`` would compute it.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.app.compose import compose_settings  # noqa: E402
from runner.capacity.path import simulate_config  # noqa: E402

SLO = ["slo.p99_ms=300.0", "slo.error_rate=0.001"]
CONFIGS = {
    "default": [],
    "reference_2023": ["experiment=reference_2023", "notebook.subnet_id=subnet-0123456789abcdef0",
                       "notebook.security_group_ids=[sg-0123456789abcdef0]"],
}
PROFILES = {
    "diurnal": ["traffic=diurnal"],
    "bursty": ["traffic=bursty"],
    "busy diurnal (mean 20 rps)": ["traffic=diurnal", "traffic.mean_rps=20.0"],
}
INSTANCE_TYPES = ["ml.t2.medium", "ml.c5.large", "ml.m5.large", "ml.c5.xlarge", "ml.m5.xlarge", "ml.c5.2xlarge"]


def _day(overrides: list[str]) -> dict:
    simulation = simulate_config(compose_settings(overrides))
    return {**simulation.day.summary, "cost_usd_month": simulation.cost_usd_month, "slo_met": simulation.slo_met,
            "events": simulation.day.events}


def holds(base: list[str]) -> float:
    """The highest constant rate (requests/s) a 2-hour run from the config's initial capacity
    serves within the SLO, to 2 %."""
    def ok(rps: float) -> bool:
        return bool(_day([*base, *SLO, "traffic=constant", "traffic.minutes=120", f"traffic.rps={rps}"])["slo_met"])

    low, high = 0.0, 1.0
    while ok(high) and high < 5000:
        low, high = high, high * 2
    while high - low > 0.02 * high:
        middle = (low + high) / 2
        low, high = (middle, high) if ok(middle) else (low, middle)
    return low


def breaks(base: list[str], rps: float) -> str:
    day = _day([*base, *SLO, "traffic=constant", "traffic.minutes=120", f"traffic.rps={rps:.3f}"])
    parts = [f"{day['error_rate']:.1%} errors ({day['throttled']:,} throttled, {day['rejected']:,} rejected)",
             f"p99 {day['p99_ms']:.0f} ms", f"{day['max_instances']} instances"]
    return ", ".join(parts)


def recommend(base: list[str], profile: list[str]) -> tuple[str, dict] | None:
    """The cheapest instance type x max capacity x target value x reserved concurrency meeting
    the SLO on the profile's day."""
    best = None
    for instance_type, max_capacity, target, reserved in itertools.product(
            INSTANCE_TYPES, (1, 2, 3, 4, 6), (200.0, 600.0, 1500.0, 3000.0), (5, 20, 50)):
        overrides = [*base, *SLO, *profile, f"endpoint.variants.AllTraffic.instance_type={instance_type}",
                     f"autoscaling.max_capacity={max_capacity}", f"autoscaling.target_value={target}",
                     f"function.reserved_concurrency={reserved}", "function.provisioned_concurrency=2"]
        try:
            day = _day(overrides)
        except Exception:  # noqa: BLE001 - an invalid combination (e.g. an instance type the preset refuses)
            continue
        if day["slo_met"] and (best is None or day["cost_usd_month"] < best[1]["cost_usd_month"]):
            name = (f"{instance_type}, max {max_capacity}, target {target:g}/instance/min, "
                    f"reserved concurrency {reserved}")
            best = (name, day)
    return best


def main() -> None:
    print(f"SLO: {' '.join(SLO)}\n")
    for name, base in CONFIGS.items():
        rate = holds(base)
        print(f"### {name}\n")
        print(f"- holds {rate:.2f} requests/s (a constant 2-hour load from its initial capacity, within the SLO);")
        print(f"- at 1.5x that ({rate * 1.5:.2f}/s): {breaks(base, rate * 1.5)};")
        for profile, overrides in PROFILES.items():
            day = _day([*base, *SLO, *overrides])
            print(f"- {profile} day: {day['requests']:,} requests, p99 {day['p99_ms']:.0f} ms, "
                  f"errors {day['error_rate']:.3%}, up to {day['max_instances']} instances, "
                  f"${day['cost_usd_month']:,.2f} a month, SLO {'met' if day['slo_met'] else 'missed'};")
            found = recommend(base, overrides)
            if found is None:
                print(f"  recommended for {profile}: none of the combinations meets the SLO")
            else:
                what, best = found
                print(f"  recommended for {profile}: {what}: ${best['cost_usd_month']:,.2f} a month, "
                      f"p99 {best['p99_ms']:.0f} ms, errors {best['error_rate']:.3%}")
        print()


if __name__ == "__main__":
    main()
