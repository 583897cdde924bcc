"""Queueing formulas of the capacity model (docs/capacity.md; CAPACITY.md §5.3): Erlang B for
Lambda's concurrency limit, M/M/c/K for a model server with c workers and a bounded queue, and the
latency distribution of a served request on a fixed grid (so minutes and days combine by adding
CDFs)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal, special, stats


def erlang_b(offered: np.ndarray, servers: int) -> np.ndarray:
    """Blocking probability of an M/G/R/R loss system for each offered load (Erlangs), by the
    stable recursion B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1))."""
    a = np.asarray(offered, dtype=float)
    b = np.ones_like(a)
    for k in range(1, servers + 1):
        b = a * b / (k + a * b)
    return b


def erlang_b_peaked(offered: np.ndarray, servers: int, cv_a: float) -> np.ndarray:
    """Erlang B for arrivals burstier (or smoother) than Poisson: Hayward's approximation
    B(a/z, R/z) with peakedness z = (1 + cv_a^2) / 2, R/z rounded down (at least 1)."""
    z = (1.0 + cv_a * cv_a) / 2.0
    if abs(z - 1.0) < 1e-9:
        return erlang_b(offered, servers)
    return erlang_b(np.asarray(offered, dtype=float) / z, max(1, int(servers / z)))


def mmck(rate: float, service_s: float, workers: int, capacity: int) -> np.ndarray:
    """Stationary distribution p[0..K] of the number in an M/M/c/K system (K = ``capacity``)."""
    a = rate * service_s  # offered load in Erlangs
    n = np.arange(capacity + 1)
    if a <= 0:
        p = np.zeros(capacity + 1)
        p[0] = 1.0
        return p
    log_a = np.log(a)
    below = n <= workers
    log_p = np.where(below, n * log_a - special.gammaln(n + 1),
                     workers * log_a - special.gammaln(workers + 1) + (n - workers) * (log_a - np.log(workers)))
    log_p -= log_p.max()
    p = np.exp(log_p)
    return p / p.sum()


@dataclass(frozen=True)
class Grid:
    """Latency grid in seconds, uniform (so a sum of independent parts is a convolution)."""

    step_s: float
    points: int

    @property
    def x(self) -> np.ndarray:
        return np.arange(self.points) * self.step_s

    @classmethod
    def for_service(cls, service_s: float, workers: int, queue: int, shape_factor: float) -> Grid:
        """Wide enough for a full queue's wait plus a long service, fine enough for the service."""
        longest = (queue + 1) * service_s / workers * max(shape_factor, 1.0) * 1.6 + 8 * service_s + 0.05
        step = max(service_s / 60.0, longest / 4000.0)
        return cls(step, int(np.ceil(longest / step)) + 1)


def service_pmf(grid: Grid, service_s: float, cv_s: float) -> np.ndarray:
    """Gamma(mean service_s, CV cv_s) as probabilities of the grid's cells."""
    shape = 1.0 / (cv_s * cv_s) if cv_s > 0 else 1e6
    cdf = stats.gamma.cdf(grid.x + grid.step_s, a=shape, scale=service_s / shape)
    return np.diff(np.concatenate([[0.0], cdf]))


@dataclass(frozen=True)
class InstanceAnswer:
    """One instance at one arrival rate: what happens to a request sent to it."""

    rejected: float  # probability the container refuses it (queue full)
    waits: float  # probability a served request waits for a worker
    mean_response_s: float  # wait + service, served requests
    response_pmf: np.ndarray  # served requests' wait + service on the grid


def instance_answer(rate: float, service_s: float, cv_s: float, cv_a: float, workers: int, queue: int,
                    grid: Grid, service: np.ndarray) -> InstanceAnswer:
    """An M/G/c/K instance (K = workers + queue) at ``rate`` requests/s: M/M/c/K's probabilities,
    the wait of a request finding n >= c in the system Erlang(n - c + 1, c/service) scaled by the
    Allen-Cunneen factor (cv_a^2 + cv_s^2)/2 (CAPACITY.md §5.3)."""
    capacity = workers + queue
    p = mmck(rate, service_s, workers, capacity)
    rejected = float(p[capacity])
    admitted = p[:capacity] / max(1.0 - rejected, 1e-300)
    g = (cv_a * cv_a + cv_s * cv_s) / 2.0
    waiting_states = np.arange(workers, capacity)
    weights = admitted[workers:capacity]
    waits = float(weights.sum())
    shapes = waiting_states - workers + 1
    rate_w = workers / service_s / max(g, 1e-9)
    edges = grid.x + grid.step_s
    wait_cdf = np.full(grid.points, 1.0 - waits)
    if waits > 1e-12:
        keep = weights > 1e-9 * waits
        longest = float(shapes[keep].max())
        # Beyond (shape + 12 sqrt(shape) + 12) / rate every Erlang kept here has ended.
        reach = min(grid.points, int(math.ceil((longest + 12 * math.sqrt(longest) + 12) / rate_w / grid.step_s)) + 1)
        cdfs = special.gammainc(shapes[keep][:, None], rate_w * edges[None, :reach])
        wait_cdf[:reach] += weights[keep] @ cdfs
        wait_cdf[reach:] += weights[keep].sum()
    wait_pmf = np.diff(np.concatenate([[0.0], wait_cdf]))
    response = np.clip(signal.fftconvolve(wait_pmf, service)[: grid.points], 0.0, None)
    mean_wait = float((weights * shapes).sum() / rate_w) if waits > 1e-12 else 0.0
    return InstanceAnswer(rejected, waits, mean_wait + service_s, response)


def quantiles(pmf: np.ndarray, grid: Grid, levels: tuple[float, ...]) -> list[float]:
    """Quantiles (seconds) of a distribution given on the grid (upper cell edges, interpolated);
    mass beyond the grid counts as its last point."""
    total = pmf.sum()
    if total <= 0:
        return [0.0 for _ in levels]
    cdf = np.cumsum(pmf) / total
    edges = grid.x + grid.step_s
    return [float(np.interp(level, cdf, edges)) for level in levels]


def poisson_quantile(mean: float, level: float) -> float:
    """The ``level`` quantile of Poisson(mean): summed term by term up to a mean of 50, then the
    normal approximation with continuity correction (scipy's ppf costs ~0.1 ms a call)."""
    if mean <= 0:
        return 0.0
    if mean > 50:
        return float(math.ceil(mean + float(special.ndtri(level)) * math.sqrt(mean) - 0.5))
    term = cdf = math.exp(-mean)
    k = 0
    while cdf < level:
        k += 1
        term *= mean / k
        cdf += term
    return float(k)


def erlang_b_scalar(offered: float, servers: int, cv_a: float = 1.0) -> float:
    """``erlang_b_peaked`` for one load, in plain floats (the per-minute loop calls it ~3 times a
    minute; numpy's per-call overhead would dominate)."""
    z = (1.0 + cv_a * cv_a) / 2.0
    a, r = (offered, servers) if abs(z - 1.0) < 1e-9 else (offered / z, max(1, int(servers / z)))
    if a <= 0:
        return 0.0
    b = 1.0
    for k in range(1, r + 1):
        b = a * b / (k + a * b)
    return b
