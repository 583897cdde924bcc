"""The analytic per-minute model of the whole path (docs/capacity.md): Lambda's concurrency and
rate limits and cold starts, the endpoint's instances as M/G/c/K queues, target-tracking
autoscaling between minutes. One config-day is 1,440 small steps; what a step computes for an
instance depends only on its arrival rate, so answers are cached by rate (1 % buckets)."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runner.capacity.autoscaling import ScalingPolicy, TargetTracking
from runner.capacity.queueing import (
    Grid,
    InstanceAnswer,
    busy_tail,
    erlang_b_scalar,
    instance_answer,
    poisson_quantile,
    quantiles,
    service_pmf,
    wait_factor,
)

RATE_BUCKET = 0.01  # relative width of the arrival-rate buckets the instance answers are cached by
BUSY_QUANTILE = 0.999  # on-demand environments kept busy: this quantile of the concurrency
LIMIT_SD = 2.0  # instance_limit: binomial standard deviations above R/n
BOUNDED_BELOW = 5000  # busy_tail is tried for reserved concurrency below this (its cost grows with R)
Key = tuple[int | None, int, int]  # an instance answer's cache key: (rate bucket, routes, holding limit)


@dataclass(frozen=True)
class PathParams:
    reserved: int  # Lambda reserved concurrency R
    provisioned: int  # Lambda provisioned concurrency P
    lambda_overhead_ms: float
    cold_start_ms: float
    keep_warm_minutes: int
    workers: int  # model-server workers per instance
    queue: int  # model-server queue (requests waiting per instance)
    service_ms: float  # one request on one worker, mean
    service_cv: float
    scaling: ScalingPolicy
    initial_instances: int


@dataclass
class DayResult:
    """Per-minute arrays (``minutes``; latencies NaN in a minute that served nothing), the day's
    ``summary`` and the scaling ``events``."""

    minutes: dict[str, np.ndarray]
    summary: dict[str, Any]
    events: list[tuple[int, str, int, int]] = field(default_factory=list)

    def minute_rows(self) -> list[dict[str, Any]]:
        keys = ("t", "arrivals", "instances", "throttled", "rejected", "p50_ms", "p99_ms")
        columns = [self.minutes[k].tolist() for k in keys]
        # A minute that served nothing has no latency: None in JSON and CSV, a gap in the plot.
        return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in zip(keys, row, strict=True)}
                for row in zip(*columns, strict=True)]


def instance_limit(reserved: int, routes: int) -> int:
    """The most requests one of ``routes`` instances holds when Lambda's R environments are all in
    the endpoint, split at random: R/n plus two binomial standard deviations."""
    share = reserved / routes
    return max(1, math.ceil(share + LIMIT_SD * math.sqrt(share * (1.0 - 1.0 / routes))))


class _Instances:
    """Instance answers by arrival-rate bucket, on one latency grid."""

    def __init__(self, p: PathParams, cv_a: float):
        self.p, self.cv_a = p, cv_a
        self.service_s = p.service_ms / 1000.0
        shape = wait_factor(cv_a, p.service_cv, 1)
        self.grid = Grid.for_service(self.service_s, p.workers, p.queue, shape)
        self.service = service_pmf(self.grid, self.service_s, p.service_cv)
        self._cache: dict[Key, InstanceAnswer] = {}
        self._quantiles: dict[Key, list[float]] = {}

    def bucket(self, rate: float, routes: int) -> Key:
        """The cache key of an instance among ``routes`` receiving ``rate`` requests/s: its rate's
        bucket, the instance count when it matters (random routing thins a non-Poisson stream) and
        the most requests it can hold (``instance_limit``, when below workers + queue)."""
        limit = min(instance_limit(self.p.reserved, routes), self.p.workers + self.p.queue)
        return (None if rate <= 0 else round(math.log(rate) / RATE_BUCKET),
                1 if abs(self.cv_a - 1.0) < 1e-9 else routes, limit)

    def answer(self, key: Key) -> InstanceAnswer:
        if key not in self._cache:
            bucket, routes, limit = key
            rate = 0.0 if bucket is None else math.exp(bucket * RATE_BUCKET)
            self._cache[key] = instance_answer(rate * routes, self.service_s, self.p.service_cv, self.cv_a,
                                               self.p.workers, self.p.queue, self.grid, self.service, routes,
                                               limit)
        return self._cache[key]

    def minute_quantiles(self, key: Key) -> list[float]:
        if key not in self._quantiles:
            self._quantiles[key] = quantiles(self.answer(key).response_pmf, self.grid, (0.5, 0.99))
        return self._quantiles[key]

    def with_cold_starts(self, pmf: np.ndarray, share: float) -> np.ndarray:
        shift = int(round(self.p.cold_start_ms / 1000.0 / self.grid.step_s))
        shifted = np.zeros_like(pmf)
        if shift < len(pmf):
            shifted[shift:] = pmf[: len(pmf) - shift]
        shifted[-1] += pmf[len(pmf) - shift:].sum() if shift else 0.0
        return (1.0 - share) * pmf + share * shifted


def simulate(counts: np.ndarray, cv_a: float, p: PathParams) -> DayResult:
    """The day, minute by minute: arrivals ``counts`` (one per minute) with inter-arrival CV
    ``cv_a`` through Lambda (limits, cold starts), the endpoint and its autoscaling."""
    counts = np.asarray(counts, dtype=float)
    n_minutes = len(counts)
    instances = _Instances(p, cv_a)
    scaler = TargetTracking(p.scaling, p.initial_instances)
    overhead_s = p.lambda_overhead_ms / 1000.0
    cold_s = p.cold_start_ms / 1000.0
    rate_cap = 10.0 * p.reserved  # invocations per second per function (CAPACITY.md §3.2)
    out = {k: np.zeros(n_minutes) for k in (
        "arrivals", "instances", "billed", "throttled", "throttled_rate", "rejected", "served", "cold_starts",
        "p50_ms", "p99_ms", "lambda_busy_s", "over_target", "at_max", "starting")}
    day_weights: dict[Key, float] = {}
    day_extra = np.zeros(instances.grid.points)  # minutes with cold starts, added as they are
    warm_history: deque[float] = deque(maxlen=max(p.keep_warm_minutes, 1))
    cold_share = 0.0
    for t in range(n_minutes):
        serving = max(scaler.in_service(t), 1)
        billed = scaler.billed(t)
        arrivals = counts[t]
        over_rate = max(0.0, arrivals - rate_cap * 60.0)
        rate_in = (arrivals - over_rate) / 60.0
        # Lambda's concurrency depends on the endpoint's latency, which depends on what Lambda
        # lets through: the throttled fraction b solves b = B(rate_in x D(b)), D the holding time at
        # the endpoint rate rate_in (1 - b). B(...) - b falls as b grows: fixed-point steps, kept
        # inside the bracket they establish (bisection when a step leaves it), until the endpoint's
        # rate bucket repeats.
        blocked, lo, hi = 0.0, 0.0, 1.0
        key = instances.bucket(rate_in / serving, serving)
        answer = instances.answer(key)
        for _ in range(30):
            duration = overhead_s + (1.0 - answer.rejected) * answer.mean_response_s + cold_share * cold_s
            offered = rate_in * duration
            new_blocked = erlang_b_scalar(offered, p.reserved, cv_a)
            if new_blocked > 1e-6 and p.reserved < BOUNDED_BELOW:
                # Erlang B counts busy environments as Poisson; when the endpoint's bounded queue
                # holds most of them, they cannot exceed its capacity plus those outside the call.
                bound = busy_tail(answer.occupancy, serving, rate_in * (overhead_s + cold_share * cold_s),
                                  p.reserved)
                new_blocked = min(new_blocked, bound)
            if new_blocked > blocked:
                lo = blocked
            else:
                hi = blocked
            blocked = new_blocked if lo <= new_blocked <= hi else 0.5 * (lo + hi)
            new_key = instances.bucket(rate_in * (1.0 - blocked) / serving, serving)
            if new_key == key or hi - lo < 1e-4:
                break
            key, answer = new_key, instances.answer(new_key)
        throttled_concurrency = rate_in * 60.0 * blocked
        to_endpoint = arrivals - over_rate - throttled_concurrency
        rejected = to_endpoint * answer.rejected
        served = to_endpoint - rejected
        # Cold starts: environments needed beyond the provisioned and the recently warm ones.
        busy = offered * (1.0 - blocked)
        needed = min(poisson_quantile(busy, BUSY_QUANTILE), float(p.reserved))
        warm = max([float(p.provisioned), *warm_history])
        cold = max(0.0, needed - warm)
        warm_history.append(needed)
        cold_share = min(1.0, cold / served) if served > 0 else 0.0
        if cold_share > 0:
            pmf = instances.with_cold_starts(answer.response_pmf, cold_share)
            p50, p99 = quantiles(pmf, instances.grid, (0.5, 0.99))
            day_extra += served * pmf
        else:
            p50, p99 = instances.minute_quantiles(key)
            day_weights[key] = day_weights.get(key, 0.0) + served
        metric = to_endpoint / serving
        for name, value in (("arrivals", arrivals), ("instances", serving), ("billed", billed),
                            ("throttled", over_rate + throttled_concurrency), ("throttled_rate", over_rate),
                            ("rejected", rejected), ("served", served), ("cold_starts", cold),
                            ("p50_ms", (overhead_s + p50) * 1000.0 if served > 0 else math.nan),
                            ("p99_ms", (overhead_s + p99) * 1000.0 if served > 0 else math.nan),
                            ("lambda_busy_s", (arrivals - over_rate - throttled_concurrency) * duration),
                            ("over_target", float(metric > p.scaling.target)),
                            ("at_max", float(scaler.desired >= p.scaling.max_capacity)),
                            ("starting", float(billed > serving))):
            out[name][t] = value
        scaler.step(t, to_endpoint)

    day_pmf = day_extra.copy()
    for key, weight in day_weights.items():
        day_pmf += weight * instances.answer(key).response_pmf
    d50, d95, d99 = quantiles(day_pmf, instances.grid, (0.5, 0.95, 0.99))
    requests, served_total = float(counts.sum()), float(out["served"].sum())
    errors = float(out["throttled"].sum() + out["rejected"].sum())
    summary = {
        "requests": int(round(requests)), "served": int(round(served_total)),
        "throttled": int(round(out["throttled"].sum())), "rejected": int(round(out["rejected"].sum())),
        "error_rate": errors / requests if requests else 0.0,
        "p50_ms": (overhead_s + d50) * 1000.0 if served_total else 0.0,
        "p95_ms": (overhead_s + d95) * 1000.0 if served_total else 0.0,
        "p99_ms": (overhead_s + d99) * 1000.0 if served_total else 0.0,
        "max_instances": int(out["billed"].max()) if n_minutes else 0,
        "instance_hours": float(out["billed"].sum()) / 60.0,
        "lambda_gb_seconds_per_gb": float(out["lambda_busy_s"].sum()),
    }
    out["t"] = np.arange(n_minutes, dtype=float)
    return DayResult(out, summary, list(scaler.events))
