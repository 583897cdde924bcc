"""Local endpoint throughput: the bare model at batch 1 vs handlers.serve under 1 and 8 clients.

    python benchmarks/serve_throughput.py                 # ResNet18 @64 (the project default)
    python benchmarks/serve_throughput.py --resnet50      # ResNet50 @224

Baseline (same run, same machine): the eager model, ``inference_mode``, batch 1, in a loop over
already-preprocessed tensors — forward passes only. The server is a child process
(``python -m handlers.serve``); clients are threads with keep-alive connections POSTing real PNG
files (scikit-learn's handwritten digits, upscaled to the model's size) to
``/endpoints/<name>/invocations``, so the server's numbers include HTTP, PNG decoding,
preprocessing and JSON. Goals: 1 client ≥ 0.9× bare, 8 clients ≥ 1.2× bare.
Not a test: numbers depend on the machine and on what else runs.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handlers import inference  # noqa: E402
from handlers.serve import spawn_server  # noqa: E402
from training.model import IMAGENET_MEAN, IMAGENET_STD, build_model, load_state  # noqa: E402

ENDPOINT = "bench-endpoint"


def write_artifact(directory: Path, arch: str, image_size: int, num_classes: int) -> Path:
    torch.manual_seed(0)
    net = build_model(arch, num_classes)
    torch.save(net.state_dict(), directory / "model.pth")
    meta = {
        "format_version": 1,
        "arch": arch,
        "head_hidden": 256,
        "num_classes": num_classes,
        "classes": [str(i) for i in range(num_classes)],
        "image_size": image_size,
        "normalize": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
    }
    (directory / "model.json").write_text(json.dumps(meta))
    return directory


def digit_pngs(image_size: int, count: int = 64) -> list[bytes]:
    """Real images: scikit-learn's bundled handwritten digits, as PNG files at the model's size."""
    from sklearn.datasets import load_digits

    images = load_digits().images[:count]
    pngs = []
    for pixels in images:
        gray = Image.fromarray((pixels * 255 / 16).astype("uint8")).resize(
            (image_size, image_size), Image.BILINEAR
        )
        buf = io.BytesIO()
        gray.convert("RGB").save(buf, format="PNG")
        pngs.append(buf.getvalue())
    return pngs


def bare_batch1(model_dir: Path, pngs: list[bytes]):
    """Eager model, batch 1, forward passes only; returns ``measure(seconds) -> images/s``."""
    loaded = inference.model_fn(str(model_dir))
    meta = loaded.metadata
    # The plain model as trained (the server's copy is traced and frozen).
    net = load_state(build_model(meta["arch"], meta["num_classes"]), str(model_dir / "model.pth")).eval()
    tensors = [loaded.transform(inference.decode_image(p)).unsqueeze(0).contiguous() for p in pngs]

    def measure(seconds: float) -> float:
        with torch.inference_mode():
            for t in tensors[:5]:
                net(t)
            done, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                net(tensors[done % len(tensors)])
                done += 1
        return done / (time.perf_counter() - start)

    return measure


def run_clients(host: str, port: int, pngs: list[bytes], clients: int, seconds: float) -> tuple[float, float]:
    """``clients`` keep-alive connections POSTing PNGs: (images per second, median latency ms)."""
    stop_at = [0.0]
    counts = [0] * clients
    latencies: list[list[float]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    path = f"/endpoints/{ENDPOINT}/invocations"

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        headers = {"Content-Type": "image/png", "Accept": "application/json"}

        def once(body: bytes) -> None:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {payload[:200]!r}")

        for k in range(3):  # warm-up
            once(pngs[(i + k) % len(pngs)])
        barrier.wait()
        k = 0
        while time.perf_counter() < stop_at[0]:
            t0 = time.perf_counter()
            once(pngs[(i * 7 + k) % len(pngs)])
            latencies[i].append(time.perf_counter() - t0)
            counts[i] += 1
            k += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + 3600
    barrier.wait()
    start = time.perf_counter()
    stop_at[0] = start + seconds
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    all_latencies = [x for per in latencies for x in per]
    return sum(counts) / elapsed, statistics.median(all_latencies) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resnet50", action="store_true", help="ResNet50 @224 instead of ResNet18 @64")
    parser.add_argument(
        "--seconds", type=float, default=None, help="per measurement (default 5, 15 for ResNet50)"
    )
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--max-batch-delay-ms", type=float, default=2.0)
    args = parser.parse_args()
    arch, size = ("resnet50", 224) if args.resnet50 else ("resnet18", 64)
    seconds = args.seconds or (15.0 if args.resnet50 else 5.0)

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = write_artifact(Path(tmp), arch, size, num_classes=10)
        pngs = digit_pngs(size)
        print(
            f"{arch} @{size}px, {torch.get_num_threads()} torch threads, {len(pngs)} PNGs, {seconds:g} s per measurement"
        )
        measure_bare = bare_batch1(model_dir, pngs)
        bare_before = measure_bare(seconds)
        extra = ["--max-batch-delay-ms", str(args.max_batch_delay_ms)]
        results = {}
        with spawn_server(
            str(model_dir), endpoint_name=ENDPOINT, workers=args.workers, extra_args=extra
        ) as server:
            for clients in (1, 8):
                results[clients] = run_clients(server.host, server.port, pngs, clients, seconds)
        bare_after = measure_bare(seconds)
        # The machine is shared: the baseline is measured before and after, and their mean is used.
        bare = (bare_before + bare_after) / 2
        print(
            f"  bare model, eager, batch 1 (forward only):   {bare:8.1f} img/s   (before {bare_before:.1f}, after {bare_after:.1f})"
        )
        for clients, (rate, p50) in results.items():
            label = f"{clients} client{'s' if clients > 1 else ' '}"
            print(
                f"  server, {label} (PNG over HTTP):       {rate:8.1f} img/s   p50 {p50:6.1f} ms   {rate / bare:5.2f}× bare"
            )
        goal1, goal8 = results[1][0] / bare >= 0.9, results[8][0] / bare >= 1.2
        print(
            f"  goals: 1 client ≥ 0.9× bare: {'met' if goal1 else 'MISSED'};"
            f"  8 clients ≥ 1.2× bare: {'met' if goal8 else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
