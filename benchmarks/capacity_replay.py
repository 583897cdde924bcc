"""The capacity model against a load replay on the local Function URL (issue 14).

    python benchmarks/capacity_replay.py [--rounds 3] [--seconds 3] [--seed 0] [--as-deployed]

Starts the emulator, deploys the default stack on it, starts the local data plane on the default
model (ResNet18, untrained, 128 px; ``--image-size``), puts an endpoint server that runs one
request at a time in place of the plane's (the model's worker; ``--as-deployed`` keeps the
plane's own server, which batches concurrent requests and uses both cores), measures the path,
replays light / saturated / overload windows (0.3, 0.6, 1.6 x the endpoint's measured capacity)
in interleaved rounds, and prints measured vs predicted per window: throttled fraction (429),
p50 and p99 of the 200s. The same code as tests/capacity/test_local_replay.py
(runner/app/load_replay.py). Not a test: the figures depend on what else runs on the machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.app.compose import compose_settings  # noqa: E402
from runner.app.load_replay import (  # noqa: E402
    REPLAY_IMAGE_SIZE,
    default_artifact,
    deployed_plane,
    run_replay,
    serve_one_at_a_time,
)
from runner.targets import local_target  # noqa: E402
from runner.targets.emulator import Emulator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one window in one round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=REPLAY_IMAGE_SIZE)
    parser.add_argument("--as-deployed", action="store_true",
                        help="keep the data plane's own endpoint server (batching, all cores)")
    args = parser.parse_args()
    started = time.perf_counter()
    settings = compose_settings([])
    settings.name = "capacity-replay"
    with tempfile.TemporaryDirectory() as tmp, Emulator() as emulator:
        target = local_target(emulator.url)
        artifact = default_artifact(Path(tmp) / "artifact", args.image_size)
        with deployed_plane(settings, target, artifact, Path(tmp) / "logs") as (plane, stack):
            if not args.as_deployed:
                serve_one_at_a_time(plane, target, stack.names.endpoint_name, artifact)
            result = run_replay(settings, plane, stack.names.endpoint_name, seconds=args.seconds,
                                rounds=args.rounds, seed=args.seed, image_size=args.image_size)
        target.close()
    server = "as deployed (batching)" if args.as_deployed else "one request at a time"
    print(f"endpoint server: {server}, {args.image_size} px")
    print(result.text() + f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
