"""The DES of the capacity model (des.py) against closed-form queueing results, in the cases where
they are exact: before it judges the analytic model, it is itself judged. The reference formulas
are written here from the textbook, independently of runner/capacity.

Tolerances are a few standard errors of the estimate at the simulated sample size (measured over
20 seeds while writing this test, noted beside each), so a seed change does not make them flaky
and an error of the size that matters (a wrong queue discipline, a lost request, a limit off by
one) does not pass.
"""

from __future__ import annotations

import math

import numpy as np
from des import PathParams, arrival_times, simulate_des

from runner.capacity.autoscaling import ScalingPolicy

UNLIMITED = 10**6  # Lambda reserved concurrency "unlimited" for the endpoint-only checks


# ---- reference formulas -------------------------------------------------------------------------

def erlang_b(a: float, servers: int) -> float:
    """Blocking of an M/G/N/N loss system with offered load a Erlangs (recursion B_n = aB/(n + aB))."""
    b = 1.0
    for n in range(1, servers + 1):
        b = a * b / (n + a * b)
    return b


def erlang_c(a: float, c: int) -> float:
    """P(wait) in M/M/c with offered load a = lambda/mu < c."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def mmc_wait_quantile(lam: float, mu: float, c: int, q: float) -> float:
    """q-quantile of the M/M/c FCFS wait: P(Wq > t) = P(wait) exp(-(c mu - lam) t)."""
    pw = erlang_c(lam / mu, c)
    return max(0.0, math.log(pw / (1.0 - q)) / (c * mu - lam))


def mmck_distribution(lam: float, mu: float, c: int, k: int) -> list[float]:
    """Stationary distribution p_0..p_K of M/M/c/K (birth-death: rates lam, min(n, c) mu)."""
    a = lam / mu
    w = [a**n / math.factorial(n) if n <= c else a**c / math.factorial(c) * (a / c) ** (n - c)
         for n in range(k + 1)]
    s = sum(w)
    return [x / s for x in w]


def poisson_excess(mean: float, cap: int) -> float:
    """E[(N - cap)+] for N ~ Poisson(mean)."""
    pmf, total = math.exp(-mean), 0.0
    for n in range(1, int(mean + 20 * math.sqrt(mean) + 50)):
        pmf *= mean / n
        if n > cap:
            total += (n - cap) * pmf
    return total


def fixed(n: int) -> ScalingPolicy:
    return ScalingPolicy(min_capacity=n, max_capacity=n, target=1e12,
                         scale_in_cooldown_s=300, scale_out_cooldown_s=60)


def params(**kw) -> PathParams:
    base = dict(reserved=UNLIMITED, provisioned=0, lambda_overhead_ms=0.0, cold_start_ms=0.0,
                keep_warm_minutes=10, workers=1, queue=100, service_ms=100.0, service_cv=1.0,
                scaling=fixed(1), initial_instances=1)
    base.update(kw)
    return PathParams(**base)


def poisson_counts(rps: float, minutes: int, seed: int) -> np.ndarray:
    return np.random.default_rng(1000 + seed).poisson(rps * 60, size=minutes)


def assert_conserved(r) -> None:
    """Every arrival is served, throttled or rejected, in its own minute's figures."""
    assert np.array_equal(r.served + r.throttled + r.rejected, r.arrivals)
    assert len(r.latencies_ms) == len(r.waits_ms) == r.served.sum()


# ---- the checks ---------------------------------------------------------------------------------

