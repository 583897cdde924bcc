"""A short load replay against the local data plane, and the capacity model's prediction for it.

The capacity model (docs/capacity.md) is per minute, each minute a steady state. A replay plays
each "minute" of a profile as a window of a few seconds at that minute's rate: open-loop Poisson
arrivals (seeded), sent by a thread pool large enough that the client never holds a request back,
to the local Function URL (runner/targets/lambda_runtime.py: reserved concurrency answers 429).
Each request's status and latency (first byte sent to last byte received) are recorded, and how
late the client sent it (it must not limit: it runs in its own process with 128 threads).

The prediction runs ``runner.capacity.model.simulate`` with counts = rate x 60 per window and the
local configuration: one instance, no autoscaling, the local endpoint server's one worker, the
service time and the Lambda runtime's overhead measured on this machine (``calibrate_path``),
cold start 0 (every environment is warmed first, ``warm_up``). Rates and fractions are compared,
not counts.

Used by tests/capacity/test_local_replay.py and benchmarks/capacity_replay.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import io
import math
import random
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from runner.capacity.model import PathParams, simulate
from runner.capacity.path import path_params
from runner.capacity.service_time import ServiceTime
from runner.core.settings import Settings
from runner.targets import Target, environ_without_aws
from runner.targets.dataplane import (
    PROJECT_ROOT,
    DataPlane,
    deployed_endpoint,
    register_endpoint,
    start_data_plane,
)

# The local data plane's endpoint server (runner/targets/dataplane.start_endpoint) runs
# ``handlers.serve`` with its default of one worker process; its only bound on waiting work is
# ``max_queued_images`` (256 images; past it a 503). With Lambda's reserved concurrency in front,
# at most R requests are ever in the endpoint at once, so that bound is never reached.
LOCAL_WORKERS = 1
LOCAL_QUEUE = 256
# The replaced server's torch threads: one. Two OpenMP threads on a 2-core machine that also runs
# the load generator, the Lambda runtime and the emulator (and other jobs) stall each other at
# every barrier; one thread keeps the service time steady under that contention.
TORCH_THREADS = 1
# The replay's model: the default ResNet18 at 128 px rather than 64, so one request's service
# (~50 ms) is several times the CPU the rest of the local path spends on it (Lambda runtime,
# handler, emulator, load generator: ~5-10 ms, all on the same 2 cores). On AWS those run on other
# machines; here the endpoint must dominate, or the path's own work slows it and the comparison
# measures this machine's contention rather than the model.
REPLAY_IMAGE_SIZE = 128
HEADERS = {"Content-Type": "image/png", "Accept": "application/json"}


@dataclass(frozen=True)
class Window:
    """One "minute" of the profile, replayed for ``seconds`` at ``rps`` (Poisson arrivals)."""

    label: str
    rps: float
    seconds: float


@dataclass(frozen=True)
class Sample:
    window: int
    scheduled_s: float  # arrival time from the replay's start
    lag_ms: float  # how late the client started sending it (the client must not limit: ~0)
    status: int  # HTTP status, 0 when the connection failed
    latency_ms: float  # first byte sent -> last byte of the answer (a stall of the client is in lag_ms)


@dataclass(frozen=True)
class PathCalibration:
    """The local path at concurrency 1: the endpoint's own time (``service``, as
    runner.app.calibrate measures it: keep-alive HTTP, first byte sent to last byte received) and
    the Function URL's time on top of it (``overhead_ms``: Lambda runtime, handler, emulator)."""

    service: ServiceTime
    overhead_ms: float
    function_ms: float  # Function URL request, mean
    function_p50_ms: float
    endpoint_p50_ms: float


_MAKE_ARTIFACT = """
import json, sys, tarfile
from pathlib import Path
import torch
from training.model import IMAGENET_MEAN, IMAGENET_STD, build_model
directory = Path(sys.argv[1])
torch.manual_seed(0)
torch.save(build_model("resnet18", 10).state_dict(), directory / "model.pth")
(directory / "model.json").write_text(json.dumps({
    "format_version": 1, "arch": "resnet18", "head_hidden": 256, "num_classes": 10,
    "classes": [str(i) for i in range(10)], "image_size": int(sys.argv[2]),
    "normalize": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}}))
with tarfile.open(directory / "model.tar.gz", "w:gz") as tar:
    for name in ("model.pth", "model.json"):
        tar.add(directory / name, arcname=name)
"""


