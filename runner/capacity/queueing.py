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


def renewal_lst(s: float, rate: float, cv_a: float, routes: int) -> float:
    """Laplace-Stieltjes transform E[exp(-s T)] of the gap T between requests one of ``routes``
    instances receives, when a Gamma renewal stream (``rate`` requests/s in all, gap CV ``cv_a``)
    is routed at random, each request to one instance with probability p = 1/routes: a random
    thinning, whose gap is a Geometric(p) sum of the stream's gaps, p A(s) / (1 - (1 - p) A(s))
    with A(s) = (1 + s / (rate k))^-k, k = 1/cv_a^2 (A(s) = exp(-s/rate) for cv_a = 0).
    Defined for s above the pole; s may be negative (an overloaded instance's root is there)."""
    if cv_a <= 1e-6:
        a = math.exp(-s / rate)
    else:
        k = 1.0 / (cv_a * cv_a)
        a = math.exp(-k * math.log1p(s / (rate * k)))
    if routes <= 1:
        return a
    p = 1.0 / routes
    return p * a / (1.0 - (1.0 - p) * a)


def gi_sigma(rate: float, cv_a: float, routes: int, workers: int, service_s: float) -> float:
    """The GI/M/c root: sigma with sigma = A~(c mu (1 - sigma)), A~ the gap transform of the
    instance's arrivals (``renewal_lst``), c mu = workers / service_s, other than sigma = 1 (Kleinrock,
    Queueing Systems I, 6.4; Gross & Harris 6.3). In GI/M/c an arrival finds n >= c - 1 requests
    with probability proportional to sigma^n and a request that waits waits Exp(c mu (1 - sigma)).
    Below saturation sigma is in (0, 1), above it beyond 1 (the growth of GI/M/c/K's geometric
    part); Poisson arrivals give sigma = rho = rate service_s / (routes workers). Bisection, 60 steps."""
    cmu = workers / service_s
    rho = rate * service_s / (routes * workers)
    if abs(cv_a - 1.0) < 1e-9:
        return rho
    if abs(rho - 1.0) < 1e-6:
        return 1.0

    def f(sigma: float) -> float:
        return renewal_lst(cmu * (1.0 - sigma), rate, cv_a, routes) - sigma

    if rho < 1.0:
        lo, hi = 0.0, 1.0 - 1e-12  # f(lo) > 0 > f(hi)
    else:
        # The transform's pole (or where its denominator vanishes) bounds sigma from above.
        if cv_a <= 1e-6:  # A(s) = exp(-s/rate): no pole; thinned, 1 - (1 - p) A(s) vanishes
            s_min = rate * math.log((routes - 1) / routes) if routes > 1 else -math.inf
        else:
            k = 1.0 / (cv_a * cv_a)
            s_min = rate * k * (((routes - 1) / routes) ** (1.0 / k) - 1.0) if routes > 1 else -rate * k
        lo, hi = 1.0 + 1e-12, (1.0 - s_min / cmu) if math.isfinite(s_min) else 1.0 + 50.0 * rate / cmu
        hi = lo + (hi - lo) * (1.0 - 1e-9)
        while f(hi) < 0 and not math.isfinite(s_min):
            hi *= 2.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if (f(mid) > 0) == (rho < 1.0):
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def arrivals_seen(rate: float, cv_a: float, routes: int, service_s: float, workers: int,
                  capacity: int, sigma: float | None = None) -> np.ndarray:
    """What an arrival to one of ``routes`` instances finds, p[0..K] (K = ``capacity``): M/M/c/K's
    distribution below c - 1 and the GI/M/c geometric sigma^n (``gi_sigma``) from c - 1 on. Exact
    for GI/M/1 (p_n = (1 - sigma) sigma^n) and for Poisson arrivals (M/M/c/K); between, the
    approximation docs/capacity.md describes. ``sigma``: gi_sigma's root, if already known."""
    instance_rate = rate / routes
    if abs(cv_a - 1.0) < 1e-9 or instance_rate <= 0:
        return mmck(instance_rate, service_s, workers, capacity)
    if sigma is None:
        sigma = gi_sigma(rate, cv_a, routes, workers, service_s)
    a = instance_rate * service_s
    n = np.arange(capacity + 1)
    log_a = np.log(a)
    top = workers - 1
    log_top = top * log_a - special.gammaln(top + 1)
    log_p = np.where(n <= top, n * log_a - special.gammaln(n + 1), log_top + (n - top) * math.log(sigma))
    log_p -= log_p.max()
    p = np.exp(log_p)
    return p / p.sum()


