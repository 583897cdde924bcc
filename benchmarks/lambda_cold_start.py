"""Lambda handler cost: import time (cold start) and per-invocation overhead.

    python benchmarks/lambda_cold_start.py [--runs 21] [--calls 300]

1. Import time of ``handlers.lambda_function`` vs ``import boto3`` alone, each in a fresh
   interpreter, interleaved, median of ``--runs``. Goal: ≤ 1.3×.
2. Overhead per invocation against the local endpoint (``python -m handlers.serve``, ResNet18
   @64): the handler's own time (its logged ``latency_ms`` minus ``endpoint_ms``), and the
   difference of medians between ``lambda_handler`` and calling ``invoke_endpoint`` directly
   with the same client settings, interleaved. Goal: ≤ 1 ms.
Not a test: numbers depend on the machine and on what else runs.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

IMPORT_SNIPPET = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def import_seconds(module: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_SNIPPET.format(module=module)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return float(out.stdout.strip())


def measure_imports(runs: int) -> None:
    boto3_times, handler_times = [], []
    for _ in range(runs):  # interleaved, so drift in machine load hits both alike
        boto3_times.append(import_seconds("boto3"))
        handler_times.append(import_seconds("handlers.lambda_function"))
    b, h = statistics.median(boto3_times), statistics.median(handler_times)
    print(f"import, fresh process, median of {runs}:")
    print(f"  import boto3                      {b * 1000:7.1f} ms")
    print(f"  import handlers.lambda_function   {h * 1000:7.1f} ms   {h / b:4.2f}× boto3 (goal ≤ 1.30×)")


def measure_overhead(calls: int) -> None:
    from benchmarks.serve_throughput import digit_pngs, write_artifact
    from handlers.serve import spawn_server

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = write_artifact(Path(tmp), "resnet18", 64, num_classes=10)
        png = digit_pngs(64, count=1)[0]
        with spawn_server(str(model_dir), endpoint_name="bench-endpoint") as server:
            os.environ.update(
                ENDPOINT_NAME="bench-endpoint",
                AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=server.url,
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
                AWS_DEFAULT_REGION="us-east-1",
            )
            from handlers import lambda_function

            settings = lambda_function.Settings.from_env()
            direct_client = lambda_function.make_client(settings)
            event = {
                "version": "2.0",
                "routeKey": "POST /predict",
                "rawPath": "/predict",
                "headers": {"content-type": "image/png"},
                "requestContext": {"http": {"method": "POST", "path": "/predict"}, "requestId": "bench"},
                "body": base64.b64encode(png).decode(),
                "isBase64Encoded": True,
            }

            def direct() -> None:
                result = direct_client.invoke_endpoint(
                    EndpointName="bench-endpoint",
                    Body=png,
                    ContentType="image/png",
                    Accept="application/json; top_k=5",
                )
                json.loads(result["Body"].read())

            logs = io.StringIO()

            def via_handler() -> None:
                with contextlib.redirect_stdout(logs):
                    response = lambda_function.lambda_handler(event, None)
                if response["statusCode"] != 200:
                    raise RuntimeError(response)

            for _ in range(20):  # warm both clients' connection pools
                direct()
                via_handler()
            logs.truncate(0)
            logs.seek(0)
            direct_times, handler_times = [], []
            for i in range(calls):
                # alternate which goes first, so a periodic stall on the server hits both alike
                for run, times in ((direct, direct_times), (via_handler, handler_times))[
                    :: 1 if i % 2 else -1
                ]:
                    t = time.perf_counter()
                    run()
                    times.append(time.perf_counter() - t)
            records = [json.loads(line) for line in logs.getvalue().splitlines() if line.strip()]
            own = [r["latency_ms"] - r["endpoint_ms"] for r in records]

    d, h = statistics.median(direct_times) * 1000, statistics.median(handler_times) * 1000
    print(f"per invocation, API Gateway v2 base64 PNG event, {calls} calls each, interleaved:")
    print(f"  invoke_endpoint directly          {d:7.3f} ms (median)")
    e = statistics.median(r["endpoint_ms"] for r in records)
    print(f"  lambda_handler                    {h:7.3f} ms (median)   difference {h - d:+.3f} ms")
    print(f"    of which its invoke_endpoint call {e:7.3f} ms (median)")
    print(
        f"  handler's own time (logged total − endpoint call): median {statistics.median(own):.3f} ms, "
        f"p90 {statistics.quantiles(own, n=10)[-1]:.3f} ms (goal ≤ 1 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=21, help="fresh processes per import measurement")
    parser.add_argument("--calls", type=int, default=300, help="invocations per overhead measurement")
    args = parser.parse_args()
    measure_imports(args.runs)
    measure_overhead(args.calls)


if __name__ == "__main__":
    main()