def default_artifact(directory: Path, image_size: int = 64) -> Path:
    """The default model (ResNet18, 10 classes; 64 px by default), untrained (service time does
    not depend on the weights), built in a child process so the caller does not import torch."""
    import subprocess
    import sys

    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", _MAKE_ARTIFACT, str(directory), str(image_size)], cwd=PROJECT_ROOT, check=True,
                   timeout=300)
    return directory / "model.tar.gz"


def png(size: int = 64) -> bytes:
    """One of scikit-learn's digits as an RGB PNG at the model's size (what calibration sends)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    pixels = load_digits().images[0]
    image = Image.fromarray((pixels * 255 / 16).astype("uint8")).resize((size, size)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class _Client:
    """One keep-alive HTTP connection per thread, or (``keep_alive=False``) one per request."""

    def __init__(self, url: str, keep_alive: bool = True, timeout_s: float = 60.0):
        parts = urlsplit(url)
        self.keep_alive = keep_alive
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/"
        self.timeout_s = timeout_s
        self._local = threading.local()

    def post(self, body: bytes, path: str | None = None) -> int:
        connection = getattr(self._local, "connection", None)
        for attempt in range(2):
            if connection is None:
                connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
                self._local.connection = connection
            try:
                connection.request("POST", path or self.path, body=body, headers=HEADERS)
                answer = connection.getresponse()
                answer.read()
                if not self.keep_alive or answer.getheader("Connection", "").lower() == "close":
                    connection.close()
                    self._local.connection = None
                return answer.status
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = self._local.connection = None
                if attempt:
                    return 0
        return 0


def _timed(client: _Client, body: bytes, path: str | None = None) -> tuple[int, float]:
    started = time.perf_counter()
    status = client.post(body, path)
    return status, (time.perf_counter() - started) * 1000.0


def calibrate_path(plane: DataPlane, endpoint_name: str, body: bytes, requests: int = 60,
                   warmup: int = 10) -> PathCalibration:
    """Interleaved, one at a time: the endpoint directly and the same image through the Function URL."""
    endpoint, function = _Client(plane.endpoint_url), _Client(plane.function_url, keep_alive=False)
    invocations = f"/endpoints/{endpoint_name}/invocations"
    direct: list[float] = []
    through: list[float] = []
    for i in range(warmup + requests):
        (s1, t1), (s2, t2) = _timed(endpoint, body, invocations), _timed(function, body)
        if (s1, s2) != (200, 200):
            raise RuntimeError(f"calibration: endpoint answered {s1}, Function URL {s2}")
        if i >= warmup:
            direct.append(t1)
            through.append(t2)
    mean = statistics.fmean(direct)
    service = ServiceTime(round(mean, 2), round(statistics.pstdev(direct) / mean, 3),
                          f"measured on the local data plane's endpoint, {len(direct)} requests")
    return PathCalibration(service, max(0.0, statistics.fmean(through) - mean), statistics.fmean(through),
                           statistics.median(through), statistics.median(direct))


def warm_up(plane: DataPlane, body: bytes, concurrency: int, rounds: int = 10) -> int:
    """Start every on-demand environment (bursts of ``concurrency`` requests) so the replay pays
    no cold start; returns the runtime's cold starts so far."""
    client = _Client(plane.function_url)
    wanted = max(0, concurrency - plane.runtime.provisioned)
    with ThreadPoolExecutor(concurrency) as pool:
        for _ in range(rounds):
            list(pool.map(lambda _: client.post(body), range(concurrency)))
            if plane.runtime.cold_starts >= wanted:
                break
    return plane.runtime.cold_starts


def arrival_times(windows: list[Window], seed: int) -> list[tuple[int, float]]:
    """(window index, time from the start) of every request: a Poisson process per window."""
    rng = random.Random(seed)
    arrivals, start = [], 0.0
    for index, window in enumerate(windows):
        t = start
        while window.rps > 0:
            t += rng.expovariate(window.rps)
            if t >= start + window.seconds:
                break
            arrivals.append((index, t))
        start += window.seconds
    return arrivals