@dataclass(frozen=True)
class InstanceAnswer:
    """One instance at one arrival rate: what happens to a request sent to it."""

    rejected: float  # probability the container refuses it (queue full)
    waits: float  # probability a served request waits for a worker
    mean_response_s: float  # wait + service, served requests
    response_pmf: np.ndarray  # served requests' wait + service on the grid
    occupancy: np.ndarray  # requests in the instance as arrivals find it, p[0..K]


def wait_factor(cv_a: float, cv_s: float, routes: int) -> float:
    """The service-time correction of the GI/M/c wait: (c_i^2 + cv_s^2) / (c_i^2 + 1), with
    c_i^2 = cv_a^2 / routes + 1 - 1/routes the instance's arrival CV^2 after random routing. It is
    Kingman's heavy-traffic ratio W(GI/G/c) / W(GI/M/c); with Poisson arrivals it is Allen-Cunneen's
    (1 + cv_s^2) / 2."""
    ca2 = cv_a * cv_a / routes + 1.0 - 1.0 / routes
    return (ca2 + cv_s * cv_s) / (ca2 + 1.0)


def instance_answer(rate: float, service_s: float, cv_s: float, cv_a: float, workers: int, queue: int,
                    grid: Grid, service: np.ndarray, routes: int = 1, limit: int | None = None) -> InstanceAnswer:
    """One of ``routes`` instances (random routing) of an endpoint receiving ``rate`` requests/s in
    all, each instance a GI/G/c/K queue (K = workers + queue): the arrival-epoch distribution of
    ``arrivals_seen``, the wait of a request finding n >= c in the instance Erlang(n - c + 1, c/service)
    scaled by ``wait_factor`` (docs/capacity.md, "Endpoint"). ``limit``: no more than this many
    requests can be in the instance (each holds one of Lambda's R environments): when it is below
    workers + queue the instance never rejects, and the states it cannot reach are left out (an
    arrival that would reach them is one of Lambda's throttles, counted there)."""
    capped = limit is not None and limit < workers + queue
    if capped:
        assert limit is not None
        workers, queue = min(workers, limit), limit - min(workers, limit)
    capacity = workers + queue
    ratio = gi_sigma(rate, cv_a, routes, workers, service_s) if rate > 0 else 0.0
    p = arrivals_seen(rate, cv_a, routes, service_s, workers, capacity, ratio)
    g = wait_factor(cv_a, cv_s, routes)
    tail = float(p[workers:capacity].sum())
    if abs(g - 1.0) > 1e-9 and tail > 0 and rate > 0 and queue > 1:
        # The service time's variability shapes the queue behind the workers: the waiting
        # states' geometric ratio sigma becomes sigma^(1/g) (diffusion approximation: the queue's
        # exponential rate is 2 (1 - rho) / (c_a^2 + c_s^2)); the probability of waiting and of
        # rejection are kept (the rejection is fixed by throughput = busy workers x mu).
        log_w = np.arange(capacity - workers) * (math.log(max(ratio, 1e-300)) / g)
        w = np.exp(log_w - log_w.max())
        p = p.copy()
        p[workers:capacity] = tail * w / w.sum()
    admitted = p[:capacity] / max(1.0 - float(p[capacity]), 1e-300)
    # Throughput is at most c mu: a lower bound on the rejected share, which the approximate
    # arrival-epoch distribution can miss when bursty arrivals overload the instance.
    instance_rate = rate / routes
    floor = 1.0 - workers / (service_s * instance_rate) if instance_rate > 0 else 0.0
    rejected = max(float(p[capacity]), floor)
    waiting_states = np.arange(workers, capacity)
    weights = admitted[workers:capacity]
    waits = float(weights.sum())
    # The wait of a request finding j = n - c waiting: j + 1 departures of c busy workers, whose
    # count over a long time has variance cv_s^2 x mean (renewal CLT): Gamma with mean
    # (j + 1) service_s / c and that variance (the Erlang of M/M/c when cv_s = 1).
    cs2 = max(cv_s * cv_s, 1e-3)
    shapes = (waiting_states - workers + 1) / cs2
    rate_w = workers / service_s / cs2
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
    response = np.clip(_convolve(wait_pmf, service)[: grid.points], 0.0, None)
    mean_wait = float((weights * shapes).sum() / rate_w) if waits > 1e-12 else 0.0
    return InstanceAnswer(0.0 if capped else rejected, waits, mean_wait + service_s, response, p)


