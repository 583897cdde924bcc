"""Capacity simulation speed: one config-day with the analytic model, and what simulating adds
to the 100-combination gate sweep.

    .venv/bin/python benchmarks/simulate_speed.py

Measured in one run:

1. **one config-day**: the default config's day (diurnal profile, 1,440 minutes) through
   ``runner.capacity.path.simulate_config``, median of 15 runs after one warm-up; baseline: the
   request-by-request discrete-event simulation of the same day (tests/capacity/des.py, SimPy),
   the model the analytic one is validated against. Goal (issue 14): ≤ 50 ms.
2. **a 100-configuration sweep**: benchmarks/gate_sweep.py's combinations (5 instance types x 4
   max capacities x 5 provisioned concurrencies), each with an SLO so the gate simulates its day:
   the native gate (``policies.gate.evaluate``) with and without the SLO, on the same composed
   settings and stacks; the difference is what simulation adds. Goal: ≤ 10 s for the 100.

Not a test: numbers depend on the machine and on what else runs.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "capacity"))
sys.path.insert(0, str(REPO / "benchmarks"))

from gate_sweep import combinations  # noqa: E402

from policies.gate import evaluate  # noqa: E402
from runner.app.compose import compose_settings  # noqa: E402
from runner.capacity.path import path_params, simulate_config, traffic_of  # noqa: E402
from runner.stack.build import build_stack  # noqa: E402

SLO = ["slo.p99_ms=300.0", "slo.error_rate=0.01"]


def one_day() -> None:
    settings = compose_settings([])
    simulate_config(settings)  # warm-up: imports, caches
    times = []
    for _ in range(15):
        started = time.perf_counter()
        simulation = simulate_config(settings)
        times.append(time.perf_counter() - started)
    analytic = statistics.median(times)

    from des import simulate_des

    params, _, _ = path_params(settings)
    traffic = traffic_of(settings)
    started = time.perf_counter()
    simulate_des(traffic.counts, traffic.cv_a, params, seed=0)
    des = time.perf_counter() - started
    requests = simulation.day.summary["requests"]
    print(f"one config-day (default config, diurnal, {requests:,} requests):")
    print(f"  analytic model   {analytic * 1000:8.1f} ms  (median of 15; goal <= 50 ms: "
          f"{'met' if analytic <= 0.05 else 'MISSED'})")
    print(f"  DES (SimPy)      {des * 1000:8.1f} ms  -> analytic is {des / analytic:.0f}x faster")


def sweep() -> None:
    combos = combinations()
    plain, with_slo = [], []
    for combo in combos:
        settings = compose_settings(["policy.checkov.enabled=false", *combo])
        stack = build_stack(settings)
        plain.append((settings, stack))
        with_slo.append((compose_settings(["policy.checkov.enabled=false", *combo, *SLO]), stack))

    def gate_all(pairs) -> float:  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        for settings, stack in pairs:
            evaluate(settings, stack, stack.cost(settings.pricing))
        return time.perf_counter() - started

    gate_all(plain[:3])  # warm-up
    without = gate_all(plain)
    with_simulation = gate_all(with_slo)
    added = with_simulation - without
    print(f"gate over {len(combos)} combinations (native rules, checkov off):")
    print(f"  without an SLO   {without:8.2f} s")
    print(f"  with an SLO      {with_simulation:8.2f} s  (every day simulated)")
    print(f"  simulation adds  {added:8.2f} s  = {added / len(combos) * 1000:.0f} ms a combination "
          f"(goal <= 10 s: {'met' if added <= 10 else 'MISSED'}); ratio {with_simulation / without:.2f}x")


if __name__ == "__main__":
    one_day()
    sweep()
