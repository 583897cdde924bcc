"""The capacity model of docs/capacity.md request by request: a discrete-event simulation (SimPy)
of Lambda -> real-time endpoint -> target-tracking autoscaling, for the tests to judge the
analytic per-minute model (runner/capacity/model.py) against. A helper of the tests, not a test.

Each request is followed through the path; the only shared piece is the autoscaling rule
(runner.capacity.autoscaling.TargetTracking), a rule on per-minute counts that this simulation
feeds with the counts it measures. Choices the spec leaves open, made here:

- Arrivals: minute t holds exactly counts[t] arrivals of a stationary renewal process with Gamma
  inter-arrivals of CV cv_a. Drawn as counts[t] + 1 gaps: the first and the last are the
  process's equilibrium residual (U x a length-biased gap, Gamma(k + 1) x U for a Gamma(k) gap),
  the others plain Gamma(k) gaps; their cumulative sums are then rescaled so the n + 1 gaps fill
  [60 t, 60 (t + 1)). For cv_a = 1 this is exact (n uniform order statistics: Poisson conditioned
  on its count); otherwise the rescaling is the approximation of "conditioned on the count".
  cv_a = 0 gives evenly spaced arrivals with a random phase.
- Lambda rate cap 10 x R per second: a counter per whole second of simulated time (fixed
  1-s windows); only admitted invocations count against it. Checked before the concurrency cap.
- Lambda concurrency: an arrival finding R environments busy is throttled. Provisioned
  environments are used first; then the most recently used idle on-demand environment, if it was
  used within keep_warm_minutes; else a new environment is created and the request pays
  cold_start_ms (latency and busy time) before the handler runs.
- Where the handler's overhead sits: the endpoint is called as soon as the handler starts (after
  a cold start, if any), and the overhead is spent after the endpoint's answer. It does not change
  any latency, and it makes the endpoint see the arrival process itself (thinned by throttles),
  as the analytic model assumes. The environment is busy for cold start + endpoint response +
  overhead, or cold start + overhead when the endpoint rejected the request.
- Endpoint: the instances in service in a minute are fixed at the start of the minute
  (TargetTracking.in_service(t)); a request goes to one of them uniformly at random; each has
  `workers` servers and `queue` waiting places (FIFO); a request that finds workers + queue in the
  instance is rejected (424). Service times Gamma(mean service_ms, CV service_cv), iid.
- Scale-in: the instances taken out (the most recently added first) get no new requests; what they
  hold (in service and queued) finishes there. Added instances take requests from their minute on.
- The autoscaler's metric for minute t: the requests the endpoint received in minute t (served +
  rejected, counted when the endpoint is called), divided by the instances in service.
- Per-minute figures (arrivals, throttled, rejected, served, latency percentiles) are by the
  minute the request arrived at Lambda; latency = cold start + wait + service + overhead.
  Requests still in flight after the last minute are run to completion.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import simpy

from runner.capacity.autoscaling import TargetTracking
from runner.capacity.model import PathParams


@dataclass
class DesResult:
    """Per-minute arrays (index = minute of arrival at Lambda, except `invocations`, the minute
    the endpoint received them, and the instance counts) and the day's served requests."""

    arrivals: np.ndarray
    throttled_rate: np.ndarray  # over 10 R per second
    throttled_concurrency: np.ndarray  # R environments busy
    rejected: np.ndarray  # the endpoint's queue full (424)
    served: np.ndarray
    cold_starts: np.ndarray
    invocations: np.ndarray  # received by the endpoint (served + rejected), the scaling metric's sum
    lambda_busy_s: np.ndarray  # environment time of the minute's invocations (throttled ones hold none)
    in_service: np.ndarray  # instances taking requests in the minute
    billed: np.ndarray  # instances billed in the minute (starting ones included)
    p50_ms: np.ndarray  # over served requests of the minute (nan if none)
    p99_ms: np.ndarray
    latencies_ms: np.ndarray  # every served request, in order of completion
    waits_ms: np.ndarray  # its wait in the instance's queue, in order of service start
    events: list[tuple[int, str, int, int]] = field(default_factory=list)  # scaling (minute, action, from, to)

    @property
    def throttled(self) -> np.ndarray:
        return self.throttled_rate + self.throttled_concurrency

    @property
    def summary(self) -> dict:
        requests = int(self.arrivals.sum())
        served = int(self.served.sum())
        throttled = int(self.throttled.sum())
        rejected = int(self.rejected.sum())
        lat = self.latencies_ms
        pct = (lambda q: float(np.percentile(lat, q))) if lat.size else (lambda q: math.nan)
        return {
            "requests": requests,
            "served": served,
            "throttled": throttled,
            "rejected": rejected,
            "error_rate": (throttled + rejected) / requests if requests else 0.0,
            "p50_ms": pct(50),
            "p95_ms": pct(95),
            "p99_ms": pct(99),
            # As the analytic model's summary: the most instances billed (starting ones included).
            "max_instances": int(self.billed.max()) if self.billed.size else 0,
            "max_in_service": int(self.in_service.max()) if self.in_service.size else 0,
            "instance_hours": float(self.billed.sum()) / 60.0,
            "lambda_gb_seconds_per_gb": float(self.lambda_busy_s.sum()),
            "cold_starts": int(self.cold_starts.sum()),
        }

    @property
    def minutes(self) -> dict[str, np.ndarray]:
        """Per-minute arrays under the keys of the analytic model's DayResult.minutes."""
        return {
            "t": np.arange(len(self.arrivals)),
            "arrivals": self.arrivals,
            "instances": self.in_service,
            "billed": self.billed,
            "throttled": self.throttled,
            "throttled_rate": self.throttled_rate,
            "rejected": self.rejected,
            "served": self.served,
            "cold_starts": self.cold_starts,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "lambda_busy_s": self.lambda_busy_s,
        }

    def minute_rows(self) -> list[dict]:
        """One entry per minute: simulation.json's `minutes` fields (a minute that served nothing
        has p50/p99 None)."""
        keys = ("t", "arrivals", "instances", "throttled", "rejected", "p50_ms", "p99_ms")
        cols = self.minutes
        return [
            {k: (None if k.startswith("p") and math.isnan(cols[k][t]) else cols[k][t].item()) for k in keys}
            for t in range(len(self.arrivals))
        ]