def test_arrivals_are_a_poisson_process_when_cv_is_1():
    """Arrivals conditioned on the minute's count: exactly counts[t] in minute t, and for cv_a = 1
    exponential gaps (CV 1) across minute boundaries; the CV asked for when cv_a != 1."""
    rng = np.random.default_rng(7)
    counts = rng.poisson(600, size=60)
    for cv in (1.0, 0.5, 2.0):
        t = arrival_times(counts, cv, rng)
        assert np.array_equal(np.bincount((t // 60).astype(int), minlength=60), counts)
        gaps = np.diff(t)
        measured = gaps.std() / gaps.mean()
        assert abs(measured - cv) < 0.05 * cv, (cv, measured)


def test_mmc_wait_matches_erlang_c():
    """One instance, c = 4 workers, exponential service 100 ms (mu = 10/s), Poisson 32/s: rho = 0.8.
    P(wait) = 0.5964, wait p95 = 0.3099 s, p99 = 0.5110 s (Erlang C tail), mean 0.0746 s.
    240 minutes, 460k requests (the waits are correlated over seconds: shorter runs spread too much).
    Over 20 seeds: P(wait) sd 0.0036, p95 sd 2.8 %, p99 sd 4.0 %, mean sd 2.7 %; no bias seen."""
    lam, mu, c = 32.0, 10.0, 4
    r = simulate_des(poisson_counts(lam, 240, 1), 1.0,
                     params(workers=c, queue=10_000, service_ms=1000 / mu), seed=1)
    assert_conserved(r)
    assert r.throttled.sum() == r.rejected.sum() == 0
    waits = r.waits_ms / 1000.0
    pw_sim, pw = float((waits > 0).mean()), erlang_c(lam / mu, c)
    assert abs(pw_sim - pw) < 0.012, (pw_sim, pw)
    for q, tol in ((0.95, 0.08), (0.99, 0.12)):
        sim, ref = float(np.quantile(waits, q)), mmc_wait_quantile(lam, mu, c, q)
        assert abs(sim - ref) < tol * ref, (q, sim, ref)
    # The mean wait too (Wq = P(wait) / (c mu - lam)), and latency = wait + service end to end.
    assert abs(waits.mean() - pw / (c * mu - lam)) < 0.08 * pw / (c * mu - lam)
    assert abs(r.latencies_ms.mean() / 1000 - (pw / (c * mu - lam) + 1 / mu)) < 0.05 * (1 / mu)


def gim1_sigma(lam: float, mu: float, cv_a: float) -> float:
    """GI/M/1 with Gamma inter-arrivals (mean 1/lam, CV cv_a): the root in (0, 1) of
    sigma = A*(mu (1 - sigma)), A*(s) = (1 + s / (lam k))^-k the gaps' Laplace transform, k = 1/cv_a^2.
    P(wait) = sigma and P(Wq > t) = sigma exp(-mu (1 - sigma) t), exactly."""
    k, s = 1.0 / (cv_a * cv_a), 0.5
    for _ in range(1000):
        s = (1.0 + mu * (1.0 - s) / (lam * k)) ** -k
    return s


def test_gamma_arrivals_wait_matches_gim1():
    """Bursty arrivals: Gamma gaps of CV 2 at 7/s into one instance with 1 worker, exponential
    100 ms (rho = 0.7). GI/M/1 is exact: P(wait) = sigma = 0.8712, wait p95 = 2.218 s, p99 = 3.467 s.
    The minute counts come from one long Gamma renewal stream; the DES redraws each minute's
    arrivals given its count (the module note), which this also checks. 240 minutes, 100k requests;
    over 20 seeds: P(wait) 0.8720 sd 0.0024, p95 +1.2 % sd 3.7 %, p99 +1.8 % sd 5.8 %."""
    lam, mu, cv = 7.0, 10.0, 2.0
    rng, k = np.random.default_rng(7), 1.0 / (cv * cv)
    stream = np.cumsum(rng.gamma(k, 1.0 / (lam * k), size=int(lam * 60 * 240 * 1.1)))
    counts = np.bincount((stream[stream < 240 * 60] // 60).astype(int), minlength=240)
    r = simulate_des(counts, cv, params(workers=1, queue=100_000, service_ms=1000 / mu), seed=7)
    assert_conserved(r)
    waits, sigma = r.waits_ms / 1000.0, gim1_sigma(lam, mu, cv)
    assert abs(float((waits > 0).mean()) - sigma) < 0.01
    for q, tol in ((0.95, 0.12), (0.99, 0.18)):
        sim, ref = float(np.quantile(waits, q)), math.log(sigma / (1 - q)) / (mu * (1 - sigma))
        assert abs(sim - ref) < tol * ref, (q, sim, ref)


def test_lambda_concurrency_loss_matches_erlang_b():
    """Reserved concurrency R = 5 (2 provisioned, the rest on demand), Poisson 4/s, each invocation
    holding its environment 100 ms overhead + Gamma(900 ms, CV 0.5) service on an endpoint that
    never queues (50 workers): an M/G/5/5 loss system, a = 4 Erlangs, B(4, 5) = 0.1991
    (insensitive to the holding time's distribution). 120 minutes, 29k arrivals; over 20 seeds sd 0.0033."""
    lam, hold = 4.0, 1.0
    r = simulate_des(poisson_counts(lam, 120, 2), 1.0,
                     params(reserved=5, provisioned=2, lambda_overhead_ms=100.0, workers=50,
                            queue=0, service_ms=900.0, service_cv=0.5), seed=2)
    assert_conserved(r)
    assert r.rejected.sum() == 0 and r.throttled_rate.sum() == 0
    sim, ref = r.throttled.sum() / r.arrivals.sum(), erlang_b(lam * hold, 5)
    assert abs(sim - ref) < 0.012, (sim, ref)
    # Latency = overhead + service (no wait anywhere, no cold start cost set).
    assert abs(r.latencies_ms.mean() - 1000.0) < 15.0
    assert r.waits_ms.max() == 0.0
    # Lambda busy time: each admitted invocation holds its environment for its latency.
    assert abs(r.lambda_busy_s.sum() - r.latencies_ms.sum() / 1000.0) < 1e-6 * r.lambda_busy_s.sum()


def test_lambda_rate_cap_per_second():
    """R = 2: at most 20 invocations per second (fixed 1-s windows), Poisson 30/s, 2 ms holding
    (concurrency almost never binds). Throttled by rate = E[(N - 20)+] / 30 with N ~ Poisson(30):
    0.3350. 30 minutes, 54k arrivals; over 20 seeds sd 0.0042."""
    r = simulate_des(poisson_counts(30.0, 30, 3), 1.0,
                     params(reserved=2, lambda_overhead_ms=1.0, workers=10, service_ms=1.0), seed=3)
    assert_conserved(r)
    sim, ref = r.throttled_rate.sum() / r.arrivals.sum(), poisson_excess(30.0, 20) / 30.0
    assert abs(sim - ref) < 0.015, (sim, ref)
    assert r.throttled_concurrency.sum() / r.arrivals.sum() < 0.01  # B(0.06, 2) = 0.0017


def test_mmck_blocking_matches_exact_formula():
    """One instance, c = 2 workers, Q = 3 waiting places (K = 5), exponential 100 ms, Poisson 25/s
    (a = 2.5, over capacity): rejected fraction = p_K = 0.2837 (PASTA); P(wait | admitted) =
    (p_2 + p_3 + p_4) / (1 - p_5) = 0.7729. 60 minutes, 90k arrivals; over 20 seeds sd 0.0027 and
    0.0029."""
    lam, mu, c, q = 25.0, 10.0, 2, 3
    r = simulate_des(poisson_counts(lam, 60, 4), 1.0,
                     params(workers=c, queue=q, service_ms=1000 / mu), seed=4)
    assert_conserved(r)
    p = mmck_distribution(lam, mu, c, c + q)
    sim = r.rejected.sum() / r.arrivals.sum()
    assert abs(sim - p[-1]) < 0.01, (sim, p[-1])
    wait_sim, wait_ref = float((r.waits_ms > 0).mean()), sum(p[c:-1]) / (1 - p[-1])
    assert abs(wait_sim - wait_ref) < 0.012, (wait_sim, wait_ref)


def test_autoscaler_scales_out_after_3_minutes_and_the_new_instance_serves_after_startup():
    """Target 600 invocations per instance per minute; 15 rps (900/min) for 10 minutes, then 2 rps.
    One instance with 1 worker (100 ms, 10 rps at most) and 10 waiting places loses a third
    (M/M/1/11 at rho 1.5: 0.336). Minutes 0, 1, 2 above target -> scale-out decided at the end of
    minute 2 to ceil(900/600) = 2, serving startup_s = 120 s later, from minute 5; then the two
    share 15 rps (rho 0.75: 0.011 lost). Below 0.9 x target from minute 5 (450/min), 15 minutes:
    scale-in to 1 at minute 20 (the metric needs 1 at 2 rps); what the removed instance holds
    finishes (nothing lost)."""
    policy = ScalingPolicy(min_capacity=1, max_capacity=4, target=600, scale_in_cooldown_s=300,
                           scale_out_cooldown_s=60, startup_s=120)
    counts = np.concatenate([poisson_counts(15.0, 10, 5), poisson_counts(2.0, 20, 6)])
    r = simulate_des(counts, 1.0, params(workers=1, queue=10, service_ms=100.0, scaling=policy), seed=5)
    assert_conserved(r)
    assert r.events == [(3, "out", 1, 2), (20, "in", 2, 1)]
    assert r.in_service.tolist() == [1] * 5 + [2] * 15 + [1] * 10
    assert r.billed.tolist() == [1] * 3 + [2] * 17 + [1] * 10  # billed from the scale-out
    # The scaling metric's sum is what the endpoint received: served + rejected (no cold start here,
    # so a request reaches the endpoint in its arrival minute).
    assert np.array_equal(r.invocations, r.served + r.rejected)
    lost = r.rejected / r.arrivals
    before = r.rejected[:5].sum() / r.arrivals[:5].sum()  # minute 0 starts empty: a little less
    assert 0.29 < before < 0.38 and all(x > 0.2 for x in lost[:5]), lost[:5]
    after = r.rejected[5:10].sum() / r.arrivals[5:10].sum()
    assert after < 0.03 and all(x < 0.05 for x in lost[5:10]), lost[5:10]
    assert r.rejected[10:].sum() <= 2


def test_cold_starts_and_keep_warm():
    """Provisioned environments never pay a cold start; an on-demand one pays it once, is reused
    while warm, and again after keep_warm_minutes idle. 1 rps (at most 1 busy), 200 ms cold start."""
    counts = np.array([60] * 3 + [0] * 4 + [60] * 2)
    base = dict(reserved=10, lambda_overhead_ms=10.0, cold_start_ms=200.0, workers=4, service_ms=20.0,
                service_cv=0.0)
    warm = simulate_des(counts, 0.0, params(provisioned=1, **base), seed=6)
    assert warm.cold_starts.sum() == 0
    assert abs(warm.latencies_ms.max() - 30.0) < 1e-6
    lapse = simulate_des(counts, 0.0, params(keep_warm_minutes=3, **base), seed=6)
    assert lapse.cold_starts.tolist() == [1, 0, 0, 0, 0, 0, 0, 1, 0]
    assert abs(lapse.latencies_ms.max() - 230.0) < 1e-6
    kept = simulate_des(counts, 0.0, params(keep_warm_minutes=10, **base), seed=6)
    assert kept.cold_starts.tolist() == [1] + [0] * 8
    rows = kept.minute_rows()
    p50 = [row["p50_ms"] and round(row["p50_ms"], 6) for row in rows]
    assert p50[2:8] == [30.0, None, None, None, None, 30.0]
    assert kept.summary["requests"] == kept.summary["served"] == 300