def replay(url: str, windows: list[Window], body: bytes, seed: int = 0, threads: int = 128) -> list[Sample]:
    """Send the windows' arrivals open loop (each request on its own pool thread at its time)."""
    client = _Client(url, keep_alive=False)
    schedule = arrival_times(windows, seed)
    samples: list[Sample | None] = [None] * len(schedule)

    def send(i: int, window: int, at: float, t0: float) -> None:
        sent = time.perf_counter()
        status = client.post(body)
        samples[i] = Sample(window, at, (sent - t0 - at) * 1000.0, status, (time.perf_counter() - sent) * 1000.0)

    with ThreadPoolExecutor(threads, thread_name_prefix="replay") as pool:
        t0 = time.perf_counter()
        for i, (window, at) in enumerate(schedule):
            delay = at - (time.perf_counter() - t0)
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, i, window, at, t0)
    return [s for s in samples if s is not None]


def replay_in_child(url: str, windows: list[Window], body: bytes, seed: int = 0) -> list[Sample]:
    """``replay`` in a child process: its threads must not contend for this process's GIL with
    whatever serves the path here (in the tests, the emulator that forwards the handler's
    InvokeEndpoint runs in the test's process; a thread waiting for the GIL waits up to its 5 ms
    switch interval)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(replay, (url, windows, body, seed))


def local_params(settings: Settings, calibration: PathCalibration, workers: int = LOCAL_WORKERS,
                 queue: int = LOCAL_QUEUE) -> PathParams:
    """The config's path as it runs locally: one instance and no autoscaling, the local server's
    workers and queue, measured service time and overhead, warm environments (no cold start)."""
    params, _, _ = path_params(settings, calibration.service)
    fixed = dataclasses.replace(params.scaling, min_capacity=1, max_capacity=1)
    return dataclasses.replace(params, workers=workers, queue=queue, service_ms=calibration.service.mean_ms,
                               service_cv=calibration.service.cv, lambda_overhead_ms=calibration.overhead_ms,
                               cold_start_ms=0.0, scaling=fixed, initial_instances=1)


def predict(windows: list[Window], params: PathParams, cv_a: float = 1.0) -> list[dict[str, float]]:
    """The model's answer per window: throttled and rejected fractions, p50 and p99 of served."""
    day = simulate(np.array([w.rps * 60.0 for w in windows]), cv_a, params)
    m = day.minutes
    rows = []
    for t, _ in enumerate(windows):
        arrivals = float(m["arrivals"][t]) or 1.0
        rows.append({"throttled": float(m["throttled"][t]) / arrivals, "rejected": float(m["rejected"][t]) / arrivals,
                     "p50_ms": float(m["p50_ms"][t]), "p99_ms": float(m["p99_ms"][t])})
    return rows


def joint_blocking(rps: float, service_ms: float, workers: int, reserved: int) -> float:
    """A reference for the throttled fraction when the endpoint is the bottleneck behind Lambda:
    Lambda's R environments and the endpoint's queue as one M/M/c/R system (an invocation holds
    its environment while it waits in the endpoint, so at most R are ever there; the handler's
    overhead is left out). Not the capacity model (which takes Lambda's loss and the endpoint's
    queue one after the other): the replay prints both."""
    a = rps * service_ms / 1000.0
    terms, term = [1.0], 1.0
    for n in range(1, reserved + 1):
        term *= a / min(n, workers)
        terms.append(term)
    return terms[-1] / sum(terms)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summarize(samples: list[Sample], windows: list[Window], trim_s: float = 0.0) -> list[dict[str, float]]:
    """What was measured per distinct window label, over every window with that label (a profile
    replayed in interleaved rounds); requests in the first ``trim_s`` of a window, while the queues
    move from the previous window's state to this one's, are left out."""
    kept: dict[str, list[Sample]] = {}
    seconds: dict[str, float] = {}
    start = 0.0
    for index, window in enumerate(windows):
        kept.setdefault(window.label, []).extend(
            s for s in samples if s.window == index and s.scheduled_s >= start + trim_s)
        seconds[window.label] = seconds.get(window.label, 0.0) + max(window.seconds - trim_s, 1e-9)
        start += window.seconds
    rows = []
    for label, mine in kept.items():
        ok = [s.latency_ms for s in mine if s.status == 200]
        n = len(mine) or 1
        rows.append({"requests": len(mine), "rps": len(mine) / seconds[label],
                     "throttled": sum(s.status == 429 for s in mine) / n,
                     "other": sum(s.status not in (200, 429) for s in mine) / n,
                     "p50_ms": _quantile(ok, 0.5), "p99_ms": _quantile(ok, 0.99), "served": len(ok),
                     "lag_p99_ms": _quantile([s.lag_ms for s in mine], 0.99)})
    return rows