def _convolve(pmf: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``pmf`` convolved with ``kernel``: directly over the kernel's support when it is short (a
    service time with a small CV spans a few dozen cells), else by FFT."""
    nonzero = np.flatnonzero(kernel > 1e-12)
    if len(nonzero) and nonzero[-1] - nonzero[0] < 256:
        first, last = nonzero[0], nonzero[-1] + 1
        out = np.zeros(len(pmf) + len(kernel) - 1)
        out[first:first + len(pmf) + last - first - 1] = np.convolve(pmf, kernel[first:last])
        return out
    return signal.fftconvolve(pmf, kernel)


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


def peakedness(offered: float, cv_a: float) -> float:
    """Peakedness z (variance / mean of the busy count on infinitely many servers) of a Gamma
    renewal stream of inter-arrival CV ``cv_a`` offering ``offered`` Erlangs with exponential
    holding times: z = 1 / (1 - A*(mu)) - a, A*(mu) = (1 + 1 / (a k))^-k, k = 1/cv_a^2 (the GI/M/inf
    moment formula, Takacs; Wolff, Stochastic Modeling and the Theory of Queues, 6-11). It tends
    to (1 + cv_a^2) / 2 for long holding times and to 1 for short ones."""
    if abs(cv_a - 1.0) < 1e-9 or offered <= 0:
        return 1.0
    if cv_a <= 1e-6:
        tail = math.exp(-1.0 / offered)
    else:
        k = 1.0 / (cv_a * cv_a)
        tail = math.exp(-k * math.log1p(1.0 / (offered * k)))
    return max(1.0 / (1.0 - tail) - offered, 1e-3)


def busy_tail(occupancy: np.ndarray, instances: int, overhead_load: float, servers: int) -> float:
    """P(X >= ``servers``) for X = the requests in ``instances`` independent instances (each
    distributed as ``occupancy``) plus a Poisson(``overhead_load``) count in Lambda outside the
    endpoint call: Lambda's busy environments when the endpoint, not Lambda, bounds them."""
    total = occupancy
    for _ in range(instances - 1):
        total = np.convolve(total, occupancy)
    if len(total) <= servers and overhead_load <= 0:
        return 0.0
    j = np.arange(min(len(total), servers + 1))
    beyond = float(total[servers + 1:].sum()) if len(total) > servers + 1 else 0.0
    # P(Poisson(m) >= k) = P(Gamma(k) <= m) for k >= 1 (and 1 for k <= 0).
    need = servers - j
    surv = np.where(need <= 0, 1.0, special.gammainc(np.maximum(need, 1), overhead_load)) if overhead_load > 0 \
        else (need <= 0).astype(float)
    return min(1.0, float(total[: len(j)] @ surv) + beyond)


def erlang_b_scalar(offered: float, servers: int, cv_a: float = 1.0) -> float:
    """Erlang B for one load, in plain floats (the per-minute loop calls it a few times a minute;
    numpy's per-call overhead would dominate). With ``cv_a`` != 1, Hayward's approximation
    B(a/z, R/z) with the peakedness z of ``peakedness``; R/z is rarely whole: B is interpolated
    linearly between floor(R/z) and floor(R/z) + 1 servers (B(a, 0) = 1)."""
    if offered <= 0:
        return 0.0
    z = peakedness(offered, cv_a)
    if abs(z - 1.0) < 1e-9:
        b = 1.0
        for k in range(1, servers + 1):
            b = offered * b / (k + offered * b)
            if b < 1e-15 and k > offered:  # from here on it only falls: no throttling to speak of
                return 0.0
        return b
    a, r = offered / z, servers / z
    # Erlang B for a non-integer number of servers (Jagerman's continuation):
    # 1/B(a, x) = exp(a) a^-x Gamma(x + 1, a), the upper incomplete gamma function.
    q = float(special.gammaincc(r + 1.0, a))
    if q <= 0.0:
        return 1.0
    log_inv = a - r * math.log(a) + float(special.gammaln(r + 1.0)) + math.log(q)
    return math.exp(-log_inv) if log_inv > 0 else 1.0
