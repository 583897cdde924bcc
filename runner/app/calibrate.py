"""Service time of an artifact on this machine, for the capacity simulator (docs/capacity.md).

A short load test of the local endpoint server (the real container contract: handlers.serve, one
worker) at concurrency 1: PNG images over keep-alive HTTP, each request timed from the first byte
sent to the last byte received. The mean and coefficient of variation of those times are one
worker's service time. Cached by the artifact's SHA-256 under the workdir, so
``simulate.calibrate=true`` measures an artifact once.

    python -m runner.app.calibrate model.tar.gz IMAGE_SIZE
    python -m runner.app.calibrate --untrained resnet50 224   # the figures shipped in service_time.py
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from runner.capacity.service_time import ServiceTime

ENDPOINT = "calibration"


def _pngs(size: int, count: int = 32) -> list[bytes]:
    """scikit-learn's bundled handwritten digits as RGB PNGs (the default data set's images)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    pngs = []
    for pixels in load_digits().images[:count]:
        image = Image.fromarray((pixels * 255 / 16).astype("uint8")).resize((size, size)).convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    return pngs


def measure(artifact: Path, image_size: int, requests: int = 300, warmup: int = 20) -> ServiceTime:
    """One worker, one client: the mean and CV of ``requests`` timed requests of PNGs at the
    model's ``image_size``."""
    from runner.targets.dataplane import start_endpoint

    pngs = _pngs(image_size)
    times: list[float] = []
    with start_endpoint(artifact, ENDPOINT) as server:
        connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
        headers = {"Content-Type": "image/png", "Accept": "application/json"}
        for i in range(warmup + requests):
            started = time.perf_counter()
            connection.request("POST", f"/endpoints/{ENDPOINT}/invocations", body=pngs[i % len(pngs)],
                               headers=headers)
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                raise RuntimeError(f"the endpoint answered {answer.status} during calibration")
            if i >= warmup:
                times.append((time.perf_counter() - started) * 1000.0)
        connection.close()
    mean = statistics.fmean(times)
    return ServiceTime(round(mean, 2), round(statistics.pstdev(times) / mean, 3),
                       f"measured {time.strftime('%Y-%m-%d')} on this machine, {len(times)} requests")


def calibrated(artifact: Path, workdir: Path, image_size: int) -> ServiceTime:
    """``measure(artifact)``, cached by the artifact's content hash."""
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    cache = workdir / "calibration" / f"{digest}.json"
    if cache.exists():
        return ServiceTime(**json.loads(cache.read_text()))
    result = measure(artifact, image_size)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(result.__dict__))
    return result


def _untrained_artifact(directory: Path, arch: str, image_size: int) -> Path:
    """A model of ``arch`` at ``image_size`` (10 classes), untrained: service time does not depend
    on the weights."""
    import tarfile

    import torch

    from training.model import IMAGENET_MEAN, IMAGENET_STD, build_model

    torch.manual_seed(0)
    torch.save(build_model(arch, 10).state_dict(), directory / "model.pth")
    (directory / "model.json").write_text(json.dumps({
        "format_version": 1, "arch": arch, "head_hidden": 256, "num_classes": 10,
        "classes": [str(i) for i in range(10)], "image_size": image_size,
        "normalize": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}}))
    artifact = directory / "model.tar.gz"
    with tarfile.open(artifact, "w:gz") as tar:
        for name in ("model.pth", "model.json"):
            tar.add(directory / name, arcname=name)
    return artifact


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        if sys.argv[1] == "--untrained":
            path, size = _untrained_artifact(Path(tmp), sys.argv[2], int(sys.argv[3])), int(sys.argv[3])
        else:
            path, size = Path(sys.argv[1]), int(sys.argv[2])
        print(json.dumps(measure(path, size).__dict__))