def table(windows: list[Window], measured: list[dict[str, float]], predicted: list[dict[str, float]]) -> str:
    """Measured vs predicted per window, as text."""
    out = io.StringIO()
    out.write(f"{'window':<10}{'rps':>7}{'sent':>6} | {'429 meas':>9}{'pred':>7} | {'p50 meas':>9}{'pred':>7}"
              f" | {'p99 meas':>9}{'pred':>7} | {'other':>6}{'lag p99':>8}\n")
    for w, m, p in zip(windows, measured, predicted, strict=True):
        out.write(f"{w.label:<10}{w.rps:>7.0f}{m['requests']:>6.0f} | {m['throttled']:>9.1%}{p['throttled']:>7.1%} | "
                  f"{m['p50_ms']:>9.1f}{p['p50_ms']:>7.1f} | {m['p99_ms']:>9.1f}{p['p99_ms']:>7.1f} | "
                  f"{m['other']:>6.1%}{m['lag_p99_ms']:>8.1f}\n")
    return out.getvalue()


@contextlib.contextmanager
def deployed_plane(settings: Settings, target: Target, artifact: Path, log_dir: Path | None = None) -> Iterator[Any]:
    """Deploy the config's stack on the local target and run its data plane on ``artifact``."""
    from runner.deploy import apply, ensure_bucket, upload_artifact
    from runner.stack.build import build_stack

    names = build_stack(settings).names
    ensure_bucket(target, names)
    stack = build_stack(settings, model_data_url=upload_artifact(target, names, artifact))
    apply(stack, target)
    with start_data_plane(settings, target, stack, artifact, log_dir=log_dir) as plane:
        yield plane, stack


def serve_one_at_a_time(plane: DataPlane, target: Target, endpoint_name: str, artifact: Path,
                        log_path: Path | None = None) -> None:
    """Put an endpoint server that runs one request at a time (``--max-batch 1``) in place of the
    plane's: the model's worker (TorchServe's default batch size 1 on SageMaker, docs/capacity.md).
    The local server merges concurrent requests into one forward pass by default, which raises
    its throughput under concurrency (benchmarks/serve_throughput.py: 2x at 8 clients); the
    model has no batching."""
    from handlers.server_process import spawn_server

    deployed = deployed_endpoint(target, endpoint_name)
    env = {**environ_without_aws(), **deployed.model_environment, "PYTHONPATH": str(PROJECT_ROOT),
           "OMP_NUM_THREADS": str(TORCH_THREADS)}
    with log_path.open("ab") if log_path else contextlib.nullcontext(None) as log:
        server = spawn_server(str(artifact), endpoint_name=endpoint_name, env=env, stderr=log,
                              variants=deployed.variants, region=target.region, extra_args=["--max-batch", "1"])
    if target.endpoint_url:
        register_endpoint(target.endpoint_url, endpoint_name, server.url)
    old, plane.endpoint, plane.endpoint_url = plane.endpoint, server, server.url
    old.stop()


# Each window's rate as a multiple of the endpoint's measured capacity (1 / service time): light,
# saturating the endpoint (queueing, a few throttles), and beyond what Lambda's reserved
# concurrency lets through to it (throttled, 429).
WINDOWS = (("light", 0.3), ("saturated", 0.6), ("overload", 1.6))