def arrival_times(counts: np.ndarray, cv_a: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times in seconds, counts[t] of them in [60 t, 60 (t + 1)), sorted (see the module
    note for how a minute's renewal process is drawn)."""
    out = []
    for t, n in enumerate(np.asarray(counts, dtype=np.int64)):
        n = int(n)
        if n <= 0:
            continue
        if cv_a <= 0:
            pos = (rng.random() + np.arange(n)) / n
        else:
            k = 1.0 / (cv_a * cv_a)
            gaps = rng.gamma(k, 1.0, size=n + 1)
            gaps[0] = rng.gamma(k + 1.0) * rng.random()
            gaps[n] = rng.gamma(k + 1.0) * rng.random()
            cs = np.cumsum(gaps)
            pos = cs[:n] / cs[n]
        out.append(60.0 * (t + pos))
    return np.concatenate(out) if out else np.zeros(0)


class _Instance:
    __slots__ = ("held", "busy", "waiting")

    def __init__(self) -> None:
        self.held = 0  # in the instance: in service + waiting
        self.busy = 0  # workers serving
        self.waiting: deque = deque()


def simulate_des(counts: np.ndarray, cv_a: float, params: PathParams, seed: int = 0) -> DesResult:
    p = params
    counts = np.asarray(counts, dtype=np.int64)
    minutes = len(counts)
    rng = np.random.default_rng(seed)
    times = arrival_times(counts, cv_a, rng)
    total = len(times)
    if p.service_cv > 0:
        k = 1.0 / (p.service_cv * p.service_cv)
        svc = rng.gamma(k, p.service_ms / 1000.0 / k, size=total).tolist()
    else:
        svc = [p.service_ms / 1000.0] * total
    route = rng.random(total).tolist()
    minute_of = np.minimum((times // 60).astype(np.int64), minutes - 1).tolist() if total else []
    times_l = times.tolist()

    env = simpy.Environment()
    timeout = env.timeout
    overhead = p.lambda_overhead_ms / 1000.0
    cold_s = p.cold_start_ms / 1000.0
    keep = p.keep_warm_minutes * 60.0
    R = p.reserved
    rate_cap = 10 * R
    c = p.workers
    K = p.workers + p.queue

    n1 = minutes + 2  # calls delayed by a cold start may land after the last minute
    thr_rate = [0] * n1
    thr_conc = [0] * n1
    rejected = [0] * n1
    served = [0] * n1
    colds = [0] * n1
    invocations = [0] * n1
    lambda_busy = [0.0] * n1
    lat_by_min: list[list[float]] = [[] for _ in range(n1)]
    latencies: list[float] = []
    waits: list[float] = []

    active: list[_Instance] = []
    scaler = TargetTracking(p.scaling, p.initial_instances)
    in_service = np.zeros(minutes, dtype=np.int64)
    billed = np.zeros(minutes, dtype=np.int64)

    # Lambda state. Environments are released `overhead` after the endpoint answers (or rejects),
    # so releases come in time order: a deque of (time, provisioned?) applied lazily at arrivals.
    st = {"busy": 0, "prov_idle": min(p.provisioned, R), "sec": -1, "sec_count": 0}
    od_idle: list[float] = []  # last-use times of idle on-demand environments, ascending
    pending: deque = deque()

    def release_due(now: float) -> None:
        while pending and pending[0][0] <= now:
            t_rel, prov = pending.popleft()
            st["busy"] -= 1
            if prov:
                st["prov_idle"] += 1
            else:
                od_idle.append(t_rel)

    def release(now: float, prov: bool) -> None:
        if overhead > 0:
            pending.append((now + overhead, prov))
        else:
            pending.append((now, prov))
            release_due(now)

    def start(inst: _Instance, i: int, prov: bool, called: float) -> None:
        now = env.now
        waits.append(now - called)
        ev = timeout(svc[i], (inst, i, prov))
        ev.callbacks.append(done)

    def done(ev) -> None:
        inst, i, prov = ev._value
        now = env.now
        lat = now - times_l[i] + overhead
        m = minute_of[i]
        served[m] += 1
        lambda_busy[m] += lat
        lat_by_min[m].append(lat)
        latencies.append(lat)
        inst.held -= 1
        if inst.waiting:
            j, prov_j, called_j = inst.waiting.popleft()
            start(inst, j, prov_j, called_j)
        else:
            inst.busy -= 1
        release(now, prov)

    def call(i: int, prov: bool) -> None:
        now = env.now
        invocations[min(int(now // 60), n1 - 1)] += 1
        n = len(active)
        inst = active[int(route[i] * n)] if n else None
        if inst is None or inst.held >= K:
            m = minute_of[i]
            rejected[m] += 1
            lambda_busy[m] += now - times_l[i] + overhead
            release(now, prov)
            return
        inst.held += 1
        if inst.busy < c:
            inst.busy += 1
            start(inst, i, prov, now)
        else:
            inst.waiting.append((i, prov, now))

    def cold_call(ev) -> None:
        call(ev._value, False)

    def arrive(i: int, now: float) -> None:
        m = minute_of[i]
        if pending:
            release_due(now)
        sec = int(now)
        if sec != st["sec"]:
            st["sec"], st["sec_count"] = sec, 0
        if st["sec_count"] >= rate_cap:
            thr_rate[m] += 1
            return
        if st["busy"] >= R:
            thr_conc[m] += 1
            return
        st["sec_count"] += 1
        st["busy"] += 1
        if st["prov_idle"]:
            st["prov_idle"] -= 1
            call(i, True)
            return
        if od_idle:
            if od_idle[-1] >= now - keep:
                od_idle.pop()
                call(i, False)
                return
            od_idle.clear()  # the most recent one expired: all did
        colds[m] += 1
        if cold_s > 0:
            timeout(cold_s, i).callbacks.append(cold_call)
        else:
            call(i, False)

    def arrivals():
        for i in range(total):
            dt = times_l[i] - env.now
            if dt > 0:
                yield timeout(dt)
            arrive(i, times_l[i])

    def scaling():
        for t in range(minutes):
            if t:
                scaler.step(t - 1, invocations[t - 1])
            n = scaler.in_service(t)
            while len(active) < n:
                active.append(_Instance())
            del active[n:]  # taken out: they finish what they hold, get nothing new
            in_service[t] = n
            billed[t] = scaler.billed(t)
            yield timeout(60.0)
        scaler.step(minutes - 1, invocations[minutes - 1])

    env.process(scaling())
    env.process(arrivals())
    env.run()

    def pct(q: float) -> np.ndarray:
        return np.array([np.percentile(v, q) * 1000.0 if v else math.nan for v in lat_by_min[:minutes]])

    # Invocations the endpoint received after the last minute (a cold start across the end) are
    # counted in the last minute.
    inv = np.array(invocations[:minutes], dtype=np.int64)
    inv[-1] += sum(invocations[minutes:])
    return DesResult(
        arrivals=counts.copy(),
        throttled_rate=np.array(thr_rate[:minutes], dtype=np.int64),
        throttled_concurrency=np.array(thr_conc[:minutes], dtype=np.int64),
        rejected=np.array(rejected[:minutes], dtype=np.int64),
        served=np.array(served[:minutes], dtype=np.int64),
        cold_starts=np.array(colds[:minutes], dtype=np.int64),
        invocations=inv,
        lambda_busy_s=np.array(lambda_busy[:minutes]),
        in_service=in_service,
        billed=billed,
        p50_ms=pct(50),
        p99_ms=pct(99),
        latencies_ms=np.array(latencies) * 1000.0,
        waits_ms=np.array(waits) * 1000.0,
        events=list(scaler.events),
    )
