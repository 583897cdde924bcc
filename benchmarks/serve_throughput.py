"""Local endpoint throughput: the bare model at batch 1 vs handlers.serve under 1 and 8 clients.

    python benchmarks/serve_throughput.py                 # ResNet18 @64 (the project default)
    python benchmarks/serve_throughput.py --resnet50      # ResNet50 @224

Baseline (same run, same machine): the eager model, ``inference_mode``, batch 1, in a loop over
already-preprocessed tensors (training's eval transform) — forward passes only. The eager model is
in channels_last, its fast layout on this CPU (``--bare-layout nchw`` for the default layout, which
is many times slower here under load and would flatter the server). The server is a child process
(``python -m handlers.serve``); clients are threads with keep-alive connections POSTing real PNG
files (scikit-learn's handwritten digits, upscaled to the model's size) to
``/endpoints/<name>/invocations``, so the server's numbers include HTTP, PNG decoding,
preprocessing and JSON. The measurements are interleaved in ``--rounds`` rounds (bare, 1 client,
8 clients; a last bare), so a change of the machine's load weighs on both sides of the ratio.
Goals: 1 client ≥ 0.95× bare, 8 clients ≥ 1.5× bare.

Of handlers/ the script imports only the torch-free launcher and starts the server as
``python -m handlers.serve`` from the working directory, so running it from a checkout of an older
commit measures that commit's server.
Not a test: numbers depend on the machine and on what else runs.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# The spin count handlers/serve.py gives torch's OpenMP threads, here too before torch loads, so
# the bare model and the server (which inherits this environment) run with the same setting.
from handlers.serve import OMP_SPIN_COUNT  # noqa: E402 - sets it (before importing torch) unless the environment does

os.environ.setdefault("GOMP_SPINCOUNT", OMP_SPIN_COUNT)

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from handlers.server_process import spawn_server  # noqa: E402  (torch-free launcher)
from training.data import normalizer  # noqa: E402
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


def bare_batch1(model_dir: Path, pngs: list[bytes], layout: str):
    """Eager model, batch 1, forward passes only; returns ``measure(seconds) -> images/s``."""
    from training.data import decode_image

    meta = json.loads((model_dir / "model.json").read_text())
    # The plain model as trained (the server's copy is traced and frozen).
    net = load_state(build_model(meta["arch"], meta["num_classes"]), str(model_dir / "model.pth")).eval()
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    net = net.to(memory_format=fmt)
    to_input = normalizer(IMAGENET_MEAN, IMAGENET_STD)
    size = int(meta["image_size"])
    tensors = [
        to_input(decode_image(io.BytesIO(p), size).unsqueeze(0)).contiguous(memory_format=fmt)  # type: ignore[arg-type]
        for p in pngs
    ]

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
        "--seconds", type=float, default=None, help="per measurement, split over the rounds (default 6, 15 for ResNet50)"
    )
    parser.add_argument(
        "--workers", default=None, help="server worker processes (default: the server's own choice)"
    )
    parser.add_argument("--max-batch-delay-ms", type=float, default=None, help="default: the server's")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--bare-layout", choices=("channels_last", "nchw"), default="channels_last")
    args = parser.parse_args()
    arch, size = ("resnet50", 224) if args.resnet50 else ("resnet18", 64)
    seconds = args.seconds or (15.0 if args.resnet50 else 6.0)

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = write_artifact(Path(tmp), arch, size, num_classes=10)
        pngs = digit_pngs(size)
        print(
            f"{arch} @{size}px, {torch.get_num_threads()} torch threads, {len(pngs)} PNGs, {seconds:g} s per measurement"
        )
        measure_bare = bare_batch1(model_dir, pngs, args.bare_layout)
        extra = [] if args.max_batch_delay_ms is None else ["--max-batch-delay-ms", str(args.max_batch_delay_ms)]
        if args.workers is not None:
            extra += ["--workers", str(args.workers)]
        # The machine is shared and its load drifts: the measurements are interleaved in rounds
        # (bare, 1 client, 8 clients, ..., bare), each ``seconds / rounds`` long, and each figure is
        # the mean over its slices, so a slow minute weighs on the baseline and the server alike.
        slice_s = seconds / args.rounds
        bare_rates: list[float] = []
        rates: dict[int, list[float]] = {1: [], 8: []}
        latencies: dict[int, list[float]] = {1: [], 8: []}
        with spawn_server(str(model_dir), endpoint_name=ENDPOINT, extra_args=extra) as server:
            for _ in range(args.rounds):
                bare_rates.append(measure_bare(slice_s))
                for clients in (1, 8):
                    rate, p50 = run_clients(server.host, server.port, pngs, clients, slice_s)
                    rates[clients].append(rate)
                    latencies[clients].append(p50)
            bare_rates.append(measure_bare(slice_s))
        bare = statistics.fmean(bare_rates)
        shown = ", ".join(f"{r:.1f}" for r in bare_rates)
        print(f"  bare model, eager {args.bare_layout}, batch 1 (forward only): {bare:8.1f} img/s   (slices {shown})")
        results = {c: (statistics.fmean(rates[c]), statistics.median(latencies[c])) for c in rates}
        for clients, (rate, p50) in results.items():
            label = f"{clients} client{'s' if clients > 1 else ' '}"
            print(
                f"  server, {label} (PNG over HTTP):       {rate:8.1f} img/s   p50 {p50:6.1f} ms   {rate / bare:5.2f}× bare"
            )
        goal1, goal8 = results[1][0] / bare >= 0.95, results[8][0] / bare >= 1.5
        print(
            f"  goals: 1 client ≥ 0.95× bare: {'met' if goal1 else 'MISSED'};"
            f"  8 clients ≥ 1.5× bare: {'met' if goal8 else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