@dataclass
class Replay:
    calibration: PathCalibration
    params: PathParams
    windows: list[Window]
    measured: list[dict[str, float]]
    predicted: list[dict[str, float]]
    reference: list[float]  # joint_blocking per window
    seconds: float  # wall time of the replay
    around: tuple[PathCalibration, PathCalibration]  # the first and last measurements
    rounds: int

    def text(self) -> str:
        c = self.calibration
        b, a = self.around
        head = (f"local path: endpoint service {c.service.mean_ms:.1f} ms (first {b.service.mean_ms:.1f}, last "
                f"{a.service.mean_ms:.1f}; cv {c.service.cv:.2f}, capacity "
                f"{1000 / c.service.mean_ms:.0f} req/s), Function URL overhead {c.overhead_ms:.1f} ms; "
                f"workers {self.params.workers}, queue {self.params.queue}, reserved {self.params.reserved}, "
                f"provisioned {self.params.provisioned} (all warm)\n")
        ref = "M/M/1/R reference 429: " + ", ".join(f"{w.label} {r:.1%}" for w, r in zip(self.windows, self.reference,
                                                                                      strict=True))
        return head + table(self.windows, self.measured, self.predicted) + ref + f"\nreplay {self.seconds:.1f} s ({self.rounds} rounds of {self.windows[0].seconds:g} s windows)\n"


def run_replay(settings: Settings, plane: DataPlane, endpoint_name: str, seconds: float = 3.0, rounds: int = 3,
               seed: int = 0, windows: tuple[tuple[str, float], ...] = WINDOWS, trim_s: float = 0.5,
               image_size: int = REPLAY_IMAGE_SIZE, probes: int = 10) -> Replay:
    """Warm every environment, then for each round measure the path (``probes`` requests) and
    replay the windows; measure once more at the end, and predict the windows from all the
    measurements pooled.

    The machine is shared, and what else runs on it changes from one ten seconds to the next: the
    windows are replayed in ``rounds`` interleaved rounds (light, saturated, overload, light, ...)
    of ``seconds`` each, with the path measured between rounds, so a change of load hits every
    window and the measurement alike. The queues settle within a fraction of a second (service
    tens of ms, at most R requests in the endpoint), so each window but its first ``trim_s`` is a
    steady state, as the model's minute is."""
    body = png(image_size)
    warm_up(plane, body, plane.runtime.limit)
    measured = [calibrate_path(plane, endpoint_name, body, requests=2 * probes)]
    capacity = 1000.0 / measured[0].service.mean_ms
    kinds = [Window(label, round(share * capacity, 1), seconds) for label, share in windows]
    samples: list[Sample] = []
    elapsed = 0.0
    for round_ in range(rounds):
        if round_:
            measured.append(calibrate_path(plane, endpoint_name, body, requests=probes, warmup=2))
        started = time.perf_counter()
        got = replay_in_child(plane.function_url, kinds, body, seed=seed * 1000 + round_)
        elapsed += time.perf_counter() - started
        offset = len(kinds) * round_
        samples += [dataclasses.replace(s, window=s.window + offset, scheduled_s=s.scheduled_s + seconds * offset)
                    for s in got]
    measured.append(calibrate_path(plane, endpoint_name, body, requests=2 * probes, warmup=2))
    calibration = pooled(measured)
    params = local_params(settings, calibration)
    replayed = kinds * rounds
    return Replay(calibration, params, kinds, summarize(samples, replayed, trim_s), predict(kinds, params),
                  [joint_blocking(w.rps, calibration.service.mean_ms, params.workers, params.reserved)
                   for w in kinds], elapsed, (measured[0], measured[-1]), rounds)


def pooled(parts: list[PathCalibration]) -> PathCalibration:
    """Measurements of the path as one (each weighted alike): means averaged, the CV of the pooled
    times."""
    mean = statistics.fmean(c.service.mean_ms for c in parts)
    second = statistics.fmean((c.service.cv * c.service.mean_ms) ** 2 + c.service.mean_ms ** 2 for c in parts)
    cv = math.sqrt(max(0.0, second - mean * mean)) / mean
    return PathCalibration(ServiceTime(round(mean, 2), round(cv, 3), f"measured on the local data plane's endpoint "
                                       f"{len(parts)} times around and between the replay's rounds"),
                           statistics.fmean(c.overhead_ms for c in parts), statistics.fmean(c.function_ms for c in parts),
                           statistics.fmean(c.function_p50_ms for c in parts),
                           statistics.fmean(c.endpoint_p50_ms for c in parts))
